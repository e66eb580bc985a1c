"""The variable store contract: scopes, owners, references, metadata and the ``VariableStore`` ABC.

Public methods of :class:`VariableStore` are final template methods: they check their arguments
and the backend's capabilities once, here, and then call the ``_hooks`` a backend implements.
"""

from __future__ import annotations

import builtins
import io
import random
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import IO, TYPE_CHECKING, ClassVar, Final, final
from urllib.parse import quote, unquote

from direktiv_sdk.errors import (
    InvalidKeyError,
    InvalidOwnerError,
    InvalidScopeError,
    PreconditionFailedError,
    StoreError,
    UnsupportedOperationError,
)

if TYPE_CHECKING:
    from types import TracebackType
    from typing import Self

__all__ = [
    "KEY_PATTERN",
    "Owner",
    "Scope",
    "Variable",
    "VariableData",
    "VariableMeta",
    "VariableReader",
    "VariableRef",
    "VariableStore",
    "format_timestamp",
    "validate_key",
]

KEY_PATTERN: Final = r"^(([a-zA-Z][a-zA-Z0-9_\-\.]*[a-zA-Z0-9])|([a-zA-Z]))$"
"""Direktiv's variable-name rule (``utils.VarNameRegexPattern``); namespaces follow it too."""

_KEY_RE: Final = re.compile(KEY_PATTERN)
_INSTANCE_RE: Final = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9_.\-]{0,126}[A-Za-z0-9])?$")
_FORBIDDEN_PATH_CHARS: Final = re.compile(r"[\x00-\x1f\x7f\\]")

VariableData = bytes | bytearray | memoryview | IO[bytes]
"""What :meth:`VariableStore.set` accepts: bytes-like data or a binary stream."""

CHUNK_SIZE: Final = 1 << 20
"""Streams are copied in chunks of this many bytes, so large values never sit in memory."""


class Scope(StrEnum):
    """The three scopes a variable can live in."""

    INSTANCE = "instance"
    WORKFLOW = "workflow"
    NAMESPACE = "namespace"

    @classmethod
    def parse(cls, value: object) -> Scope:
        """Return the scope named by ``value`` or raise :class:`InvalidScopeError`."""
        if isinstance(value, Scope):
            return value
        if isinstance(value, str):
            try:
                return cls(value)
            except ValueError:
                pass
        raise InvalidScopeError(value, tuple(s.value for s in cls))


def validate_key(key: object) -> str:
    """Return ``key`` if it is a valid variable name, else raise :class:`InvalidKeyError`."""
    if isinstance(key, str) and _KEY_RE.match(key) and "\n" not in key:
        return key
    raise InvalidKeyError(key, KEY_PATTERN)


def _check_namespace(namespace: object) -> str:
    if isinstance(namespace, str) and _KEY_RE.match(namespace) and "\n" not in namespace:
        return namespace
    raise InvalidOwnerError("namespace", namespace, f"namespace names must match {KEY_PATTERN}")


def _check_workflow_path(path: object) -> str:
    rule = (
        "workflow paths must be absolute and clean, like '/flows/a.yaml' "
        "(no '.', '..' or empty segments, no backslashes or control characters)"
    )
    if not isinstance(path, str) or not path.startswith("/") or len(path) < 2:
        raise InvalidOwnerError("workflow path", path, rule)
    if _FORBIDDEN_PATH_CHARS.search(path):
        raise InvalidOwnerError("workflow path", path, rule)
    if any(segment in ("", ".", "..") for segment in path[1:].split("/")):
        raise InvalidOwnerError("workflow path", path, rule)
    return path


def _check_instance_id(instance: object) -> str:
    if isinstance(instance, str) and _INSTANCE_RE.match(instance) and "\n" not in instance:
        return instance
    raise InvalidOwnerError(
        "instance id",
        instance,
        "instance ids are 1-128 letters, digits, '_', '-' or '.', "
        "starting and ending with a letter or digit",
    )


