"""The other process of the race probes: act at the moment the harness opens a file (inotify).

A thread stands in for a process a function left running: it watches a folder with inotify and,
on the first ``IN_OPEN`` of a given file in it, runs its move (swap a folder for a symbolic
link in one atomic ``renameat2(RENAME_EXCHANGE)``, delete files...). Linux only; every wait is
bounded.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import select
import struct
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Final

__all__ = ["OnOpen", "exchange"]

_IN_OPEN: Final = 0x00000020
_IN_NONBLOCK: Final = 0o4000
_AT_FDCWD: Final = -100
_RENAME_EXCHANGE: Final = 2
_EVENT: Final = struct.Struct("iIII")
TIMEOUT: Final = 30.0

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


def exchange(a: Path, b: Path) -> None:
    """Swap the names ``a`` and ``b`` atomically (``renameat2`` with ``RENAME_EXCHANGE``)."""
    result = _libc.renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if result != 0:
        error = ctypes.get_errno()
        raise OSError(error, os.strerror(error), str(a))


class OnOpen:
    """Run ``move`` once, when a file named ``name`` in ``folder`` is first opened."""

    def __init__(self, folder: Path, name: str, move: Callable[[], None]) -> None:
        self._fd = _libc.inotify_init1(_IN_NONBLOCK)
        if self._fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1 failed")
        if _libc.inotify_add_watch(self._fd, os.fsencode(folder), _IN_OPEN) < 0:
            os.close(self._fd)
            raise OSError(ctypes.get_errno(), "inotify_add_watch failed", str(folder))
        self._name = name
        self._move = move
        self.fired = threading.Event()
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        try:
            while not self._stop.is_set():
                ready, _, _ = select.select([self._fd], [], [], 0.05)
                if not ready:
                    continue
                data = os.read(self._fd, 65536)
                offset = 0
                while offset < len(data):
                    _, _, _, size = _EVENT.unpack_from(data, offset)
                    raw = data[offset + _EVENT.size : offset + _EVENT.size + size]
                    offset += _EVENT.size + size
                    if raw.rstrip(b"\0").decode() == self._name:
                        self._move()
                        self.fired.set()
                        return
        except BaseException as exc:  # re-raised by close()
            self.error = exc

    def close(self) -> None:
        """Stop watching (bounded) and re-raise a failure of the move."""
        self._stop.set()
        self._thread.join(TIMEOUT)
        os.close(self._fd)
        if self.error is not None:
            raise self.error

    def __enter__(self) -> OnOpen:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
