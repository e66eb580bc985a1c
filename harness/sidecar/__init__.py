"""The fake sidecar: a real HTTP server for ``/var`` and ``/log`` and the actions it serves."""

from __future__ import annotations

from harness.sidecar._front_door import (
    DEFAULT_FRONT_DOOR_PORT,
    SIDECAR_PORT_ENV,
    SIDECAR_URL_ENV,
    FrontDoor,
    front_door_port,
)
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
    "DEFAULT_FRONT_DOOR_PORT",
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "MAX_BODY",
    "MAX_LOG_BODY",
    "SIDECAR_PORT_ENV",
    "SIDECAR_URL_ENV",
    "ActionContext",
    "FrontDoor",
    "Sidecar",
    "SidecarRequest",
    "VariableWrite",
    "front_door_port",
]
