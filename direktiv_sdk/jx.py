"""The documented 0.1 import path of :mod:`direktiv_sdk.expr.jx`."""

from __future__ import annotations

from direktiv_sdk.expr.jx import (
    BAD_COMMAND,
    DEFAULT_CACHE,
    NOT_OBJECT,
    JqCache,
    Snapshot,
    Template,
    compile_template,
    truth,
)

__all__ = [
    "BAD_COMMAND",
    "DEFAULT_CACHE",
    "NOT_OBJECT",
    "JqCache",
    "Snapshot",
    "Template",
    "compile_template",
    "truth",
]
