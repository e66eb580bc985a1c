"""Supervised jq worker processes: evaluations bounded in time and memory, crashes contained.

libjq runs with the GIL held and cannot be interrupted, so a runaway program (``def f: f; f``,
``[range(1e12)]``) would hang or kill the whole process. Programs not known to be cheap
(:mod:`._jq_scan`) run here instead: in a separate Python process (:mod:`._jq_worker`) with an
address-space limit, an empty environment and ``/`` as its working folder, killed when its
time is up (Direktiv's 10 s per evaluation) or when the caller is interrupted (Ctrl-C). Workers
are reused, one per concurrent caller, so an evaluation costs one pipe round trip.
"""

from __future__ import annotations

import atexit
import contextlib
import threading
import time
from typing import TYPE_CHECKING, Final

from direktiv_sdk.errors import WorkerCrashedError, WorkerLimitError, WorkerTimeoutError

if TYPE_CHECKING:
    from direktiv_sdk.expr._jq_process import Worker

__all__ = [
    "DEFAULT_MEMORY_LIMIT",
    "DEFAULT_TIMEOUT",
    "JqPool",
    "WorkerCrashedError",
    "WorkerLimitError",
    "WorkerTimeoutError",
]

DEFAULT_TIMEOUT: Final = 10.0
"""Seconds one evaluation may take: the reference runs gojq with a 10 s context timeout."""

DEFAULT_MEMORY_LIMIT: Final = 1 << 30
"""The address-space limit of a worker process (1 GiB)."""


class JqPool:
    """Worker processes that evaluate jq programs, one per concurrent caller.

    Args:
        timeout: Seconds one evaluation may take before its worker is killed.
        memory_limit: Bytes of address space per worker (``RLIMIT_AS``; 0: no limit).
        max_depth: The deepest result accepted (deeper ones are an error).
    """

    def __init__(
        self,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        memory_limit: int = DEFAULT_MEMORY_LIMIT,
        max_depth: int = 512,
    ) -> None:
        if not timeout > 0:
            raise ValueError(f"invalid JqPool timeout {timeout!r}: use a number of seconds > 0")
        self.timeout = timeout
        self.memory_limit = memory_limit
        self.max_depth = max_depth
        self._idle: list[Worker] = []
        self._busy: set[Worker] = set()
        self._lock = threading.Lock()
        atexit.register(self.close)

    def evaluate(
        self, program: str, text: str, *, limit: float | None = None
    ) -> tuple[object, bool] | None:
        """Return the first result of ``program`` on ``text`` and whether there is a second.

        ``None`` when the program has no result at all. ``limit`` shortens the pool's timeout
        (the seconds left to the running state's deadline).

        Raises:
            ValueError: jq's own error (compile or run time), as the ``jq`` package raises it.
            WorkerLimitError: The time or memory limit, or the depth of the result.
            WorkerCrashedError: The worker died.
        """
        worker = self._take()
        healthy = False
        seconds = self.timeout if limit is None else min(self.timeout, limit)
        try:
            status, value, more = worker.call(program, text, time.monotonic() + seconds)
            healthy = True
        finally:
            # A worker interrupted mid-evaluation (deadline, Ctrl-C) is killed, never reused.
            self._give_back(worker, healthy)
        if status == "ok":
            return value, more
        if status == "none":
            return None
        if status == "error":
            raise ValueError(value)
        if status == "memory":
            raise WorkerLimitError("out of memory")
        raise WorkerLimitError(f"the result is nested deeper than {self.max_depth} levels")

    def interrupt(self) -> None:
        """Kill the workers evaluating now: their callers get :class:`WorkerCrashedError`."""
        with self._lock:
            busy = list(self._busy)
        for worker in busy:
            # Only the signal: the caller's thread still reads the pipes and closes them.
            with contextlib.suppress(OSError):
                worker.process.kill()

    def _take(self) -> Worker:
        worker = None
        with self._lock:
            while self._idle and worker is None:
                worker = self._idle.pop()
                if not worker.alive():
                    worker.kill()
                    worker = None
        if worker is None:
            # The process machinery loads with the first program that needs a worker.
            from direktiv_sdk.expr._jq_process import Worker  # noqa: PLC0415

            worker = Worker(self.memory_limit, self.max_depth, self.timeout)
        with self._lock:
            self._busy.add(worker)
        return worker

    def _give_back(self, worker: Worker, healthy: bool) -> None:
        with self._lock:
            self._busy.discard(worker)
            if healthy and worker.alive():
                self._idle.append(worker)
                return
        worker.kill()

    def close(self) -> None:
        """Stop the idle workers (busy ones stop when their evaluation ends)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.kill()
