"""The fake sidecar: a real HTTP server for ``/var`` and ``/log`` and the actions it serves."""

from __future__ import annotations

from harness.sidecar._server import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    MAX_BODY,
    MAX_LOG_BODY,
    ActionContext,
    Sidecar,
    SidecarRequest,
    VariableWrite,
)

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "MAX_BODY",
    "MAX_LOG_BODY",
    "ActionContext",
    "Sidecar",
    "SidecarRequest",
    "VariableWrite",
]
