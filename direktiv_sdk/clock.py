"""The documented 0.1 import path of :mod:`direktiv_sdk.engine.clock`."""

from __future__ import annotations

from direktiv_sdk.engine.clock import (
    Clock,
    SystemClock,
    VirtualClock,
    current_clock,
)

__all__ = [
    "Clock",
    "SystemClock",
    "VirtualClock",
    "current_clock",
]
