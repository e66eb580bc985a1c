"""Tar and tar.gz in and out of the temp dir, through directory descriptors.

Unpacking never extracts by path: every member passes our checks (no name that still climbs
out with ``..`` once cleaned, only regular files and directories) and is then written relative
to the descriptor of its folder, each folder opened with ``O_NOFOLLOW`` (:mod:`._fdio`), so a
symbolic link planted anywhere on the way makes the member fail instead of leading outside.
A leading ``/`` is read relative to the target folder, as Direktiv does and as the archives of
:func:`write_tar_gz` need (their names start with ``/``). Corrupt data is an error, also for
tar.gz (the reference swallows those; semantics §9.5). There is no size cap by default, as in
Direktiv; ``max_size`` (the runners' ``max_extract_size``) sets one (docs/security.md).

Packing follows the reference's ``tarGzDir`` exactly: the folder itself is a member with an
empty name, the others are named by their path below it with a leading ``/`` (``/a.txt``,
``/sub``, ``/sub/b.txt``), directories without a trailing ``/``; only regular files and
directories are included, in name order. Files are read through descriptors too, each one up
to the size it had when opened.
"""

from __future__ import annotations

import gzip
import io
import os
import posixpath
import stat
import tarfile
import tempfile
import zlib
from pathlib import Path
from typing import IO, Final

from direktiv_sdk._compat import override
from direktiv_sdk.errors import ArchiveError
from harness.files._fdio import (
    BoundedReader,
    close,
    create_file,
    list_entries,
    make_folder,
    open_folder,
    open_regular,
    write_all,
)

__all__ = ["extract_archive", "extract_archive_at", "tar_gz_directory", "write_tar_gz"]

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


def make_folders(parent: int, parts: tuple[str, ...]) -> int:
    """Create (0750) and open every folder of ``parts`` below ``parent``; return the last one.

    Raises:
        NotADirectoryError: A part exists and is a file or a symbolic link.
    """
    fd = os.dup(parent)
    try:
        for part in parts:
            child = make_folder(fd, part)
            os.close(fd)
            fd = child
    except BaseException:
        close(fd)
        raise
    return fd


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


def _write_member(
    tar: tarfile.TarFile, member: tarfile.TarInfo, folder: int, relative: str, mode: int | None
) -> None:
    parts = tuple(relative.split("/"))
    parent = make_folders(folder, parts[:-1] if member.isreg() else parts)
    try:
        if not member.isreg():
            return
        source = tar.extractfile(member)
        assert source is not None  # a regular member always has data
        fd = create_file(parent, parts[-1])
        try:
            while chunk := source.read(_CHUNK):
                write_all(fd, chunk)
            if mode is not None:
                os.fchmod(fd, mode)
        finally:
            os.close(fd)
    finally:
        os.close(parent)


def extract_archive_at(
    source: IO[bytes],
    parent: int,
    name: str,
    *,
    archive: str,
    compressed: bool,
    mode: int | None = None,
    max_size: int | None = None,
) -> None:
    """Unpack the tar (``compressed``: tar.gz) stream into the folder ``name`` of ``parent``.

    The folder is created (0750) unless it exists. An empty ``source`` gives an empty folder.
    ``mode`` is applied to every regular file (without it: 0666 minus the umask, whatever the
    archive says); directories get ``0750``. ``archive`` names the archive in errors.
    ``max_size`` caps the bytes of all its files together (``None``: no cap, as Direktiv).

    Raises:
        ArchiveError: The data is not a (complete) archive, a member is hostile, or something
            on the way is not a folder (a planted symbolic link, for example).
    """
    try:
        folder = make_folder(parent, name)
    except OSError as exc:
        raise ArchiveError(archive, f"its folder cannot be created ({exc.strerror})") from exc
    try:
        _extract(
            source, folder, archive=archive, compressed=compressed, mode=mode, max_size=max_size
        )
    finally:
        os.close(folder)


