"""Read a namespace file below the tree's root, never leaving it and never blocking.

The path is walked one component at a time from a descriptor of the root, each folder opened
with ``O_NOFOLLOW | O_DIRECTORY`` (``openat``), so a symbolic link anywhere in the tree, or one
swapped in meanwhile, is not followed (Direktiv's namespace files live in its database and have
no links). The file itself is checked with ``fstatat`` before it is opened and opened with
``O_NONBLOCK``: a FIFO, socket or device is refused without blocking.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Final

__all__ = ["read_namespace_file"]

_DIR_FLAGS: Final = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS: Final = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def _not_a_file(name: str) -> IsADirectoryError:
    return IsADirectoryError(errno.EISDIR, "not a regular file", name)


def _link(name: str) -> OSError:
    return OSError(errno.ELOOP, "is a symbolic link", name)


def read_namespace_file(root: Path, parts: Sequence[str]) -> bytes | None:
    """Return the bytes of the file ``root/parts...``, or ``None`` if it does not exist.

    Raises:
        IsADirectoryError: It is a folder, a FIFO, a socket or a device.
        OSError: ``ELOOP``: it or a folder on its way is a symbolic link; or it cannot be read.
    """
    if not parts:
        raise _not_a_file(str(root))
    try:
        folder = os.open(root, _DIR_FLAGS & ~os.O_NOFOLLOW)  # the root itself is the user's
    except FileNotFoundError:
        return None
    try:
        for part in parts[:-1]:
            try:
                child = os.open(part, _DIR_FLAGS, dir_fd=folder)
            except (FileNotFoundError, NotADirectoryError):
                return None
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    raise _link(part) from exc
                raise
            os.close(folder)
            folder = child
        name = parts[-1]
        try:
            mode = os.stat(name, dir_fd=folder, follow_symlinks=False).st_mode
        except FileNotFoundError:
            return None
        if stat.S_ISLNK(mode):
            raise _link(name)
        if not stat.S_ISREG(mode):
            raise _not_a_file(name)
        fd = os.open(name, _FILE_FLAGS, dir_fd=folder)
    finally:
        os.close(folder)
    with os.fdopen(fd, "rb") as file:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise _not_a_file(name)
        os.set_blocking(fd, True)
        return file.read()
