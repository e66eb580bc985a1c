"""File access below a folder through directory file descriptors, never by re-resolving paths.

Every path component is opened with ``O_NOFOLLOW`` relative to the descriptor of its parent
(``openat``), so a component swapped for a symbolic link at any moment makes the open fail
instead of leading elsewhere. Files that are not regular (FIFOs, sockets, devices) are
recognised with ``fstatat`` before they are opened, and opened only with ``O_NONBLOCK`` so a
FIFO swapped in meanwhile cannot block; the open descriptor is checked again with ``fstat``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator
from typing import IO, Final

__all__ = [
    "BoundedReader",
    "close",
    "create_file",
    "list_entries",
    "make_folder",
    "open_folder",
    "open_folders",
    "open_regular",
    "write_all",
]

_DIR_FLAGS: Final = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_READ_FLAGS: Final = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_WRITE_FLAGS: Final = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC


def open_folder(parent: int, name: str) -> int:
    """Open the folder ``name`` in the folder ``parent`` (a descriptor); never follow a link.

    Raises:
        NotADirectoryError: ``name`` is a file, or a symbolic link (to anything).
        FileNotFoundError: It does not exist.
    """
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=parent)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # O_NOFOLLOW on a link: it is not a folder we enter
            raise NotADirectoryError(errno.ENOTDIR, "is a symbolic link", name) from exc
        raise


def open_folders(root: int, parts: tuple[str, ...] | list[str]) -> int:
    """Open the folder ``root/parts[0]/...`` component by component; return a new descriptor."""
    fd = os.dup(root)
    try:
        for part in parts:
            child = open_folder(fd, part)
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def make_folder(parent: int, name: str, mode: int = 0o750) -> int:
    """Create the folder ``name`` in ``parent`` unless it exists; open and return it."""
    with contextlib.suppress(FileExistsError):
        os.mkdir(name, mode, dir_fd=parent)
    return open_folder(parent, name)


def open_regular(parent: int, name: str) -> int | None:
    """Open the regular file ``name`` in ``parent`` for reading; ``None`` for anything else.

    A missing file, a folder, a symbolic link, a FIFO, a socket or a device gives ``None``; none
    of them is opened (a FIFO swapped in after the check is opened without blocking, and
    refused).
    """
    try:
        if not stat.S_ISREG(os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode):
            return None
        fd = os.open(name, _READ_FLAGS, dir_fd=parent)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return None
    os.set_blocking(fd, True)
    return fd


def create_file(parent: int, name: str, mode: int = 0o666, *, exclusive: bool = False) -> int:
    """Create (or truncate) the file ``name`` in ``parent`` for writing; never follow a link.

    ``exclusive`` refuses an existing file (``FileExistsError``): in a fresh folder, one that
    is already there was planted.
    """
    flags = _WRITE_FLAGS | os.O_NONBLOCK | (os.O_EXCL if exclusive else 0)
    try:
        fd = os.open(name, flags, mode, dir_fd=parent)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise FileExistsError(errno.EEXIST, "is a symbolic link", name) from exc
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):  # a FIFO or device planted there
        os.close(fd)
        raise FileExistsError(errno.EEXIST, "is not a regular file", name)
    os.set_blocking(fd, True)
    return fd


def write_all(fd: int, data: bytes) -> None:
    """Write every byte of ``data`` to ``fd`` (``os.write`` may write less than it is given)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def list_entries(folder: int) -> list[tuple[str, int]]:
    """Return ``(name, st_mode)`` of every entry of ``folder`` in name order (links not followed).

    Entries that vanish while listed are left out.
    """
    found = []
    with os.scandir(folder) as entries:
        for entry in entries:
            try:
                mode = entry.stat(follow_symlinks=False).st_mode
            except FileNotFoundError:
                continue
            found.append((entry.name, mode))
    found.sort()
    return found


def close(fd: int) -> None:
    """Close ``fd``, ignoring errors (for cleanup paths)."""
    with contextlib.suppress(OSError):
        os.close(fd)


class BoundedReader:
    """A binary stream of exactly ``size`` bytes of ``fd`` (its size when it was opened).

    A process that keeps appending to a file cannot make its collection endless; one that
    truncates it meanwhile gives zeros for the missing end (a tar header already holds the
    size).
    """

    def __init__(self, fd: int, size: int) -> None:
        self._file: IO[bytes] = os.fdopen(fd, "rb", buffering=0)
        self._left = size

    def read(self, n: int | None = -1) -> bytes:
        """Return up to ``n`` bytes (all that is left for ``-1``)."""
        if self._left <= 0:
            return b""
        want = self._left if n is None or n < 0 else min(n, self._left, 1 << 20)
        data = self._file.read(want) or bytes(want)
        self._left -= len(data)
        return data

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> BoundedReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[bytes]:
        while chunk := self.read(1 << 20):
            yield chunk