@dataclass(frozen=True, slots=True)
class Owner:
    """Who a set of variables belongs to: a namespace, a workflow file or an instance.

    Build one with :meth:`for_namespace`, :meth:`for_workflow` or :meth:`for_instance`; every
    field is validated so that no two owners can ever address the same data.
    """

    scope: Scope
    namespace: str
    workflow: str | None = None
    instance: str | None = None

    def __post_init__(self) -> None:
        scope = Scope.parse(self.scope)
        object.__setattr__(self, "scope", scope)
        _check_namespace(self.namespace)
        if scope is Scope.WORKFLOW:
            _check_workflow_path(self.workflow)
        elif self.workflow is not None:
            raise InvalidOwnerError(
                "workflow path", self.workflow, f"only workflow scope takes one, not {scope}"
            )
        if scope is Scope.INSTANCE:
            _check_instance_id(self.instance)
        elif self.instance is not None:
            raise InvalidOwnerError(
                "instance id", self.instance, f"only instance scope takes one, not {scope}"
            )

    @classmethod
    def for_namespace(cls, namespace: str) -> Owner:
        """Return the owner of namespace-scope variables."""
        return cls(Scope.NAMESPACE, namespace)

    @classmethod
    def for_workflow(cls, namespace: str, workflow: str) -> Owner:
        """Return the owner of the workflow-scope variables of one flow file."""
        return cls(Scope.WORKFLOW, namespace, workflow=workflow)

    @classmethod
    def for_instance(cls, namespace: str, instance: str) -> Owner:
        """Return the owner of the instance-scope variables of one run."""
        return cls(Scope.INSTANCE, namespace, instance=instance)

    def ref(self, key: str) -> VariableRef:
        """Return a reference to variable ``key`` of this owner."""
        return VariableRef(self, key)

    @property
    def segments(self) -> tuple[str, ...]:
        """Return the storage path segments: ``(ns, scope[, encoded workflow | instance id])``.

        A workflow path is percent-encoded into one segment (``/a/b.yaml`` → ``%2Fa%2Fb.yaml``),
        so the layout has a fixed depth and no owner's folder can contain another's.
        """
        if self.scope is Scope.WORKFLOW:
            assert self.workflow is not None
            return (self.namespace, "workflow", quote(self.workflow, safe=""))
        if self.scope is Scope.INSTANCE:
            assert self.instance is not None
            return (self.namespace, "instance", self.instance)
        return (self.namespace, "namespace")

    @classmethod
    def from_segments(cls, segments: tuple[str, ...]) -> Owner:
        """Return the owner whose :attr:`segments` are ``segments``."""
        if len(segments) == 2 and segments[1] == "namespace":
            return cls.for_namespace(segments[0])
        if len(segments) == 3 and segments[1] == "workflow":
            return cls.for_workflow(segments[0], unquote(segments[2]))
        if len(segments) == 3 and segments[1] == "instance":
            return cls.for_instance(segments[0], segments[2])
        raise InvalidOwnerError("owner path", "/".join(segments), "not a variable folder")

    def __str__(self) -> str:
        if self.scope is Scope.WORKFLOW:
            return f"workflow {self.namespace}:{self.workflow}"
        if self.scope is Scope.INSTANCE:
            return f"instance {self.namespace}:{self.instance}"
        return f"namespace {self.namespace}"


@dataclass(frozen=True, slots=True)
class VariableRef:
    """One variable: an owner and a key (validated against Direktiv's variable-name rule)."""

    owner: Owner
    key: str

    def __post_init__(self) -> None:
        if not isinstance(self.owner, Owner):
            raise TypeError(f"owner must be an Owner, not {type(self.owner).__name__}")
        validate_key(self.key)

    @property
    def scope(self) -> Scope:
        """Return the scope of the variable."""
        return self.owner.scope

    def __str__(self) -> str:
        return f"{self.owner} variable {self.key!r}"


def format_timestamp(value: datetime) -> str:
    """Return ``value`` as RFC 3339 UTC with microseconds: ``2026-01-02T03:04:05.000006Z``."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True, slots=True)
class VariableMeta:
    """Everything known about a stored variable except its data."""

    ref: VariableRef
    size: int
    mime_type: str
    created_at: datetime
    updated_at: datetime
    version: str
    """An opaque token that changes on every write; pass it back as ``if_version``."""

    @property
    def name(self) -> str:
        """Return the variable's key."""
        return self.ref.key

    def to_json(self) -> dict[str, str | int]:
        """Return the listing form: ``name, size, mimeType, createdAt, updatedAt``."""
        return {
            "name": self.ref.key,
            "size": self.size,
            "mimeType": self.mime_type,
            "createdAt": format_timestamp(self.created_at),
            "updatedAt": format_timestamp(self.updated_at),
        }


