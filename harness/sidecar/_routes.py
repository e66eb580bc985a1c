"""Where the front door finds an action's sidecar, and who holds a port that is not ours.

The route book is one small file per registered action (named by its ``aid``, holding the base
URL of the sidecar that owns it) in a folder only this user can open, so any process of the
user on this machine can route to any other: ``$XDG_RUNTIME_DIR/direktiv-sdk`` when it exists,
else ``<tempdir>/direktiv-sdk-<uid>``, both mode 0700 and checked to belong to the user.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final

__all__ = [
    "PROBE_PATH",
    "PROTOCOL",
    "WATCH_PATH",
    "Holder",
    "RouteBook",
    "describe_holder",
    "identity",
    "pid_alive",
    "runtime_dir",
]

PROTOCOL: Final = 1
"""The version of the route book layout and the probe answer; front doors of another version
are not ours."""

PROBE_PATH: Final = "/.direktiv-sdk/front-door"
"""The front door answers ``GET`` here with :func:`identity`, so a process can tell it apart
from a program that merely listens on the port."""

WATCH_PATH: Final = "/.direktiv-sdk/watch"
"""Other processes hold a request here open; it ends when the front door closes or dies."""

_SERVICE: Final = "direktiv-sdk front door"
_PROBE_TIMEOUT: Final = 1.0


def _uid() -> int:
    getuid = getattr(os, "getuid", None)
    return int(getuid()) if getuid is not None else 0


def runtime_dir() -> Path:
    """Return this user's private folder for front door routes (created 0700 if needed).

    Raises:
        PermissionError: The folder exists but belongs to someone else or others may open it.
    """
    xdg = os.environ.get("XDG_RUNTIME_DIR", "")
    if xdg and os.path.isdir(xdg) and os.access(xdg, os.W_OK | os.X_OK):
        root = Path(xdg) / "direktiv-sdk"
    else:
        root = Path(tempfile.gettempdir()) / f"direktiv-sdk-{_uid()}"
    with contextlib.suppress(FileExistsError):
        root.mkdir(mode=0o700)
    info = root.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != _uid() or info.st_mode & 0o077:
        raise PermissionError(
            f"the front door's route folder {str(root)!r} is not a private folder of this user "
            "(mode 0700, owned by you): remove it or fix its owner and mode"
        )
    return root


class RouteBook:
    """The routes of one front door port: ``aid`` → base URL of the sidecar serving it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)

    @classmethod
    def for_port(cls, port: int) -> RouteBook:
        """Return the route book of the front door on ``port``."""
        return cls(runtime_dir() / f"v{PROTOCOL}-port-{port}")

    def add(self, aid: str, url: str) -> None:
        """Route ``aid`` to the sidecar at ``url`` (atomically: readers never see half)."""
        temporary = self.folder / f".{aid}.{os.getpid()}.tmp"
        temporary.write_text(f"{url}\n{os.getpid()}\n")
        os.replace(temporary, self.folder / aid)

    def remove(self, aid: str) -> None:
        """Forget the route of ``aid`` (a missing one is fine)."""
        with contextlib.suppress(FileNotFoundError):
            (self.folder / aid).unlink()

    def find(self, aid: str) -> str | None:
        """Return the base URL serving ``aid``, or ``None``."""
        if not aid or "/" in aid or aid.startswith("."):
            return None
        try:
            text = (self.folder / aid).read_text()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None
        url = text.partition("\n")[0].strip()
        return url or None

    def prune(self) -> int:
        """Remove routes of processes that no longer run; return how many."""
        removed = 0
        with contextlib.suppress(FileNotFoundError):
            for name in os.listdir(self.folder):
                try:
                    pid = int((self.folder / name).read_text().split("\n")[1])
                except (OSError, ValueError, IndexError):
                    continue
                if not pid_alive(pid):
                    self.remove(name)
                    removed += 1
        return removed


def pid_alive(pid: int) -> bool:
    """Return whether process ``pid`` runs (one of another user's counts as running)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def identity(port: int) -> bytes:
    """Return the probe answer of this process's front door on ``port``."""
    return json.dumps(
        {"service": _SERVICE, "protocol": PROTOCOL, "pid": os.getpid(), "uid": _uid(), "port": port}
    ).encode()


@dataclass(frozen=True, slots=True)
class Holder:
    """Who listens on a port we wanted."""

    ours: bool
    """A front door of this user and protocol: route through it."""
    pid: int | None
    description: str
    """``pid 42 (nginx: master process)``, ``a direktiv-sdk front door of uid 1001``, …"""


def describe_holder(host: str, port: int) -> Holder:
    """Return who listens on ``host:port``: a front door of ours, or what else."""
    answer = _probe(host, port)
    if answer is not None and answer.get("service") == _SERVICE:
        found = answer.get("pid")
        pid = found if isinstance(found, int) else None
        if answer.get("uid") == _uid() and answer.get("protocol") == PROTOCOL:
            return Holder(True, pid, f"this user's direktiv-sdk front door (pid {pid})")
        if answer.get("uid") != _uid():
            return Holder(False, pid, f"a direktiv-sdk front door of uid {answer.get('uid')}")
        version = f"protocol {answer.get('protocol')}, another direktiv-sdk version"
        return Holder(False, pid, f"a direktiv-sdk front door of {version} (pid {pid})")
    pid = _listening_pid(port)
    if pid is not None:
        return Holder(False, pid, f"pid {pid} ({_command(pid)})")
    return Holder(False, None, "another program (not a direktiv-sdk front door)")


def _probe(host: str, port: int) -> dict[str, object] | None:
    connection = http.client.HTTPConnection(host, port, timeout=_PROBE_TIMEOUT)
    try:
        connection.request("GET", PROBE_PATH)
        response = connection.getresponse()
        body = response.read(4096)
        if response.status != 200:
            return None
        answer = json.loads(body)
        return answer if isinstance(answer, dict) else None
    except (OSError, ValueError, http.client.HTTPException):
        return None
    finally:
        connection.close()


def _listening_pid(port: int) -> int | None:
    """Return the pid listening on TCP ``port`` (Linux ``/proc``; ``None`` if unknown)."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            listening = len(fields) > 9 and fields[3] == "0A"  # TCP_LISTEN
            if listening and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    if not inodes:
        return None
    wanted = {f"socket:[{inode}]" for inode in inodes}
    with contextlib.suppress(OSError):
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            with contextlib.suppress(OSError):
                for fd in os.listdir(f"/proc/{name}/fd"):
                    with contextlib.suppress(OSError):
                        if os.readlink(f"/proc/{name}/fd/{fd}") in wanted:
                            return int(name)
    return None


def _command(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "command unknown"
    command = raw.replace(b"\0", b" ").decode("utf-8", "replace").strip()
    return command[:120] or "command unknown"
