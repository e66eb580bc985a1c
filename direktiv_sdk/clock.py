"""The documented 0.1 import path of :mod:`direktiv_sdk.engine.clock`."""

from __future__ import annotations

from direktiv_sdk.engine.clock import *  # noqa: F403 - the same public names
from direktiv_sdk.engine.clock import __all__  # noqa: F401 - and the same list
