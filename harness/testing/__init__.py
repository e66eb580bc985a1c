"""The testing kit: the pytest plugin, Hypothesis strategies, the store conformance suite."""
