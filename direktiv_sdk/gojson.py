"""The documented 0.1 import path of :mod:`direktiv_sdk.expr.gojson`."""

from __future__ import annotations

from direktiv_sdk.expr.gojson import *  # noqa: F403 - the same public names
from direktiv_sdk.expr.gojson import __all__  # noqa: F401 - and the same list