@dataclass(frozen=True, slots=True)
class Variable:
    """A stored variable: its metadata and its bytes."""

    meta: VariableMeta
    data: bytes

    @property
    def name(self) -> str:
        """Return the variable's key."""
        return self.meta.ref.key

    @property
    def mime_type(self) -> str:
        """Return the stored mime type (possibly ``""``)."""
        return self.meta.mime_type

    @property
    def version(self) -> str:
        """Return the version token of this value."""
        return self.meta.version


class VariableReader(io.RawIOBase):
    """A readable binary stream over one variable's data, with its :attr:`meta`."""

    def __init__(self, meta: VariableMeta, raw: IO[bytes]) -> None:
        super().__init__()
        self.meta = meta
        self._raw = raw

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        data = self._raw.read(len(view))
        n = len(data)
        view[:n] = data
        return n

    def read(self, size: int | None = -1) -> bytes:
        return self._raw.read(-1 if size is None else size)

    def close(self) -> None:
        if not self.closed:
            try:
                self._raw.close()
            finally:
                super().close()


def _now() -> datetime:
    return datetime.now(UTC)


def _check_data(value: object) -> VariableData:
    if isinstance(value, bytes | bytearray | memoryview):
        return value
    if isinstance(value, io.TextIOBase):
        raise TypeError(
            f"variable data must be bytes or a binary stream, not a text stream "
            f"({type(value).__name__}); open the file in 'rb' mode or encode the text"
        )
    if callable(getattr(value, "read", None)):
        return value  # type: ignore[return-value]
    raise TypeError(f"variable data must be bytes or a binary stream, not {type(value).__name__}")


def _check_version(if_version: object) -> None:
    if if_version is not None and not isinstance(if_version, str):
        raise TypeError(f"if_version must be a str, not {type(if_version).__name__}")


