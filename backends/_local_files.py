"""Low-level file work of the local store: records, temp files, locks, sweeping, the marker.

Functions that work inside an owner folder take its directory file descriptor (``dfd``) and
names relative to it, so the folder cannot be swapped under a write.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import stat
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Literal, cast, get_args

from direktiv_sdk.errors import InvalidStoreURLError, StoreError

__all__ = [
    "LOCK_NAME",
    "MARKER_NAME",
    "XATTR_NAME",
    "MetadataMode",
    "Record",
    "current_record",
    "decode_record",
    "encode_record",
    "is_pid_alive",
    "lock_folder",
    "meta_name",
    "read_exactly",
    "read_record",
    "resolve_mode",
    "sweep",
    "temp_name",
    "write_all",
]

MetadataMode = Literal["xattr", "sidecar"]

XATTR_NAME: Final = "user.direktiv"
"""The extended attribute holding a value file's metadata record (xattr mode)."""

LOCK_NAME: Final = ".lock"
"""The hidden file in every owner folder that writers ``flock``."""

MARKER_NAME: Final = ".direktiv-store.json"
"""The file at the store root recording the layout format and the metadata mode."""

_FORMAT: Final = 1
_HAS_XATTR: Final = hasattr(os, "getxattr")
_NO_XATTR_ERRNOS: Final = frozenset({errno.ENODATA, errno.ENOTSUP, errno.EOPNOTSUPP})


@dataclass(frozen=True, slots=True)
class Record:
    """The metadata of one value file, as stored (plus the inode it belongs to)."""

    mime_type: str
    created_at: datetime
    updated_at: datetime
    version: str
    inode: int
    size: int


_json_string = json.JSONEncoder().encode
_json_object = json.JSONDecoder().decode


def _stamp(value: datetime) -> str:
    # The format of direktiv_sdk.store.format_timestamp for UTC values, without strftime's cost.
    return "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ" % (  # noqa: UP031 - fastest formatter here
        value.year,
        value.month,
        value.day,
        value.hour,
        value.minute,
        value.second,
        value.microsecond,
    )


def encode_record(
    mime_type: str, created_at: datetime, updated_at: datetime, version: str
) -> bytes:
    """Return the JSON metadata record: ``{"mimeType", "createdAt", "updatedAt", "version"}``.

    Both times must be UTC.
    """
    return (
        f'{{"mimeType":{_json_string(mime_type)},"createdAt":"{_stamp(created_at)}",'
        f'"updatedAt":"{_stamp(updated_at)}","version":{_json_string(version)}}}'
    ).encode()


