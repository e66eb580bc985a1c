"""Test harness for Direktiv functions and flows: fake sidecar, temp dirs, function calls.

Importing it is light: no Hypothesis, jq or s3fs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from direktiv_sdk._lazy import lazy_exports

if TYPE_CHECKING:
    from direktiv_sdk.engine.functions import (
        FunctionCall,
        FunctionFile,
        FunctionOutcome,
        FunctionRunner,
    )
    from direktiv_sdk.errors import FunctionError
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
    from harness.functions._context import FunctionContext, VarClient
    from harness.sidecar import (
        DEFAULT_PORT,
        MAX_BODY,
        MAX_LOG_BODY,
        SIDECAR_PORT_ENV,
        SIDECAR_URL_ENV,
        FrontDoor,
        Sidecar,
        front_door_port,
    )
    from harness.sidecar._action import ActionContext, SidecarRequest, VariableWrite, new_action_id

__all__ = [
    "DEFAULT_PORT",
    "MAX_BODY",
    "MAX_LOG_BODY",
    "SIDECAR_PORT_ENV",
    "SIDECAR_URL_ENV",
    "ASGIRunner",
    "ActionContext",
    "CallResult",
    "CallableRunner",
    "FrontDoor",
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
    "front_door_port",
    "function_file",
    "make_runner",
    "new_action_id",
]

_LAZY: dict[str, str] = {
    "ASGIRunner": "harness.functions",
    "ActionContext": "harness.sidecar._action",
    "CallResult": "harness.functions",
    "CallableRunner": "harness.functions",
    "DEFAULT_PORT": "harness.sidecar",
    "FrontDoor": "harness.sidecar",
    "FunctionCall": "direktiv_sdk.engine.functions",
    "FunctionContext": "harness.functions._context",
    "FunctionError": "direktiv_sdk.errors",
    "FunctionFile": "direktiv_sdk.engine.functions",
    "FunctionOutcome": "direktiv_sdk.engine.functions",
    "FunctionRunner": "direktiv_sdk.engine.functions",
    "MAX_BODY": "harness.sidecar",
    "MAX_LOG_BODY": "harness.sidecar",
    "SIDECAR_PORT_ENV": "harness.sidecar",
    "SIDECAR_URL_ENV": "harness.sidecar",
    "Sidecar": "harness.sidecar",
    "SidecarRequest": "harness.sidecar._action",
    "SidecarRunner": "harness.functions",
    "URLRunner": "harness.functions",
    "VarClient": "harness.functions._context",
    "VariableWrite": "harness.sidecar._action",
    "WSGIRunner": "harness.functions",
    "adapt_target": "harness.functions",
    "call_function": "harness.functions",
    "decode_output": "harness.functions",
    "front_door_port": "harness.sidecar",
    "function_file": "harness.functions",
    "make_runner": "harness.functions",
    "new_action_id": "harness.sidecar._action",
}
"""Public names loaded on first access, so loading the pytest plugin stays cheap."""


__getattr__ = lazy_exports(__name__, _LAZY, globals())
