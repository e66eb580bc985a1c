"""The ``file://`` store: one plain file per variable under a root folder.

Layout (see ``docs/layout.md``): ``<root>/<ns>/namespace/<key>``,
``<root>/<ns>/workflow/<percent-encoded path>/<key>`` and ``<root>/<ns>/instance/<id>/<key>``;
each value file holds the raw bytes. Its metadata (mime type, times, version token) is a JSON
record in the file's ``user.direktiv`` extended attribute, or, where the filesystem has no user
xattrs, in a hidden sidecar ``.<key>.<inode>.meta`` beside it. Writes go to an anonymous
``O_TMPFILE`` (a killed writer leaves nothing), get their metadata, and are then linked in
(create-only) or renamed over the old file (overwrite): the rename is the single commit point.
Writers of one folder serialise on ``flock(.lock)``; readers take no lock.
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import os
import stat
import threading
from collections.abc import Iterable, Iterator, Mapping
from typing import ClassVar, Final, get_args

from backends._common import (
    check_options,
    new_version,
    owner_prefix,
    precondition_exists,
    precondition_missing,
    precondition_stale,
    unique_now,
)
from backends._local_files import (
    MARKER_NAME,
    XATTR_NAME,
    MetadataGone,
    MetadataMode,
    Record,
    current_record,
    encode_record,
    lock_folder,
    meta_name,
    read_exactly,
    read_record,
    resolve_mode,
    sweep,
    temp_name,
    write_all,
)
from direktiv_sdk._compat import override
from direktiv_sdk.errors import InvalidStoreURLError, StoreError, StoreNotFoundError
from direktiv_sdk.store import (
    Owner,
    Variable,
    VariableData,
    VariableMeta,
    VariableReader,
    VariableRef,
    VariableStore,
    translate_os_error,
    validate_key,
)

__all__ = ["MARKER_NAME", "LocalStore", "local_path"]

_OPTIONS: Final = ("create", "fsync", "metadata")
_MODES: Final = ("auto", *get_args(MetadataMode))
_READ_RETRIES: Final = 100
_SWEPT_LIMIT: Final = 4096
_O_TMPFILE: Final = getattr(os, "O_TMPFILE", 0)
_DIR_FLAGS: Final = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC


def _subfolders(folder: str) -> builtins.list[str]:
    try:
        with os.scandir(folder) as entries:
            return [e.name for e in entries if not e.name.startswith(".") and e.is_dir()]
    except (FileNotFoundError, NotADirectoryError):
        return []


def _owner_folders(root: str) -> Iterator[tuple[str, ...]]:
    """Yield the segments of every folder below ``root`` that may be an owner's."""
    for namespace in _subfolders(root):
        base = os.path.join(root, namespace)
        for scope in _subfolders(base):
            if scope == "namespace":
                yield (namespace, scope)
            elif scope in ("workflow", "instance"):
                for name in _subfolders(os.path.join(base, scope)):
                    yield (namespace, scope, name)


def local_path(url: str) -> str:
    """Return the folder a ``file://`` URL names, or raise :class:`InvalidStoreURLError`.

    ``file:///abs`` and ``file://localhost/abs`` (RFC 8089) are absolute; anything else after
    ``file://`` is a path relative to the working directory (``./x``, ``x/y``, ``~/x``). User,
    password, query and fragment have no meaning for a folder and are refused.
    """
    scheme, _, path = url.partition("://")
    if scheme.lower() != "file":
        raise InvalidStoreURLError(url, "a local store URL starts with file://")
    if "\x00" in path:
        raise InvalidStoreURLError(url, "a path cannot contain a NUL character; remove it")
    if "?" in path or "#" in path:
        raise InvalidStoreURLError(
            url, "a query or fragment is not part of a folder name; pass options to open_store"
        )
    authority = path.split("/", 1)[0]
    if "@" in authority:
        raise InvalidStoreURLError(
            url, "a file URL has no user or password: write file:///path or file://./path"
        )
    if authority.lower() == "localhost":
        path = "/" + path.split("/", 1)[1] if "/" in path else ""
    if not path:
        raise InvalidStoreURLError(
            url, "a local store URL needs a path, like file://./.direktiv or file:///abs/path"
        )
    return path