def decode_record(raw: bytes) -> tuple[str, datetime, datetime, str] | None:
    """Return ``(mime type, created at, updated at, version)``, or None if ``raw`` is damaged."""
    try:
        fields = _json_object(raw.decode())
        return (
            str(fields["mimeType"]),
            datetime.fromisoformat(fields["createdAt"]).astimezone(UTC),
            datetime.fromisoformat(fields["updatedAt"]).astimezone(UTC),
            str(fields["version"]),
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def _record(raw: bytes, st: os.stat_result) -> Record:
    fields = decode_record(raw)
    if fields is None:
        return default_record(st)
    return Record(*fields, st.st_ino, st.st_size)


def default_record(st: os.stat_result) -> Record:
    """Return the metadata of a value file that has none (e.g. copied in by hand)."""
    mtime = datetime.fromtimestamp(st.st_mtime_ns // 1000 / 1e6, UTC)
    version = f"stat-{st.st_ino:x}-{st.st_mtime_ns:x}-{st.st_size:x}"
    return Record("", mtime, mtime, version, st.st_ino, st.st_size)


def meta_name(key: str, inode: int) -> str:
    """Return the sidecar file name of the value file ``key`` with inode ``inode``."""
    return f".{key}.{inode}.meta"


_pid = os.getpid()


def _after_fork() -> None:
    global _pid  # noqa: PLW0603 - the cached process id, refreshed in a forked child
    _pid = os.getpid()


os.register_at_fork(after_in_child=_after_fork)


_NAME_MAX: Final = 255
"""The longest file name, in bytes, of the file systems we run on (ext4, xfs, btrfs, tmpfs)."""


def temp_name(key: str, unique: str) -> str:
    """Return the hidden temp name ``.<key>.tmp-<pid>-<unique>`` (``unique``: a fresh token).

    A key too long for that name (file names end at 255 bytes) gets ``.tmp-<pid>-<unique>``.
    """
    name = f".{key}.tmp-{_pid}-{unique}"
    return name if len(name.encode()) <= _NAME_MAX else f".tmp-{_pid}-{unique}"


class MetadataGone(Exception):  # noqa: N818 - internal signal, never leaves the backend
    """The sidecar of an opened value file vanished: a writer replaced the file meanwhile."""


def read_record(
    fd: int, st: os.stat_result, mode: MetadataMode, folder: str | int, key: str
) -> Record:
    """Return the metadata of the open value file ``fd``; ``folder`` is a path or a dir fd.

    Raises :class:`MetadataGone` when a sidecar is missing because the file was replaced.
    """
    if mode == "xattr":
        try:
            raw = os.getxattr(fd, XATTR_NAME)
        except OSError as exc:
            if exc.errno not in _NO_XATTR_ERRNOS:
                raise
            return default_record(st)
        return _record(raw, st)
    name = meta_name(key, st.st_ino)
    try:
        if isinstance(folder, int):
            mfd = os.open(name, os.O_RDONLY | os.O_CLOEXEC, dir_fd=folder)
        else:
            mfd = os.open(f"{folder}/{name}", os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        try:
            now = (
                os.stat(key, dir_fd=folder)
                if isinstance(folder, int)
                else os.stat(f"{folder}/{key}")
            )
        except FileNotFoundError:
            raise MetadataGone from None
        if now.st_ino != st.st_ino:
            raise MetadataGone from None
        return default_record(st)  # still the same file: it never had a sidecar
    try:
        raw = os.read(mfd, 1 << 16)
    finally:
        os.close(mfd)
    return _record(raw, st)


def probe_xattr(fd: int) -> bool:
    """Return whether the filesystem of ``fd`` stores user extended attributes."""
    if not _HAS_XATTR:
        return False
    try:
        os.setxattr(fd, XATTR_NAME, b"probe")
        os.removexattr(fd, XATTR_NAME)
    except OSError as exc:
        if exc.errno in _NO_XATTR_ERRNOS or exc.errno == errno.EPERM:
            return False
        raise
    return True


def lock_folder(dfd: int) -> int:
    """Take the folder's writer lock (``flock`` on ``.lock``); close the returned fd to release.

    ``flock`` locks belong to an open file description, and every call opens its own, so the
    lock excludes other threads of this process as well as other processes.
    """
    lfd = os.open(LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644, dir_fd=dfd)
    try:
        fcntl.flock(lfd, fcntl.LOCK_EX)
    except BaseException:
        os.close(lfd)
        raise
    return lfd


def current_record(folder: str, dfd: int, key: str, mode: MetadataMode) -> Record | None:
    """Return the metadata of the value file ``key``; call it holding the folder lock."""
    if mode == "xattr":
        # One getxattr by path replaces open + fstat + fgetxattr + close on the hot path;
        # under the lock nobody replaces the file, so inode and size are not needed.
        try:
            fields = decode_record(os.getxattr(f"{folder}/{key}", XATTR_NAME))
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno not in _NO_XATTR_ERRNOS:
                raise
            fields = None
        if fields is not None:
            return Record(*fields, 0, 0)
    try:
        fd = os.open(key, os.O_RDONLY | os.O_CLOEXEC, dir_fd=dfd)
    except FileNotFoundError:
        return None
    try:
        return read_record(fd, os.fstat(fd), mode, dfd, key)
    finally:
        os.close(fd)


def is_pid_alive(pid: int) -> bool:
    """Return whether a process with this id exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep(dfd: int, mode: MetadataMode) -> int:
    """Remove leftovers of crashed writers from a folder; call it holding the folder lock.

    Leftovers are temp files of processes that no longer exist and, in sidecar mode, sidecars
    whose value file is gone or was replaced. Returns how many files were removed.
    """
    removed = 0
    with os.scandir(dfd) as entries:
        names = [e.name for e in entries if e.name.startswith(".") and e.name != LOCK_NAME]
    for name in names:
        stale = False
        base, _, tail = name.rpartition(".")
        if tail.startswith("tmp-"):
            pid = tail.split("-")[1]
            stale = pid.isdigit() and not is_pid_alive(int(pid))
        elif tail == "meta" and mode == "sidecar":
            key, _, inode = base[1:].rpartition(".")
            if inode.isdigit():
                try:
                    st = os.stat(key, dir_fd=dfd, follow_symlinks=False)
                    stale = st.st_ino != int(inode) or not stat.S_ISREG(st.st_mode)
                except FileNotFoundError:
                    stale = True
        if stale:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name, dir_fd=dfd)
                removed += 1
    return removed


def read_exactly(fd: int, size: int) -> bytes:
    """Read ``size`` bytes (fewer if the file shrank) with as few system calls as possible."""
    if size == 0:
        return b""
    first = os.read(fd, min(size, 1 << 30))
    if len(first) == size or not first:
        return first
    parts = [first]
    got = len(first)
    while got < size and (part := os.read(fd, min(size - got, 1 << 30))):
        parts.append(part)
        got += len(part)
    return b"".join(parts)


def write_all(fd: int, chunk: bytes | bytearray | memoryview) -> int:
    """Write all of ``chunk`` (``os.write`` may write less); return its length."""
    view = memoryview(chunk).cast("B")
    total = len(view)
    while view:
        view = view[os.write(fd, view) :]
    return total


def resolve_mode(url: str, root: str, wanted: str) -> MetadataMode:
    """Return the store's metadata mode, creating ``root`` and its marker file if needed."""
    os.makedirs(root, exist_ok=True)
    marker = os.path.join(root, MARKER_NAME)
    recorded = _read_marker(url, marker)
    if recorded is None:
        _create_marker(url, root, marker, wanted)
        recorded = _read_marker(url, marker)  # ours, or a racing opener's
        if recorded is None:
            raise StoreError(f"cannot create {marker!r}: it vanished; try again")
    if recorded not in get_args(MetadataMode):
        raise InvalidStoreURLError(
            url, f"{marker!r} names an unknown metadata mode {recorded!r}; repair it"
        )
    if wanted not in ("auto", recorded):
        raise InvalidStoreURLError(
            url,
            f"this store keeps metadata in {recorded!r} mode; "
            f"open it with metadata={recorded!r} or 'auto'",
        )
    return cast(MetadataMode, recorded)


def _read_marker(url: str, marker: str) -> object:
    try:
        with open(marker, "rb") as f:
            fields = json.load(f)
    except FileNotFoundError:
        return None
    except ValueError:
        fields = None
    if not isinstance(fields, dict) or "metadata" not in fields:
        raise InvalidStoreURLError(url, f"{marker!r} is not a store marker; repair or remove it")
    return fields["metadata"]


def _create_marker(url: str, root: str, marker: str, wanted: str) -> None:
    tmp = f"{marker}.tmp-{os.getpid()}-{os.urandom(6).hex()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    try:
        xattr = probe_xattr(fd)
        if wanted == "xattr" and not xattr:
            raise InvalidStoreURLError(
                url,
                f"the filesystem of {root!r} has no user extended attributes; "
                "use metadata='sidecar' or 'auto'",
            )
        mode = wanted if wanted != "auto" else ("xattr" if xattr else "sidecar")
        write_all(fd, json.dumps({"format": _FORMAT, "metadata": mode}).encode() + b"\n")
        with contextlib.suppress(FileExistsError):
            os.link(tmp, marker)  # create-only: a racing opener's marker wins
    finally:
        os.close(fd)
        os.unlink(tmp)
