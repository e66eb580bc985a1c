"""direktiv-sdk: Direktiv's workflow variables, flows and functions on a laptop and in pytest.

Importing this package is cheap: the interpreter (which loads jq) is imported on first use of
its names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from direktiv_sdk._lazy import lazy_exports
from direktiv_sdk.errors import (
    DirektivError,
    InvalidKeyError,
    InvalidOwnerError,
    InvalidScopeError,
    InvalidStoreURLError,
    PreconditionFailedError,
    StoreError,
    UnsupportedOperationError,
)
from direktiv_sdk.store import (
    KEY_PATTERN,
    Owner,
    Scope,
    Variable,
    VariableMeta,
    VariableReader,
    VariableRef,
    VariableStore,
    validate_key,
)
from direktiv_sdk.store.registry import default_store_url, open_store, register_store

__all__ = [
    "KEY_PATTERN",
    "CloudEvent",
    "DirektivError",
    "InstanceInfo",
    "InstanceResult",
    "InvalidKeyError",
    "InvalidOwnerError",
    "InvalidScopeError",
    "InvalidStoreURLError",
    "Namespace",
    "Owner",
    "PreconditionFailedError",
    "Scope",
    "StoreError",
    "UnsupportedOperationError",
    "Variable",
    "VariableMeta",
    "VariableReader",
    "VariableRef",
    "VariableStore",
    "Workflow",
    "__version__",
    "default_store_url",
    "load_workflow",
    "open_store",
    "register_store",
    "run_workflow",
    "validate_key",
]

__version__ = "0.1.0"

if TYPE_CHECKING:  # the real types for checkers; at run time they load lazily
    from direktiv_sdk.engine.cloudevent import CloudEvent
    from direktiv_sdk.engine.interpreter import (
        InstanceResult,
        Workflow,
        load_workflow,
        run_workflow,
    )
    from direktiv_sdk.engine.namespace import InstanceInfo, Namespace

_LAZY: dict[str, str] = {
    "CloudEvent": "direktiv_sdk.engine.cloudevent",
    "InstanceInfo": "direktiv_sdk.engine.namespace",
    "Namespace": "direktiv_sdk.engine.namespace",
    "InstanceResult": "direktiv_sdk.engine.interpreter",
    "Workflow": "direktiv_sdk.engine.interpreter",
    "load_workflow": "direktiv_sdk.engine.interpreter",
    "run_workflow": "direktiv_sdk.engine.interpreter",
}
"""Public names imported on first access: name -> module (keeps ``import direktiv_sdk`` light)."""


__getattr__ = lazy_exports(__name__, _LAZY, globals())
