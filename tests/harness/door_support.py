"""Helpers the front-door tests share: a free loopback port and a private network namespace."""

from __future__ import annotations

import functools
import shutil
import socket
import subprocess

__all__ = ["free_port", "private_network"]


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
