"""Test harness for Direktiv functions and flows: fake sidecar, temp dirs, pytest plugin."""