class LocalStore(VariableStore):
    """Variables as plain files under a root folder; safe across threads and processes."""

    use_o_tmpfile: ClassVar[bool] = bool(_O_TMPFILE)
    """Write through anonymous ``O_TMPFILE`` files (Linux); else through named temp files."""

    url_options: ClassVar[Mapping[str, type]] = {"create": bool, "fsync": bool, "metadata": str}
    """Options a URL query may set: ``file://./x?metadata=sidecar&fsync=true``."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        fsync: bool = False,
        metadata: str = "auto",
        create: bool = True,
    ) -> None:
        """Open (creating if needed) the store under ``root``.

        Args:
            root: The store's folder.
            create: Create the store if it does not exist; ``False`` raises
                :class:`~direktiv_sdk.errors.StoreNotFoundError` instead (read-only commands).
            fsync: Flush every write to disk before it counts as done (slow; off by default).
            metadata: ``"xattr"``, ``"sidecar"`` or ``"auto"`` (xattr where the filesystem
                supports it). An existing store keeps the mode it was created with.
        """
        self.url = f"file://{os.fspath(root)}"
        if not isinstance(fsync, bool):
            raise InvalidStoreURLError(
                self.url, f"option 'fsync' must be True or False, not {fsync!r}"
            )
        if not isinstance(create, bool):
            raise InvalidStoreURLError(
                self.url, f"option 'create' must be True or False, not {create!r}"
            )
        if metadata not in _MODES:
            raise InvalidStoreURLError(
                self.url, f"option 'metadata' must be one of {', '.join(_MODES)}, not {metadata!r}"
            )
        self.root = os.path.abspath(os.path.expanduser(os.fspath(root)))
        self.fsync = fsync
        if not create and not os.path.isfile(os.path.join(self.root, MARKER_NAME)):
            raise StoreNotFoundError(self.root)
        try:
            self.metadata: MetadataMode = resolve_mode(self.url, self.root, metadata)
        except OSError as exc:
            raise translate_os_error(f"the store at {self.root!r}", exc) from exc
        self._swept: set[str] = set()
        self._swept_lock = threading.Lock()
        self._o_tmpfile = self.use_o_tmpfile

    @classmethod
    def from_url(cls, url: str, /, **options: object) -> LocalStore:
        """Open ``file://PATH`` (``file://./rel``, ``file:///abs``, ``file://localhost/abs``).

        Options: create, fsync, metadata.
        """
        check_options(url, options, _OPTIONS)
        store = cls(local_path(url), **options)  # type: ignore[arg-type]
        store.url = url
        return store

    # ------------------------------------------------------------------ helpers

    def _folder(self, owner: Owner) -> str:
        return f"{self.root}/{owner_prefix(owner)}"

    def _open_folder(self, folder: str) -> int:
        try:
            return os.open(folder, _DIR_FLAGS)
        except FileNotFoundError:
            os.makedirs(folder, exist_ok=True)
            return os.open(folder, _DIR_FLAGS)

    def _meta(self, ref: VariableRef, record: Record) -> VariableMeta:
        return VariableMeta(
            ref, record.size, record.mime_type, record.created_at, record.updated_at, record.version
        )

    def _open_value(self, ref: VariableRef) -> tuple[int, Record] | None:
        """Open the value file and read the metadata of exactly that file."""
        folder = self._folder(ref.owner)
        path = f"{folder}/{ref.key}"
        for _ in range(_READ_RETRIES):
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                return None
            try:
                st = os.fstat(fd)
                if not stat.S_ISREG(st.st_mode):
                    raise StoreError(f"cannot read {ref}: {path!r} is not a regular file")
                record = read_record(fd, st, self.metadata, folder, ref.key)
            except MetadataGone:
                os.close(fd)
                continue
            except BaseException:
                os.close(fd)
                raise
            return fd, record
        raise StoreError(f"cannot read {ref}: it changed {_READ_RETRIES} times while being read")

    # ------------------------------------------------------------------ hooks

    @override
    def _get(self, ref: VariableRef) -> Variable | None:
        try:
            opened = self._open_value(ref)
            if opened is None:
                return None
            fd, record = opened
            try:
                data = read_exactly(fd, record.size)
            finally:
                os.close(fd)
        except OSError as exc:
            raise translate_os_error(ref, exc) from exc
        return Variable(self._meta(ref, record), data)

    @override
    def _open(self, ref: VariableRef) -> VariableReader | None:
        try:
            opened = self._open_value(ref)
            if opened is None:
                return None
            fd, record = opened
            raw = open(fd, "rb", buffering=0)  # noqa: SIM115 - the reader owns and closes it
        except OSError as exc:
            raise translate_os_error(ref, exc) from exc
        return VariableReader(self._meta(ref, record), raw)

    @override
    def _set(
        self,
        ref: VariableRef,
        data: VariableData,
        mime_type: str,
        if_absent: bool,
        if_version: str | None,
    ) -> VariableMeta:
        folder = self._folder(ref.owner)
        named: str | None = None
        try:
            dfd = self._open_folder(folder)
        except OSError as exc:
            raise translate_os_error(ref, exc) from exc
        try:
            try:
                fd = self._anonymous_file(dfd)
                if fd < 0:
                    named = temp_name(ref.key, new_version())
                    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
                    fd = os.open(named, flags, 0o644, dir_fd=dfd)
            except OSError as exc:
                raise translate_os_error(ref, exc) from exc
            try:
                size = 0
                # The source stream is read outside the OSError translation: its own errors
                # reach the caller unchanged.
                for chunk in self._iter_chunks(data):
                    try:
                        size += write_all(fd, chunk)
                    except OSError as exc:
                        raise translate_os_error(ref, exc) from exc
                try:
                    if self.fsync:
                        os.fsync(fd)
                    lfd = lock_folder(dfd)
                    try:
                        return self._publish(
                            ref, folder, dfd, fd, named, size, mime_type, if_absent, if_version
                        )
                    finally:
                        os.close(lfd)  # releases the lock
                except OSError as exc:
                    raise translate_os_error(ref, exc) from exc
            finally:
                os.close(fd)
                if named is not None:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(named, dir_fd=dfd)
        finally:
            os.close(dfd)

    def _anonymous_file(self, dfd: int) -> int:
        """Return an ``O_TMPFILE`` in the folder, or -1 where the filesystem has none."""
        if not self._o_tmpfile:
            return -1
        try:
            return os.open(".", _O_TMPFILE | os.O_WRONLY | os.O_CLOEXEC, 0o644, dir_fd=dfd)
        except OSError as exc:
            # Kernels or filesystems without O_TMPFILE answer EISDIR (the flag reads as a
            # plain directory open) or EOPNOTSUPP; use named temp files from then on.
            if exc.errno not in (errno.EISDIR, errno.EOPNOTSUPP, errno.EINVAL):
                raise
            self._o_tmpfile = False
            return -1

    def _publish(  # noqa: PLR0917 - one private call site, the arguments are the write's state
        self,
        ref: VariableRef,
        folder: str,
        dfd: int,
        fd: int,
        named: str | None,
        size: int,
        mime_type: str,
        if_absent: bool,
        if_version: str | None,
    ) -> VariableMeta:
        """Commit the written temp file as the variable's value; call it holding the lock."""
        key = ref.key
        if folder not in self._swept:
            sweep(dfd, self.metadata)
            with self._swept_lock:
                if len(self._swept) >= _SWEPT_LIMIT:
                    self._swept.clear()  # bounded: a long-lived store sees many instances
                self._swept.add(folder)
        current = current_record(folder, dfd, key, self.metadata)
        if if_absent and current is not None:
            raise precondition_exists(ref)
        if if_version is not None:
            if current is None:
                raise precondition_missing(ref)
            if current.version != if_version:
                raise precondition_stale(ref, if_version)
        now = unique_now()
        created = now if current is None else current.created_at
        version = new_version()
        record = encode_record(mime_type, created, now, version)
        if self.metadata == "xattr":
            os.setxattr(fd, XATTR_NAME, record)
            self._commit(ref, dfd, fd, named, version, current is not None, if_absent)
        else:
            inode = os.fstat(fd).st_ino
            new_meta = meta_name(key, inode)
            flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
            mfd = os.open(new_meta, flags, 0o644, dir_fd=dfd)
            try:
                write_all(mfd, record)
                if self.fsync:
                    os.fsync(mfd)
            finally:
                os.close(mfd)
            try:
                self._commit(ref, dfd, fd, named, version, current is not None, if_absent)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(new_meta, dir_fd=dfd)
                raise
            if current is not None and current.inode != inode:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(meta_name(key, current.inode), dir_fd=dfd)
        if self.fsync:
            os.fsync(dfd)
        return VariableMeta(ref, size, mime_type, created, now, version)

    def _commit(  # noqa: PLR0917 - one private call site
        self,
        ref: VariableRef,
        dfd: int,
        fd: int,
        named: str | None,
        unique: str,
        replace: bool,
        if_absent: bool,
    ) -> None:
        """Make the temp file the variable's value: link it in, or rename it over the old one."""
        key = ref.key
        if not replace:
            try:
                # linkat(AT_SYMLINK_FOLLOW) turns the anonymous file into a named one; it fails
                # atomically if the name exists (someone bypassing the lock created it).
                if named is None:
                    os.link(f"/proc/self/fd/{fd}", key, dst_dir_fd=dfd, follow_symlinks=True)
                else:
                    os.link(named, key, src_dir_fd=dfd, dst_dir_fd=dfd)
                return
            except FileExistsError:
                if if_absent:
                    raise precondition_exists(ref) from None
        if named is None:
            named = temp_name(key, unique)
            os.link(f"/proc/self/fd/{fd}", named, dst_dir_fd=dfd, follow_symlinks=True)
        try:
            os.replace(named, key, src_dir_fd=dfd, dst_dir_fd=dfd)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(named, dir_fd=dfd)
            raise

    @override
    def _delete(self, ref: VariableRef, if_version: str | None) -> bool:
        folder = self._folder(ref.owner)
        try:
            try:
                dfd = os.open(folder, _DIR_FLAGS)
            except FileNotFoundError:
                if if_version is not None:
                    raise precondition_missing(ref) from None
                return False
            try:
                lfd = lock_folder(dfd)
                try:
                    current = current_record(folder, dfd, ref.key, self.metadata)
                    if current is None:
                        if if_version is not None:
                            raise precondition_missing(ref)
                        return False
                    if if_version is not None and current.version != if_version:
                        raise precondition_stale(ref, if_version)
                    os.unlink(ref.key, dir_fd=dfd)
                    if self.metadata == "sidecar":
                        with contextlib.suppress(FileNotFoundError):
                            os.unlink(meta_name(ref.key, current.inode), dir_fd=dfd)
                    if self.fsync:
                        os.fsync(dfd)
                    return True
                finally:
                    os.close(lfd)
            finally:
                os.close(dfd)
        except OSError as exc:
            raise translate_os_error(ref, exc) from exc

    @override
    def _owners(self) -> Iterable[Owner]:
        for segments in _owner_folders(self.root):
            try:
                owner = Owner.from_segments(segments)
            except ValueError:
                continue  # not an owner's folder (the plugin's _pytest, another tool's files)
            if self._list(owner):
                yield owner

    @override
    def _list(self, owner: Owner) -> builtins.list[VariableMeta]:
        folder = self._folder(owner)
        try:
            with os.scandir(folder) as entries:
                names = [e.name for e in entries if not e.name.startswith(".") and e.is_file()]
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise translate_os_error(owner, exc) from exc
        found = []
        for name in names:
            try:
                ref = owner.ref(validate_key(name))
            except ValueError:
                continue  # not a variable: a file someone else put here
            try:
                opened = self._open_value(ref)
            except OSError as exc:
                raise translate_os_error(ref, exc) from exc
            if opened is not None:
                fd, record = opened
                os.close(fd)
                found.append(self._meta(ref, record))
        return found
