"""The documented import path of :mod:`harness.testing.store_tests`."""

from __future__ import annotations

from harness.testing.store_tests import *  # noqa: F403 - the same public names
from harness.testing.store_tests import __all__  # noqa: F401 - and the same list
