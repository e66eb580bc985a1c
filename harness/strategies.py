"""The documented import path of :mod:`harness.testing.strategies`."""

from __future__ import annotations

from harness.testing.strategies import *  # noqa: F403 - the same public names
from harness.testing.strategies import __all__  # noqa: F401 - and the same list
