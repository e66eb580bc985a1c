"""Run moto's S3 server on 127.0.0.1 in a child process for the benchmarks.

The server runs in its own interpreter so that its request handling does not share the GIL with
the client being measured. It exits when its stdin closes, so it never outlives the benchmark.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import urllib.request
from typing import Final

__all__ = ["MotoServer"]

_START_TIMEOUT: Final = 60.0
_STOP_TIMEOUT: Final = 10.0

_CHILD: Final = """
import logging, sys
from moto.server import ThreadedMotoServer
logging.getLogger("werkzeug").setLevel(logging.ERROR)
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
host, port = server.get_host_and_port()
print(f"http://{host}:{port}", flush=True)
sys.stdin.read()  # until the parent closes the pipe (or exits)
server.stop()
"""


class MotoServer:
    """A moto S3 server in a child process: ``start()``, then ``url``, then ``stop()``."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen[str] | None = None
        self.url = ""

    def start(self) -> MotoServer:
        """Start the server and wait (bounded) until it reports its URL."""
        self._proc = subprocess.Popen(
            [sys.executable, "-c", _CHILD],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert self._proc.stdout is not None
        ready, _, _ = select.select([self._proc.stdout], [], [], _START_TIMEOUT)
        line = self._proc.stdout.readline().strip() if ready else ""
        if not line.startswith("http://127.0.0.1:"):
            self.stop()
            raise RuntimeError(f"moto server did not start within {_START_TIMEOUT:.0f}s")
        self.url = line
        return self

    def create_bucket(self, name: str) -> None:
        """Create a bucket (moto accepts unsigned requests)."""
        request = urllib.request.Request(f"{self.url}/{name}", method="PUT")
        with urllib.request.urlopen(request, timeout=_STOP_TIMEOUT) as response:
            response.read()

    def stop(self) -> None:
        """Stop the server (closing its stdin) and wait for it, killing it if it hangs."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            proc.wait(_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(_STOP_TIMEOUT)
        if proc.stdout is not None:
            proc.stdout.close()

    def __enter__(self) -> MotoServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
