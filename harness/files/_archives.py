"""Tar and tar.gz in and out of the temp dir, safely.

Unpacking never extracts blindly: every member passes our own checks (no name that still climbs
out with ``..`` once cleaned, only regular files and directories) and then tarfile's ``data``
extraction filter, so nothing can land outside the target folder. A leading ``/`` is read
relative to the target folder, as Direktiv does and as the archives of :func:`tar_gz_directory`
need (their names start with ``/``).
Corrupt data is an error, also for tar.gz (the reference swallows those; semantics §9.5).

Packing follows the reference's ``tarGzDir`` exactly: the folder itself is a member with an
empty name, the others are named by their path below it with a leading ``/`` (``/a.txt``,
``/sub``, ``/sub/b.txt``), directories without a trailing ``/``; only regular files and
directories are included, in name order.
"""

from __future__ import annotations

import errno
import gzip
import io
import os
import posixpath
import stat
import tarfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import IO, Final

from typing_extensions import override

from direktiv_sdk.errors import ArchiveError

__all__ = ["extract_archive", "make_folders", "tar_gz_directory"]

_CHUNK: Final = 1 << 20

_KINDS: Final = (
    (tarfile.TarInfo.issym, "symbolic link"),
    (tarfile.TarInfo.islnk, "hard link"),
    (tarfile.TarInfo.ischr, "character device"),
    (tarfile.TarInfo.isblk, "block device"),
    (tarfile.TarInfo.isfifo, "fifo"),
)


def _kind(member: tarfile.TarInfo) -> str:
    for test, kind in _KINDS:
        if test(member):
            return kind
    return f"member of type {member.type!r}"


def _relative_name(member: tarfile.TarInfo, archive: str) -> str:
    """Return where ``member`` goes below the target folder (``""`` = the folder itself)."""
    raw = member.name
    # Names are cleaned first, as the reference does: `d/../ok` is `ok`, `d/../../x` leaves.
    relative = posixpath.normpath(raw.lstrip("/")) if raw.strip("/") else ""
    if "\x00" in raw or relative == ".." or relative.startswith("../"):
        raise ArchiveError(
            archive,
            f"member {raw!r} climbs out of the folder with '..'; remove it from the archive",
        )
    if not (member.isreg() or member.isdir()):
        raise ArchiveError(
            archive,
            f"member {raw!r} is a {_kind(member)}; only regular files and directories are allowed",
        )
    relative = "" if relative == "." else relative
    if not relative and not member.isdir():
        raise ArchiveError(archive, f"member {raw!r} is a file without a name; name it")
    return relative


def _make_filter(
    archive: str, permissions: int | None
) -> Callable[[tarfile.TarInfo, str], tarfile.TarInfo | None]:
    def check(member: tarfile.TarInfo, path: str) -> tarfile.TarInfo | None:
        relative = _relative_name(member, archive)
        if not relative:
            return None  # the folder itself: it exists already
        try:
            member = tarfile.data_filter(member.replace(name=relative, deep=False), path)
        except tarfile.FilterError as exc:
            raise ArchiveError(archive, f"tarfile's data filter refused it: {exc}") from exc
        # Parents the archive does not list get 0750 too (tarfile would use 0777 - umask).
        make_folders(Path(path), Path(relative).parent)
        if member.isdir():
            return member.replace(mode=0o750, deep=False)
        # Without `permissions`, files get the default create mode (0666 minus the umask), as
        # the reference writes them: a mode of None tells tarfile not to chmod.
        return member.replace(mode=permissions, deep=False)  # type: ignore[arg-type] # typeshed lacks None

    return check


def make_folders(base: Path, relative: Path) -> None:
    """Create every missing folder of ``relative`` below ``base`` with mode 0750.

    Raises:
        NotADirectoryError: A part of the path exists and is not a folder.
    """
    folder = base
    for part in relative.parts:
        folder = folder / part
        try:
            folder.mkdir(mode=0o750)
        except FileExistsError:
            if not folder.is_dir():
                raise NotADirectoryError(errno.ENOTDIR, "Not a directory", str(folder)) from None