def _extract(
    source: IO[bytes],
    folder: int,
    *,
    archive: str,
    compressed: bool,
    mode: int | None,
    max_size: int | None,
) -> None:
    head = source.read(_CHUNK)
    if not head:
        return
    stream: io.BufferedIOBase = io.BufferedReader(_Rejoined(head, source), _CHUNK)
    if compressed:
        stream = gzip.GzipFile(fileobj=stream, mode="rb")
    try:
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            total = 0
            for member in tar:
                relative = _relative_name(member, archive)
                total += member.size if member.isreg() else 0
                if max_size is not None and total > max_size:
                    raise ArchiveError(
                        archive,
                        f"it unpacks to more than {max_size} bytes (max_extract_size); "
                        "store a smaller archive or raise the limit",
                    )
                if relative:
                    try:
                        _write_member(tar, member, folder, relative, mode)
                    except OSError as exc:
                        raise ArchiveError(
                            archive,
                            f"member {member.name!r} cannot be written ({exc.strerror}: "
                            f"{exc.filename}); a file or link is in its way",
                        ) from exc
        if compressed:
            # tarfile stops at the end-of-archive blocks; reading on verifies gzip's trailer.
            while stream.read(_CHUNK):
                pass
    except ArchiveError:
        raise
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise ArchiveError(archive, f"the gzip data is corrupt or truncated ({exc})") from exc
    except tarfile.TarError as exc:
        raise ArchiveError(archive, f"it is not a valid tar archive ({exc})") from exc
    except OSError as exc:
        raise ArchiveError(archive, f"a member cannot be written ({exc})") from exc


def extract_archive(
    source: IO[bytes],
    dest: Path,
    *,
    name: str,
    compressed: bool,
    permissions: int | None = None,
) -> None:
    """Unpack into the folder ``dest`` (its parent must exist); see :func:`extract_archive_at`."""
    parent = os.open(dest.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        extract_archive_at(
            source, parent, dest.name, archive=name, compressed=compressed, mode=permissions
        )
    finally:
        os.close(parent)


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


def _add_tree(tar: tarfile.TarFile, root: int) -> None:
    """Add the folder ``root`` and everything below it, depth first, without recursion."""
    tar.addfile(_header("", os.fstat(root), tarfile.DIRTYPE))
    stack: list[tuple[int, str, list[tuple[str, int]]]] = [(os.dup(root), "", [])]
    stack[0][2].extend(reversed(list_entries(stack[0][0])))
    try:
        while stack:
            folder, name, pending = stack[-1]
            if not pending:
                os.close(folder)
                stack.pop()
                continue
            entry, mode = pending.pop()
            child = f"{name}/{entry}"
            if stat.S_ISDIR(mode):
                try:
                    fd = open_folder(folder, entry)
                except (FileNotFoundError, NotADirectoryError):
                    continue  # gone or swapped meanwhile
                tar.addfile(_header(child, os.fstat(fd), tarfile.DIRTYPE))
                stack.append((fd, child, list(reversed(list_entries(fd)))))
            elif stat.S_ISREG(mode):
                fd_or_none = open_regular(folder, entry)
                if fd_or_none is None:
                    continue  # gone or swapped meanwhile
                opened = os.fstat(fd_or_none)
                with BoundedReader(fd_or_none, opened.st_size) as reader:
                    tar.addfile(_header(child, opened, tarfile.REGTYPE), reader)
    finally:
        for folder, _, _ in stack:
            close(folder)


def write_tar_gz(folder: int, out: IO[bytes]) -> None:
    """Write the folder ``folder`` (a descriptor) to ``out`` as the reference's tar.gz."""
    # mtime=0 makes equal folders give equal bytes (Go's gzip writer also writes 0).
    with (
        gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as compressed,
        tarfile.open(fileobj=compressed, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        _add_tree(tar, folder)


def tar_gz_directory(path: Path) -> bytes:
    """Return the folder ``path`` as a tar.gz, named as Direktiv's sidecar names its members."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        with tempfile.SpooledTemporaryFile(max_size=_CHUNK) as spool:
            write_tar_gz(fd, spool)
            spool.seek(0)
            return spool.read()
    finally:
        os.close(fd)
