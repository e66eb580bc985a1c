"""The documented 0.1 import path of :mod:`direktiv_sdk.engine.functions`."""

from __future__ import annotations

from direktiv_sdk.engine.functions import *  # noqa: F403 - the same public names
from direktiv_sdk.engine.functions import __all__  # noqa: F401 - and the same list
