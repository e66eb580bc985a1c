"""One jq worker process of :class:`~direktiv_sdk.expr._jq_pool.JqPool` and its pipes.

A module of its own so that ``subprocess`` and ``selectors`` load with the first program that
needs a worker, not with every start of the command line.
"""

from __future__ import annotations

import contextlib
import marshal
import math
import os
import selectors
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Final

from direktiv_sdk.errors import WorkerCrashedError, WorkerLimitError, WorkerTimeoutError

__all__ = ["Reply", "Worker"]

_WORKER: Final = Path(__file__).with_name("_jq_worker.py")
_HEADER: Final = struct.Struct("<Q")
_KILL_WAIT: Final = 5.0

Reply = tuple[str, object, bool]


class Worker:
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
