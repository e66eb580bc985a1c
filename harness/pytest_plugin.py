"""pytest plugin for direktiv-sdk (fixtures arrive with the harness issue)."""
