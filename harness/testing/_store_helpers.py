"""Helpers of the store conformance suite: slow and failing streams, guarded threads."""

from __future__ import annotations

import io
import threading
from collections.abc import Callable
from typing import IO, cast

__all__ = ["THREAD_TIMEOUT", "run_threads", "stream"]

THREAD_TIMEOUT = 60.0
"""Seconds any helper thread of a test may run before the test fails."""


class _TrickleReader(io.RawIOBase):
    """A non-seekable stream returning ``data`` in uneven pieces, optionally failing midway."""

    def __init__(self, data: bytes, *, piece: int = 300_007, fail_after: int | None = None) -> None:
        super().__init__()
        self._data = memoryview(data)
        self._pos = 0
        self._piece = piece
        self._fail_after = fail_after

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        if self._fail_after is not None and self._pos >= self._fail_after:
            raise RuntimeError("the source stream broke")
        n = min(len(buffer), self._piece, len(self._data) - self._pos)
        buffer[:n] = self._data[self._pos : self._pos + n]
        self._pos += n
        return n


def stream(data: bytes, *, piece: int = 300_007, fail_after: int | None = None) -> IO[bytes]:
    """Return a :class:`_TrickleReader` typed as the binary stream it is."""
    return cast("IO[bytes]", _TrickleReader(data, piece=piece, fail_after=fail_after))


def run_threads(targets: list[Callable[[], None]]) -> None:
    """Run each target in a thread, join them with a timeout and re-raise the first failure."""
    errors: list[BaseException] = []

    def guard(fn: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                fn()
            except BaseException as exc:  # re-raised in the test thread below
                errors.append(exc)

        return run

    threads = [threading.Thread(target=guard(t), daemon=True) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(THREAD_TIMEOUT)
        assert not thread.is_alive(), f"a store thread did not finish in {THREAD_TIMEOUT}s"
    if errors:
        raise errors[0]