class VariableStore(ABC):
    """Persistent variables in three scopes; every backend keeps this contract.

    Subclasses implement the ``_get``, ``_open``, ``_set``, ``_delete`` and ``_list`` hooks and
    declare what they support with the ``supports_*`` flags. The public methods validate
    everything first, so hooks receive only well-formed references.
    """

    supports_conditional_set: ClassVar[bool] = True
    """Whether create-only (``if_absent``) and compare-and-set (``if_version``) work."""

    url: str
    """The URL this store was opened from (``memory://``, ``file://…``, ``s3://…``)."""

    # ------------------------------------------------------------------ public API

    @final
    def get(self, ref: VariableRef) -> Variable | None:
        """Return the variable, or ``None`` when it does not exist."""
        return self._get(self._check_ref(ref))

    @final
    def open(self, ref: VariableRef) -> VariableReader | None:
        """Return a stream over the variable's data, or ``None`` when it does not exist."""
        return self._open(self._check_ref(ref))

    @final
    def set(
        self,
        ref: VariableRef,
        data: VariableData,
        *,
        mime_type: str = "",
        if_absent: bool = False,
        if_version: str | None = None,
    ) -> VariableMeta:
        """Write the variable atomically and return its new metadata.

        By default the last writer wins (Direktiv's behaviour). ``if_absent=True`` writes only
        if the variable does not exist; ``if_version`` writes only if the stored version is
        still that one. A lost condition raises :class:`PreconditionFailedError` and leaves the
        stored value untouched.
        """
        self._check_ref(ref)
        data = _check_data(data)
        if not isinstance(mime_type, str):
            raise TypeError(f"mime_type must be a str, not {type(mime_type).__name__}")
        if not isinstance(if_absent, bool):
            raise TypeError(f"if_absent must be a bool, not {type(if_absent).__name__}")
        _check_version(if_version)
        if if_absent and if_version is not None:
            raise ValueError("pass at most one of if_absent and if_version")
        if (if_absent or if_version is not None) and not self.supports_conditional_set:
            raise UnsupportedOperationError(type(self).__name__, "conditional writes")
        return self._set(ref, data, mime_type, if_absent, if_version)

    @final
    def delete(self, ref: VariableRef, *, if_version: str | None = None) -> bool:
        """Delete the variable; return whether something was deleted.

        With ``if_version`` the delete happens only if the stored version is still that one,
        else :class:`PreconditionFailedError` is raised.
        """
        self._check_ref(ref)
        _check_version(if_version)
        if if_version is not None and not self.supports_conditional_set:
            raise UnsupportedOperationError(type(self).__name__, "conditional deletes")
        return self._delete(ref, if_version)

    @final
    def list(self, owner: Owner) -> builtins.list[VariableMeta]:
        """Return the metadata of the owner's variables, oldest first (no data)."""
        if not isinstance(owner, Owner):
            raise TypeError(f"owner must be an Owner, not {type(owner).__name__}")
        return sorted(self._list(owner), key=lambda m: (m.created_at, m.ref.key))

    @final
    def clear(self, owner: Owner) -> int:
        """Delete every variable of ``owner``; return how many were deleted."""
        return sum(1 for meta in self.list(owner) if self._delete(meta.ref, None))

    @final
    def update(
        self,
        ref: VariableRef,
        fn: Callable[[bytes | None], bytes | None],
        *,
        mime_type: str | None = None,
        max_attempts: int = 100,
    ) -> VariableMeta | None:
        """Apply ``fn`` to the current data (``None`` if missing) with compare-and-set retries.

        ``fn`` returns the new data, or ``None`` to delete. The write is retried until no other
        writer came in between, so concurrent updates never lose an increment. The mime type is
        kept unless ``mime_type`` is given. Returns the new metadata (``None`` after a delete).
        """
        self._check_ref(ref)
        if not self.supports_conditional_set:
            raise UnsupportedOperationError(type(self).__name__, "update() (compare-and-set)")
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, not {max_attempts}")
        for attempt in range(max_attempts):
            current = self._get(ref)
            new = fn(None if current is None else current.data)
            try:
                if new is None:
                    if current is not None:
                        self._delete(ref, current.version)
                    return None
                mime = (
                    mime_type if mime_type is not None else (current.mime_type if current else "")
                )
                if current is None:
                    return self._set(ref, _check_data(new), mime, True, None)
                return self._set(ref, _check_data(new), mime, False, current.version)
            except PreconditionFailedError:
                # Back off with jitter so contending writers spread out; bounded by max_attempts.
                time.sleep(random.uniform(0, min(0.05, 0.0005 * 2**attempt)))
        raise PreconditionFailedError(ref, f"update() lost to other writers {max_attempts} times")

    def close(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release connections and file handles; the store is unusable afterwards."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({getattr(self, 'url', '?')!r})"

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def _check_ref(ref: VariableRef) -> VariableRef:
        if not isinstance(ref, VariableRef):
            raise TypeError(f"ref must be a VariableRef, not {type(ref).__name__}")
        return ref

    @staticmethod
    def _iter_chunks(data: VariableData) -> Iterator[bytes | bytearray | memoryview]:
        """Yield ``data`` in chunks of at most :data:`CHUNK_SIZE` bytes (streams read lazily)."""
        if isinstance(data, bytes | bytearray | memoryview):
            yield data
            return
        while chunk := data.read(CHUNK_SIZE):
            yield chunk

    @staticmethod
    def _now() -> datetime:
        return _now()

    # ------------------------------------------------------------------ backend hooks

    @abstractmethod
    def _get(self, ref: VariableRef) -> Variable | None: ...

    @abstractmethod
    def _open(self, ref: VariableRef) -> VariableReader | None: ...

    @abstractmethod
    def _set(
        self,
        ref: VariableRef,
        data: VariableData,
        mime_type: str,
        if_absent: bool,
        if_version: str | None,
    ) -> VariableMeta:
        """Write atomically; raise PreconditionFailedError when a condition does not hold."""

    @abstractmethod
    def _delete(self, ref: VariableRef, if_version: str | None) -> bool: ...

    @abstractmethod
    def _list(self, owner: Owner) -> builtins.list[VariableMeta]: ...


def translate_os_error(ref: object, exc: OSError) -> StoreError:
    """Return a :class:`StoreError` for an ``OSError`` raised while accessing ``ref``."""
    err = StoreError(f"cannot access {ref}: {exc.strerror or exc}")
    err.__cause__ = exc
    return err
