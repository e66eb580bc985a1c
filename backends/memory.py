"""The ``memory://`` store: variables in this process's memory, on an fsspec MemoryFileSystem.

``memory://`` opens a new private store on every call; ``memory://NAME`` opens the store named
``NAME``, shared by every open in this process until :meth:`MemoryStore.discard` drops it. Each
store has its own :class:`~fsspec.implementations.memory.MemoryFileSystem` (never fsspec's
process-global dict), whose files mirror the store's layout: ``/<ns>/namespace/<key>``.

The files catch up with the store when the filesystem is read: a write only notes its path,
and the first access to the filesystem's ``store`` dict (which every fsspec call goes through)
turns the noted paths into ``MemoryFile`` objects. Building a file object on every write would
cost more than the write itself, and most stores are never looked at through fsspec.
"""

from __future__ import annotations

import builtins
import io
import itertools
import re
import threading
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, ClassVar, Final

from backends._common import (
    check_options,
    owner_prefix,
    precondition_exists,
    precondition_missing,
    precondition_stale,
    unique_now,
)
from direktiv_sdk._compat import override
from direktiv_sdk.errors import InvalidStoreURLError
from direktiv_sdk.store import (
    Owner,
    Variable,
    VariableData,
    VariableMeta,
    VariableReader,
    VariableRef,
    VariableStore,
)

if TYPE_CHECKING:
    from fsspec.implementations.memory import MemoryFile, MemoryFileSystem

__all__ = ["MemoryStore"]

_NAME_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


class _State:
    """The data of one memory store: shared by every :class:`MemoryStore` opened on its name."""

    def __init__(self) -> None:
        self._fs: MemoryFileSystem | None = None
        self.files: dict[str, MemoryFile] = {}
        """The filesystem's path -> file dict (filled only once someone reads the filesystem)."""
        # owner folder -> key -> Variable. A Variable is immutable, so readers take no lock:
        # one dict lookup always yields a consistent (meta, data) pair.
        self.owners: dict[str, dict[str, Variable]] = {}
        self.lock = threading.Lock()
        self.versions = itertools.count(1)
        # file path -> the variable now stored there (None: deleted), not yet in the fs files.
        self.unmirrored: dict[str, Variable | None] = {}

    @property
    def fs(self) -> MemoryFileSystem:
        """Return the fsspec view of the data, created on first use (fsspec loads then)."""
        with self.lock:
            if self._fs is None:
                from backends._memory_fs import MirrorFileSystem  # noqa: PLC0415 - start-up

                fs = MirrorFileSystem(global_store=False, skip_instance_cache=True)
                fs._files = self.files
                fs._sync = self.mirror
                self._fs = fs
            return self._fs

    def mirror(self) -> None:
        """Bring the filesystem's files up to date with the variables."""
        if not self.unmirrored:
            return
        from backends._memory_fs import MemoryFile  # noqa: PLC0415 - loaded with the fs

        with self.lock:
            files = self.files
            for path, variable in self.unmirrored.items():
                if variable is None:
                    files.pop(path, None)
                    continue
                # BytesIO shares an immutable bytes buffer, so the file costs no copy.
                file = MemoryFile(self._fs, path, variable.data)
                file.created = variable.meta.created_at
                file.modified = variable.meta.updated_at
                files[path] = file
            self.unmirrored.clear()


_named: dict[str, _State] = {}
_named_lock = threading.Lock()

_PREFIXES: dict[int, tuple[Owner, str]] = {}
"""Owner folders by ``id(owner)``: hashing an Owner runs Python code, ``id`` does not. An entry
holds its owner, so the id cannot be reused by another owner while the entry exists."""


def _prefix(owner: Owner) -> str:
    """Return the owner's folder (see :func:`owner_prefix`), remembering it by ``id(owner)``."""
    entry = _PREFIXES.get(id(owner))
    if entry is None:
        if len(_PREFIXES) >= 4096:
            _PREFIXES.clear()
        entry = _PREFIXES[id(owner)] = (owner, owner_prefix(owner))
    return entry[1]


def _to_bytes(store: VariableStore, data: VariableData) -> bytes:
    if isinstance(data, bytes):
        return data
    if isinstance(data, bytearray | memoryview):
        return bytes(data)
    return b"".join(store._iter_chunks(data))


