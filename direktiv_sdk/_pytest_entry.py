"""The pytest entry point: check that ``harness`` is direktiv-sdk's, then load its plugin.

It lives in ``direktiv_sdk`` because a project folder named ``harness`` would hide the plugin
module itself; here the check runs first and names the folder that shadows the package.
"""

from __future__ import annotations

import importlib

import pytest

from direktiv_sdk._shadowing import check_package

__all__ = ["pytest_addhooks"]

_PLUGIN = "harness.testing.pytest_plugin"


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    """Register the plugin module once the package it lives in is known to be ours."""
    check_package("harness")
    check_package("backends")
    if pluginmanager.get_plugin(_PLUGIN) is None:
        # A dotted name the import linter cannot see: direktiv_sdk never imports harness
        # statically, as with the store registry's backends.
        pluginmanager.register(importlib.import_module(_PLUGIN), _PLUGIN)
