"""What running a flow returns: :class:`InstanceResult` with a per-state :class:`StateTrace`.

A namespace session lists its instances as :class:`InstanceInfo` (status, and the result once
the instance ended).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, NamedTuple

from direktiv_sdk.expr.gojson import dumps

if TYPE_CHECKING:
    from direktiv_sdk.expr.gojson import JSON, JSONObject

__all__ = [
    "STATUSES",
    "CallTrace",
    "FileInfo",
    "InstanceInfo",
    "InstanceResult",
    "StateTrace",
    "VariableWrite",
]

STATUSES: Final = ("complete", "failed", "crashed", "cancelled")


class VariableWrite(NamedTuple):
    """One variable a state wrote (``data`` is ``None`` when it deleted the variable)."""

    scope: str
    key: str
    data: bytes | None
    mime_type: str
    via: str = "setter"
    """``setter``, ``var`` (a function's ``POST /var``) or ``out`` (a file in its ``out/``)."""


class FileInfo(NamedTuple):
    """One ``files:`` entry as it was written into a function's temp dir."""

    name: str
    """The name in the temp dir."""
    type: str
    """``plain`` (also for ``""``), ``base64``, ``tar`` or ``tar.gz``."""
    size: int
    """The bytes read from its source (before base64 decoding or unpacking)."""


class CallTrace(NamedTuple):
    """One attempt of an action to call its function (or subflow)."""

    function: str
    """The function id."""
    target: str
    """What was called: the runner's description, or the subflow's path."""
    attempt: int
    """1 for the first call, 2 for the first retry, and so on."""
    input: JSON
    """The input sent (the evaluated ``input``, or the data)."""
    files: tuple[FileInfo, ...] = ()
    output: JSON | None = None
    """The response as ``.return`` holds it (``None`` after an error)."""
    error_code: str | None = None
    error_message: str | None = None
    writes: tuple[VariableWrite, ...] = ()
    """Variables the function set through ``/var`` and ``out/``, in order."""
    retry_wait: float | None = None
    """Seconds waited before the next attempt (``None``: no retry followed)."""


class StateTrace(NamedTuple):
    """What one state did: its input, the ``.var`` it read, what it wrote, where it went.

    A named tuple, so recording one costs next to nothing; read it by field name.
    """

    state: str
    type: str
    input: JSONObject
    """The instance data when the state started."""
    var: JSONObject | None = None
    """The ``.var`` a getter read (``None`` for other states)."""
    writes: tuple[VariableWrite, ...] = ()
    transform: JSONObject | None = None
    """The data after the state's transform (``None`` when there was none or it failed)."""
    next: str = ""
    """The next state (``""``: the flow ended here or failed)."""
    error_code: str | None = None
    error_message: str | None = None
    caught: bool = False
    """Whether a ``catch`` entry handled the error."""
    logs: tuple[str, ...] = ()
    """Instance log lines written while the state ran."""
    calls: tuple[CallTrace, ...] = ()
    """The function calls of an action, foreach or parallel state, in the order they ended."""
    branch: str = ""
    """Which way out was taken: ``condition:N`` or ``default`` (a switch), ``catch:N`` (the
    N-th catch entry), ``""`` (the plain transition, or none)."""
    started: float = 0.0
    """The clock's time (seconds since the epoch) when the state started."""
    finished: float = 0.0
    """The clock's time when the state ended."""


@dataclass(frozen=True, slots=True, kw_only=True)
class InstanceResult:
    """The outcome of one instance."""

    instance_id: str
    status: str
    """``complete``, ``failed``, ``crashed`` or ``cancelled``."""
    output: JSON | None
    """The final instance data (also when an error state failed the flow), else ``None``."""
    error_code: str | None = None
    error_message: str | None = None
    logs: tuple[str, ...] = ()
    metadata: str | None = None
    trace: tuple[StateTrace, ...] = ()
    children: tuple[InstanceResult, ...] = ()
    """Results of the subflow instances this instance started, in start order."""
    namespace: str = "default"
    path: str = "/workflow.yaml"

    @property
    def output_json(self) -> str | None:
        """Return the output as Go-JSON (compact, sorted keys), or ``None`` without output."""
        if self.output is None:
            return None
        return dumps(self.output)

    @property
    def ok(self) -> bool:
        """Return whether the instance completed."""
        return self.status == "complete"

    def error_json(self) -> str | None:
        """Return ``{"error":{"code":...,"message":...}}`` as Go-JSON, or ``None`` if complete."""
        if self.status == "complete":
            return None
        return dumps({"error": {"code": self.error_code, "message": self.error_message}})


@dataclass(frozen=True, slots=True)
class InstanceInfo:
    """One instance of a session as :meth:`Namespace.instances` lists it."""

    instance_id: str
    path: str
    status: str
    """``pending``, ``complete``, ``failed``, ``cancelled`` or ``crashed``."""
    invoker: str
    """``api`` (started by hand), ``cloudevent``, ``subflow`` or ``async``."""
    parent: str | None = None
    result: InstanceResult | None = None
    """The result once the instance ended."""

    @property
    def output(self) -> JSON:
        """The final data of an ended instance (``None`` while pending or without output)."""
        return None if self.result is None else self.result.output

    @property
    def error_code(self) -> str | None:
        """The error code of an ended instance."""
        return None if self.result is None else self.result.error_code

    @property
    def error_message(self) -> str | None:
        """The error message of an ended instance."""
        return None if self.result is None else self.result.error_message

    def as_json(self) -> JSONObject:
        """Return the line ``direktiv-sdk events send`` prints for this instance."""
        line: JSONObject = {"id": self.instance_id, "path": self.path, "status": self.status}
        if self.result is not None:
            if self.result.status == "complete":
                line["output"] = self.result.output
            if self.result.error_code:
                line["error"] = {
                    "code": self.result.error_code,
                    "message": self.result.error_message or "",
                }
        return line
