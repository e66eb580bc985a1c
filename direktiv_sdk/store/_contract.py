"""The ``VariableStore`` ABC every backend keeps, and the stream its ``open`` returns.

Public methods of :class:`VariableStore` are final template methods: they check their arguments
and the backend's capabilities once, here, and then call the ``_hooks`` a backend implements.
"""

from __future__ import annotations

import builtins
import io
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, ClassVar, Final, final

from direktiv_sdk.errors import (
    InvalidMimeTypeError,
    PreconditionFailedError,
    StoreError,
    UnsupportedOperationError,
)
from direktiv_sdk.store._model import (
    CHUNK_SIZE,
    Owner,
    Variable,
    VariableData,
    VariableMeta,
    VariableRef,
)

if TYPE_CHECKING:
    from types import TracebackType
    from typing import Self

__all__ = [
    "MAX_MIME_TYPE",
    "VariableReader",
    "VariableStore",
    "check_mime_type",
    "translate_os_error",
]


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


MAX_MIME_TYPE: Final = 255
"""The longest mime type a store keeps (RFC 6838 allows 127 characters each side of ``/``)."""


def check_mime_type(mime_type: object) -> str:
    """Return ``mime_type`` if a store can keep it (a ``str`` of at most 255 characters)."""
    if not isinstance(mime_type, str):
        raise TypeError(f"mime_type must be a str, not {type(mime_type).__name__}")
    if len(mime_type) > MAX_MIME_TYPE:
        raise InvalidMimeTypeError(mime_type, MAX_MIME_TYPE)
    return mime_type


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
        check_mime_type(mime_type)
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
    def owners(self, namespace: str | None = None) -> builtins.list[Owner]:
        """Return the owners that hold variables (of one ``namespace``, or all), sorted.

        Namespaces first, then workflows by path, then instances by id.
        """
        if namespace is not None and not isinstance(namespace, str):
            raise TypeError(f"namespace must be a str, not {type(namespace).__name__}")
        found = {o for o in self._owners() if namespace is None or o.namespace == namespace}
        order = {"namespace": 0, "workflow": 1, "instance": 2}
        return sorted(
            found,
            key=lambda o: (o.namespace, order[o.scope.value], o.workflow or "", o.instance or ""),
        )

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
        if mime_type is not None:
            check_mime_type(mime_type)
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
                import random  # noqa: PLC0415 - only contended updates need it (start-up)

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

    def _owners(self) -> Iterable[Owner]:
        """Yield every owner with at least one variable (backends override this)."""
        raise UnsupportedOperationError(type(self).__name__, "listing owners")


def translate_os_error(ref: object, exc: OSError) -> StoreError:
    """Return a :class:`StoreError` for an ``OSError`` raised while accessing ``ref``."""
    err = StoreError(f"cannot access {ref}: {exc.strerror or exc}")
    err.__cause__ = exc
    return err
