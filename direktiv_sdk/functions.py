"""The documented 0.1 import path of :mod:`direktiv_sdk.engine.functions`."""

from __future__ import annotations

from direktiv_sdk.engine.functions import (
    FILE_SCOPES,
    FILE_TYPES,
    FunctionCall,
    FunctionFile,
    FunctionOutcome,
    FunctionRunner,
    adapt_functions,
)

__all__ = [
    "FILE_SCOPES",
    "FILE_TYPES",
    "FunctionCall",
    "FunctionFile",
    "FunctionOutcome",
    "FunctionRunner",
    "adapt_functions",
]
