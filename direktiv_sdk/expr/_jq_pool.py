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
import marshal
import math
import os
import selectors
import signal
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Final

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

_WORKER: Final = Path(__file__).with_name("_jq_worker.py")
_HEADER: Final = struct.Struct("<Q")
_KILL_WAIT: Final = 5.0

Reply = tuple[str, object, bool]


class WorkerLimitError(Exception):
    """An evaluation hit a limit; the message says which, in gojq's words where it has some."""


class WorkerTimeoutError(WorkerLimitError):
    """The evaluation ran out of its time (``context deadline exceeded``)."""


class WorkerCrashedError(Exception):
    """The worker process died during an evaluation (a signal or an exit status)."""


class _Worker:
    """One worker process and its pipes."""

    def __init__(self, memory_limit: int, max_depth: int, timeout: float) -> None:
        cpu_seconds = str(math.ceil(timeout) + 2)  # a backstop: the parent kills it first
        self.process = subprocess.Popen(
            [sys.executable, "-I", str(_WORKER), str(memory_limit), str(max_depth), cpu_seconds],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env={},
            cwd="/",
            bufsize=0,
        )
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self._send_fd = self.process.stdin.fileno()
        self._reply_fd = self.process.stdout.fileno()

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            self.process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(_KILL_WAIT)
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()

    def call(self, program: str, text: str, deadline: float) -> Reply:
        data = marshal.dumps((program, text))
        view = memoryview(_HEADER.pack(len(data)) + data)
        try:
            while view:
                view = view[os.write(self._send_fd, view) :]
        except BrokenPipeError:
            raise self._crash() from None
        (size,) = _HEADER.unpack(self._receive(_HEADER.size, deadline))
        reply: Reply = marshal.loads(self._receive(size, deadline))
        return reply

    def _receive(self, size: int, deadline: float) -> bytes:
        buffer = bytearray()
        with selectors.DefaultSelector() as selector:
            selector.register(self._reply_fd, selectors.EVENT_READ)
            while len(buffer) < size:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise WorkerTimeoutError("context deadline exceeded")
                if not selector.select(left):
                    continue
                chunk = os.read(self._reply_fd, size - len(buffer))
                if not chunk:
                    raise self._crash()
                buffer += chunk
        return bytes(buffer)

    def _crash(self) -> Exception:
        try:
            code = self.process.wait(_KILL_WAIT)
        except subprocess.TimeoutExpired:
            return WorkerCrashedError("the jq worker process stopped answering")
        if code == -signal.SIGABRT:
            return WorkerLimitError("out of memory")  # libjq aborts when malloc fails
        if code < 0:
            name = signal.Signals(-code).name
            return WorkerCrashedError(f"the jq worker process was killed by {name}")
        return WorkerCrashedError(f"the jq worker process exited with status {code}")


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
        self._idle: list[_Worker] = []
        self._busy: set[_Worker] = set()
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

    def _take(self) -> _Worker:
        worker = None
        with self._lock:
            while self._idle and worker is None:
                worker = self._idle.pop()
                if not worker.alive():
                    worker.kill()
                    worker = None
        if worker is None:
            worker = _Worker(self.memory_limit, self.max_depth, self.timeout)
        with self._lock:
            self._busy.add(worker)
        return worker

    def _give_back(self, worker: _Worker, healthy: bool) -> None:
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