class _Rejoined(io.RawIOBase):
    """A stream that yields ``head`` and then the rest of ``tail`` (we peeked at it)."""

    def __init__(self, head: bytes, tail: IO[bytes]) -> None:
        super().__init__()
        self._head = memoryview(head)
        self._tail = tail

    @override
    def readable(self) -> bool:
        return True

    @override
    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        if self._head:
            n = min(len(view), len(self._head))
            view[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._tail.read(len(view))
        view[: len(data)] = data
        return len(data)


def extract_archive(
    source: IO[bytes],
    dest: Path,
    *,
    name: str,
    compressed: bool,
    permissions: int | None = None,
) -> None:
    """Unpack the tar (``compressed``: tar.gz) stream ``source`` into the new folder ``dest``.

    An empty ``source`` gives an empty folder. ``permissions`` is applied to every regular file
    (without it: 0666 minus the umask, whatever the archive says); directories get ``0750``.
    ``name`` names the archive in errors.

    Raises:
        ArchiveError: The data is not a (complete) archive, or a member is hostile.
    """
    dest.mkdir(mode=0o750, parents=True, exist_ok=True)
    head = source.read(_CHUNK)
    if not head:
        return
    stream: io.BufferedIOBase = io.BufferedReader(_Rejoined(head, source), _CHUNK)
    if compressed:
        stream = gzip.GzipFile(fileobj=stream, mode="rb")
    check = _make_filter(name, permissions)
    try:
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for member in tar:
                tar.extract(member, dest, set_attrs=True, filter=check)
        if compressed:
            # tarfile stops at the end-of-archive blocks; reading on verifies gzip's trailer.
            while stream.read(_CHUNK):
                pass
    except ArchiveError:
        raise
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise ArchiveError(name, f"the gzip data is corrupt or truncated ({exc})") from exc
    except tarfile.TarError as exc:
        raise ArchiveError(name, f"it is not a valid tar archive ({exc})") from exc
    except OSError as exc:
        raise ArchiveError(name, f"a member cannot be written ({exc})") from exc


class _GoTarInfo(tarfile.TarInfo):
    """A header named exactly as Go's tar writer names it (no ``/`` appended to directories)."""

    @override
    def get_info(self) -> dict[str, object]:  # type: ignore[override]
        info: dict[str, object] = super().get_info()  # type: ignore[assignment]
        info["name"] = self.name
        return info


def _header(name: str, st: os.stat_result, kind: bytes) -> _GoTarInfo:
    info = _GoTarInfo(name)
    info.type = kind
    info.mode = stat.S_IMODE(st.st_mode)
    info.uid, info.gid = st.st_uid, st.st_gid
    info.mtime = int(st.st_mtime)
    info.size = st.st_size if kind == tarfile.REGTYPE else 0
    return info


def _add_directory(tar: tarfile.TarFile, path: str, name: str, st: os.stat_result) -> None:
    tar.addfile(_header(name, st, tarfile.DIRTYPE))
    with os.scandir(path) as entries:
        children = sorted(entries, key=lambda entry: entry.name)
    for entry in children:
        child = f"{name}/{entry.name}"
        child_stat = entry.stat(follow_symlinks=False)
        if stat.S_ISDIR(child_stat.st_mode):
            _add_directory(tar, entry.path, child, child_stat)
        elif stat.S_ISREG(child_stat.st_mode):
            fd = os.open(entry.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            with os.fdopen(fd, "rb") as handle:
                opened = os.fstat(handle.fileno())
                if stat.S_ISREG(opened.st_mode):  # it may have been swapped meanwhile
                    tar.addfile(_header(child, opened, tarfile.REGTYPE), handle)


def tar_gz_directory(path: Path) -> bytes:
    """Return the folder ``path`` as a tar.gz, named as Direktiv's sidecar names its members."""
    buffer = io.BytesIO()
    # mtime=0 makes equal folders give equal bytes (Go's gzip writer also writes 0).
    with (
        gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as compressed,
        tarfile.open(fileobj=compressed, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        _add_directory(tar, str(path), "", os.lstat(path))
    return buffer.getvalue()
