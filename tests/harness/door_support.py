"""Helpers the front-door and server tests share: a free port, a private network, a wait."""

from __future__ import annotations

import functools
import shutil
import socket
import subprocess
import time
from collections.abc import Callable

__all__ = ["free_port", "private_network", "until"]


def free_port() -> int:
    """Return a loopback TCP port that is free now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@functools.cache
def private_network() -> list[str]:
    """Return the command prefix of a private network namespace with loopback up, or ``[]``."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return []
    prefix = [unshare, "-rn", "sh", "-c", 'ip link set lo up 2>/dev/null; exec "$@"', "sh"]
    try:
        probe = subprocess.run([*prefix, "true"], timeout=30, check=False, capture_output=True)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return prefix if probe.returncode == 0 else []


def until(condition: Callable[[], bool], timeout: float) -> None:
    """Wait (polling every 5 ms, at most ``timeout`` seconds) until ``condition()`` holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)
