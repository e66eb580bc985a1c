"""The flow layer: the typed ``workflow/v1`` model, YAML reading, decoding and the loader's checks.

Pure: it knows nothing of stores, engines or functions. :func:`load_workflow` turns YAML into
a frozen :class:`~direktiv_sdk.flow.model.Workflow`. Names are imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from direktiv_sdk._lazy import lazy_exports

if TYPE_CHECKING:
    from direktiv_sdk.flow.loader import (
        LOADED_CACHE_SIZE,
        load_workflow,
    )
    from direktiv_sdk.flow.model import (
        DEFAULT_RETRY_DELAY,
        FILE_SCOPES,
        FILE_TYPES,
        FUNCTION_TYPES,
        STATE_TYPES,
        Action,
        ActionFile,
        ActionState,
        Catch,
        DelayState,
        Duration,
        ErrorState,
        EventState,
        ForeachState,
        FunctionDef,
        FunctionFile,
        GetterState,
        GetterVariable,
        NoopState,
        ParallelState,
        Retries,
        SetterState,
        SetterVariable,
        Start,
        State,
        SwitchCondition,
        SwitchState,
        Timeouts,
        ValidateState,
        Workflow,
    )

__all__ = [
    "DEFAULT_RETRY_DELAY",
    "FILE_SCOPES",
    "FILE_TYPES",
    "FUNCTION_TYPES",
    "LOADED_CACHE_SIZE",
    "STATE_TYPES",
    "Action",
    "ActionFile",
    "ActionState",
    "Catch",
    "DelayState",
    "Duration",
    "ErrorState",
    "EventState",
    "ForeachState",
    "FunctionDef",
    "FunctionFile",
    "GetterState",
    "GetterVariable",
    "NoopState",
    "ParallelState",
    "Retries",
    "SetterState",
    "SetterVariable",
    "Start",
    "State",
    "SwitchCondition",
    "SwitchState",
    "Timeouts",
    "ValidateState",
    "Workflow",
    "load_workflow",
]

_LAZY: dict[str, str] = {
    "LOADED_CACHE_SIZE": "direktiv_sdk.flow.loader",
    "load_workflow": "direktiv_sdk.flow.loader",
    "DEFAULT_RETRY_DELAY": "direktiv_sdk.flow.model",
    "FILE_SCOPES": "direktiv_sdk.flow.model",
    "FILE_TYPES": "direktiv_sdk.flow.model",
    "FUNCTION_TYPES": "direktiv_sdk.flow.model",
    "STATE_TYPES": "direktiv_sdk.flow.model",
    "Action": "direktiv_sdk.flow.model",
    "ActionFile": "direktiv_sdk.flow.model",
    "ActionState": "direktiv_sdk.flow.model",
    "Catch": "direktiv_sdk.flow.model",
    "DelayState": "direktiv_sdk.flow.model",
    "Duration": "direktiv_sdk.flow.model",
    "ErrorState": "direktiv_sdk.flow.model",
    "EventState": "direktiv_sdk.flow.model",
    "ForeachState": "direktiv_sdk.flow.model",
    "FunctionDef": "direktiv_sdk.flow.model",
    "FunctionFile": "direktiv_sdk.flow.model",
    "GetterState": "direktiv_sdk.flow.model",
    "GetterVariable": "direktiv_sdk.flow.model",
    "NoopState": "direktiv_sdk.flow.model",
    "ParallelState": "direktiv_sdk.flow.model",
    "Retries": "direktiv_sdk.flow.model",
    "SetterState": "direktiv_sdk.flow.model",
    "SetterVariable": "direktiv_sdk.flow.model",
    "Start": "direktiv_sdk.flow.model",
    "State": "direktiv_sdk.flow.model",
    "SwitchCondition": "direktiv_sdk.flow.model",
    "SwitchState": "direktiv_sdk.flow.model",
    "Timeouts": "direktiv_sdk.flow.model",
    "ValidateState": "direktiv_sdk.flow.model",
    "Workflow": "direktiv_sdk.flow.model",
}
"""Public names by the module that defines them (imported on first access)."""

__getattr__ = lazy_exports(__name__, _LAZY, globals())
