"""Test harness for Direktiv functions and flows: fake sidecar, temp dirs, function calls.

Importing it is light: no Hypothesis, jq or s3fs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from direktiv_sdk.errors import FunctionError
    from direktiv_sdk.functions import FunctionCall, FunctionFile, FunctionOutcome, FunctionRunner
    from harness._action import ActionContext, SidecarRequest, VariableWrite, new_action_id
    from harness._context import FunctionContext, VarClient
    from harness.functions import (
        ASGIRunner,
        CallableRunner,
        CallResult,
        SidecarRunner,
        URLRunner,
        WSGIRunner,
        adapt_target,
        call_function,
        decode_output,
        function_file,
        make_runner,
    )
    from harness.sidecar import DEFAULT_PORT, MAX_BODY, MAX_LOG_BODY, Sidecar

__all__ = [
    "DEFAULT_PORT",
    "MAX_BODY",
    "MAX_LOG_BODY",
    "ASGIRunner",
    "ActionContext",
    "CallResult",
    "CallableRunner",
    "FunctionCall",
    "FunctionContext",
    "FunctionError",
    "FunctionFile",
    "FunctionOutcome",
    "FunctionRunner",
    "Sidecar",
    "SidecarRequest",
    "SidecarRunner",
    "URLRunner",
    "VarClient",
    "VariableWrite",
    "WSGIRunner",
    "adapt_target",
    "call_function",
    "decode_output",
    "function_file",
    "make_runner",
    "new_action_id",
]

_LAZY: dict[str, str] = {
    "ASGIRunner": "harness.functions",
    "ActionContext": "harness._action",
    "CallResult": "harness.functions",
    "CallableRunner": "harness.functions",
    "DEFAULT_PORT": "harness.sidecar",
    "FunctionCall": "direktiv_sdk.functions",
    "FunctionContext": "harness._context",
    "FunctionError": "direktiv_sdk.errors",
    "FunctionFile": "direktiv_sdk.functions",
    "FunctionOutcome": "direktiv_sdk.functions",
    "FunctionRunner": "direktiv_sdk.functions",
    "MAX_BODY": "harness.sidecar",
    "MAX_LOG_BODY": "harness.sidecar",
    "Sidecar": "harness.sidecar",
    "SidecarRequest": "harness._action",
    "SidecarRunner": "harness.functions",
    "URLRunner": "harness.functions",
    "VarClient": "harness._context",
    "VariableWrite": "harness._action",
    "WSGIRunner": "harness.functions",
    "adapt_target": "harness.functions",
    "call_function": "harness.functions",
    "decode_output": "harness.functions",
    "function_file": "harness.functions",
    "make_runner": "harness.functions",
    "new_action_id": "harness._action",
}
"""Public names loaded on first access, so loading the pytest plugin stays cheap."""


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'harness' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