class MemoryStore(VariableStore):
    """Variables kept in memory; thread-safe, lost when the process ends."""

    url_options: ClassVar[Mapping[str, type]] = {}
    """A memory store takes no options."""

    def __init__(self, name: str | None = None) -> None:
        """Open the store called ``name`` (shared in this process), or a new private one."""
        if name is None:
            self._state = _State()
            self.url = "memory://"
        else:
            if not isinstance(name, str) or not _NAME_RE.match(name):
                raise InvalidStoreURLError(
                    f"memory://{name}",
                    f"memory store name {name!r} must be letters, digits, '_', '-' or '.'; "
                    "use memory:// for a private store",
                )
            with _named_lock:
                self._state = _named.setdefault(name, _State())
            self.url = f"memory://{name}"
        self.name = name

    @classmethod
    def from_url(cls, url: str, /, **options: object) -> MemoryStore:
        """Open ``memory://`` (a new private store) or ``memory://NAME`` (a shared one)."""
        check_options(url, options, ())
        scheme, _, rest = url.partition("://")
        if scheme.lower() != "memory":
            raise InvalidStoreURLError(url, "a memory store URL starts with memory://")
        if not rest:
            return cls()
        if not _NAME_RE.match(rest):
            raise InvalidStoreURLError(
                url,
                f"memory store name {rest!r} must be letters, digits, '_', '-' or '.'; "
                "use memory:// for a private store",
            )
        return cls(rest)

    @classmethod
    def discard(cls, name: str) -> bool:
        """Forget the named store (open instances keep their data); return whether it existed."""
        with _named_lock:
            return _named.pop(name, None) is not None

    @override
    def _owners(self) -> Iterable[Owner]:
        state = self._state
        with state.lock:
            prefixes = [prefix for prefix, folder in state.owners.items() if folder]
        return [Owner.from_segments(tuple(prefix.split("/"))) for prefix in prefixes]

    @property
    def fs(self) -> MemoryFileSystem:
        """Return the fsspec filesystem holding this store's data (read it, do not write it)."""
        return self._state.fs

    @override
    def _get(self, ref: VariableRef) -> Variable | None:
        folder = self._state.owners.get(_prefix(ref.owner))
        return None if folder is None else folder.get(ref.key)

    @override
    def _open(self, ref: VariableRef) -> VariableReader | None:
        variable = self._get(ref)
        if variable is None:
            return None
        return VariableReader(variable.meta, io.BytesIO(variable.data))

    @override
    def _set(
        self,
        ref: VariableRef,
        data: VariableData,
        mime_type: str,
        if_absent: bool,
        if_version: str | None,
    ) -> VariableMeta:
        payload = data if type(data) is bytes else _to_bytes(self, data)
        prefix = _prefix(ref.owner)
        state = self._state
        with state.lock:
            folder = state.owners.get(prefix)
            current = None if folder is None else folder.get(ref.key)
            if if_absent and current is not None:
                raise precondition_exists(ref)
            if if_version is not None:
                if current is None:
                    raise precondition_missing(ref)
                if current.meta.version != if_version:
                    raise precondition_stale(ref, if_version)
            now = unique_now()
            meta = VariableMeta(
                ref,
                len(payload),
                mime_type,
                now if current is None else current.meta.created_at,
                now,
                str(next(state.versions)),
            )
            if folder is None:
                folder = state.owners[prefix] = {}
            folder[ref.key] = variable = Variable(meta, payload)
            state.unmirrored[f"/{prefix}/{ref.key}"] = variable
        return meta

    @override
    def _delete(self, ref: VariableRef, if_version: str | None) -> bool:
        prefix = _prefix(ref.owner)
        state = self._state
        with state.lock:
            folder = state.owners.get(prefix)
            current = None if folder is None else folder.get(ref.key)
            if current is None or folder is None:
                if if_version is not None:
                    raise precondition_missing(ref)
                return False
            if if_version is not None and current.meta.version != if_version:
                raise precondition_stale(ref, if_version)
            del folder[ref.key]
            if not folder:
                del state.owners[prefix]
            path = f"/{prefix}/{ref.key}"
            if path in state.files:
                state.unmirrored[path] = None
            else:
                state.unmirrored.pop(path, None)
        return True

    @override
    def _list(self, owner: Owner) -> builtins.list[VariableMeta]:
        state = self._state
        with state.lock:
            folder = state.owners.get(_prefix(owner))
            return [] if folder is None else [v.meta for v in folder.values()]
