"""What the sidecar knows about one running action, and the records it keeps about it."""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Final, Literal

from direktiv_sdk.store import Owner, Scope, VariableData, VariableRef, VariableStore

__all__ = [
    "RECORD_LIMIT",
    "ActionContext",
    "SidecarRequest",
    "VariableWrite",
    "check_action_id",
    "new_action_id",
]

RECORD_LIMIT: Final = 16 << 20
"""The largest value a :class:`VariableWrite` keeps in :attr:`~VariableWrite.data` (16 MiB)."""

_AID_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
"""Action ids name a folder and travel in URLs and headers: one safe path segment."""


def new_action_id() -> str:
    """Return a fresh action id (a UUID, as Direktiv's engine uses)."""
    return str(uuid.uuid4())


def check_action_id(aid: object) -> str:
    """Return ``aid`` if it is usable as an action id, else raise ``ValueError``."""
    if isinstance(aid, str) and _AID_RE.match(aid) and aid not in (".", ".."):
        return aid
    raise ValueError(
        f"invalid action id {aid!r}: use 1-128 letters, digits, '_', '-' or '.' "
        "(a UUID, for example)"
    )


@dataclass(frozen=True, slots=True)
class SidecarRequest:
    """One request the sidecar answered: what was asked and the status it got."""

    method: str
    path: str
    """``/var``, ``/log`` or whatever else was requested."""
    aid: str
    scope: str
    key: str
    status: int


@dataclass(frozen=True, slots=True)
class VariableWrite:
    """A variable an action set, through ``POST /var`` or a file under ``out/``."""

    scope: Scope
    key: str
    data: bytes
    """The value; empty when it is larger than :data:`RECORD_LIMIT` (read it from the store)."""
    mime_type: str
    via: Literal["var", "out"]
    """``var`` for ``POST /var``, ``out`` for a file or folder collected from ``out/``."""
    size: int = -1
    """The value's size in bytes (``-1``: as ``len(data)``, for records made by hand)."""

    def __post_init__(self) -> None:
        if self.size < 0:
            object.__setattr__(self, "size", len(self.data))


class _Tee:
    """A stream that passes ``source`` on and keeps its first :data:`RECORD_LIMIT` bytes."""

    def __init__(self, source: IO[bytes] | VariableData) -> None:
        self._source = source
        self._kept = bytearray()
        self._size = 0

    def read(self, size: int = -1) -> bytes:
        data: bytes = self._source.read(size)  # type: ignore[union-attr]
        self._size += len(data)
        if self._size <= RECORD_LIMIT:
            self._kept += data
        return data

    def kept(self) -> bytes:
        return bytes(self._kept) if self._size <= RECORD_LIMIT else b""


class ActionContext:
    """One registered action: the store and owners its ``/var`` and ``/log`` requests reach.

    The sidecar routes requests to it by :attr:`aid`. It records every variable the action
    sets (:attr:`writes`) and every line it logs (:attr:`logs`); both are safe to use from
    many threads.
    """

    def __init__(
        self,
        store: VariableStore,
        *,
        namespace: str = "default",
        workflow: str = "/workflow.yaml",
        instance: str | None = None,
        log: Callable[[str], None] | None = None,
        aid: str | None = None,
    ) -> None:
        if not isinstance(store, VariableStore):
            raise TypeError(f"store must be a VariableStore, not {type(store).__name__}")
        self.aid = check_action_id(new_action_id() if aid is None else aid)
        self.store = store
        instance = new_action_id() if instance is None else instance
        # Building the owners validates namespace, workflow path and instance id up front.
        self._owners = {
            Scope.NAMESPACE: Owner.for_namespace(namespace),
            Scope.WORKFLOW: Owner.for_workflow(namespace, workflow),
            Scope.INSTANCE: Owner.for_instance(namespace, instance),
        }
        self.namespace = namespace
        self.workflow = workflow
        self.instance = instance
        self._log = log
        self._lock = threading.Lock()
        self._writes: list[VariableWrite] = []
        self._logs: list[str] = []

    def owner(self, scope: Scope) -> Owner:
        """Return the owner of this action's variables in ``scope``."""
        return self._owners[Scope.parse(scope)]

    def ref(self, scope: Scope, key: str) -> VariableRef:
        """Return the reference of variable ``key`` in ``scope`` (the key is validated)."""
        return self.owner(scope).ref(key)

    def set_variable(
        self,
        scope: Scope,
        key: str,
        data: VariableData,
        mime_type: str,
        via: Literal["var", "out"],
    ) -> VariableWrite:
        """Store ``data`` (bytes or a stream) as variable ``key`` of ``scope``; record the write.

        A stream is copied into the store in chunks; the record keeps its bytes only up to
        :data:`RECORD_LIMIT`.
        """
        ref = self.ref(scope, key)
        if isinstance(data, bytes | bytearray | memoryview):
            meta = self.store.set(ref, data, mime_type=mime_type)
            kept = bytes(data)
        else:
            tee = _Tee(data)
            meta = self.store.set(ref, tee, mime_type=mime_type)  # type: ignore[arg-type]
            kept = tee.kept()
        write = VariableWrite(ref.scope, key, kept, mime_type, via, meta.size)
        with self._lock:
            self._writes.append(write)
        return write

    def write_log(self, message: str) -> None:
        """Record ``message`` and pass it to the log callback, if any."""
        with self._lock:
            self._logs.append(message)
        if self._log is not None:
            self._log(message)

    @property
    def writes(self) -> tuple[VariableWrite, ...]:
        """Return the variables set so far, in order."""
        with self._lock:
            return tuple(self._writes)

    @property
    def logs(self) -> tuple[str, ...]:
        """Return the lines logged so far, in order."""
        with self._lock:
            return tuple(self._logs)

    def __repr__(self) -> str:
        return (
            f"ActionContext(aid={self.aid!r}, namespace={self.namespace!r}, "
            f"workflow={self.workflow!r}, instance={self.instance!r})"
        )
