"""The engine: the instance loop, the state logic, clocks, results and the function-call interface.

:func:`run_workflow` runs one instance; :mod:`~direktiv_sdk.engine.states` holds the logic of
each state type, :mod:`~direktiv_sdk.engine.functions` the interface runners implement. Names
are imported on first use, so ``import direktiv_sdk.engine.clock`` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from direktiv_sdk._lazy import lazy_exports

if TYPE_CHECKING:
    from direktiv_sdk.engine.clock import Clock, SystemClock, VirtualClock, current_clock
    from direktiv_sdk.engine.cloudevent import CloudEvent, parse_event, parse_http_event
    from direktiv_sdk.engine.functions import (
        FILE_SCOPES,
        FILE_TYPES,
        FunctionCall,
        FunctionFile,
        FunctionOutcome,
        FunctionRunner,
        adapt_functions,
        require_runners,
    )
    from direktiv_sdk.engine.interpreter import (
        StartInput,
        Workflow,
        load_workflow,
        run_workflow,
    )
    from direktiv_sdk.engine.namespace import InstanceInfo, Namespace
    from direktiv_sdk.engine.results import STATUSES, InstanceResult, StateTrace, VariableWrite

__all__ = [
    "FILE_SCOPES",
    "FILE_TYPES",
    "STATUSES",
    "Clock",
    "CloudEvent",
    "FunctionCall",
    "FunctionFile",
    "FunctionOutcome",
    "FunctionRunner",
    "InstanceInfo",
    "InstanceResult",
    "Namespace",
    "StartInput",
    "StateTrace",
    "SystemClock",
    "VariableWrite",
    "VirtualClock",
    "Workflow",
    "adapt_functions",
    "current_clock",
    "load_workflow",
    "parse_event",
    "parse_http_event",
    "require_runners",
    "run_workflow",
]

_LAZY: dict[str, str] = {
    "Clock": "direktiv_sdk.engine.clock",
    "SystemClock": "direktiv_sdk.engine.clock",
    "VirtualClock": "direktiv_sdk.engine.clock",
    "current_clock": "direktiv_sdk.engine.clock",
    "FILE_SCOPES": "direktiv_sdk.engine.functions",
    "FILE_TYPES": "direktiv_sdk.engine.functions",
    "FunctionCall": "direktiv_sdk.engine.functions",
    "FunctionFile": "direktiv_sdk.engine.functions",
    "FunctionOutcome": "direktiv_sdk.engine.functions",
    "FunctionRunner": "direktiv_sdk.engine.functions",
    "adapt_functions": "direktiv_sdk.engine.functions",
    "CloudEvent": "direktiv_sdk.engine.cloudevent",
    "InstanceInfo": "direktiv_sdk.engine.namespace",
    "Namespace": "direktiv_sdk.engine.namespace",
    "parse_event": "direktiv_sdk.engine.cloudevent",
    "parse_http_event": "direktiv_sdk.engine.cloudevent",
    "STATUSES": "direktiv_sdk.engine.results",
    "InstanceResult": "direktiv_sdk.engine.results",
    "StateTrace": "direktiv_sdk.engine.results",
    "VariableWrite": "direktiv_sdk.engine.results",
    "StartInput": "direktiv_sdk.engine.interpreter",
    "Workflow": "direktiv_sdk.engine.interpreter",
    "load_workflow": "direktiv_sdk.engine.interpreter",
    "require_runners": "direktiv_sdk.engine.functions",
    "run_workflow": "direktiv_sdk.engine.interpreter",
}
"""Public names by the module that defines them (imported on first access)."""

__getattr__ = lazy_exports(__name__, _LAZY, globals())
