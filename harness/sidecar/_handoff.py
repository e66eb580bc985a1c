"""Handing a front door's listening sockets to another process of ours, so none is ever closed.

Closing a listening socket resets the connections the kernel has queued on it but nobody has
accepted yet; under ``SO_REUSEPORT`` some of those are another process's requests. So a front
door process that exits sends its listening sockets (and its idle connections) over a Unix
socket (``SCM_RIGHTS``) to a live one, which accepts on them as on its own: the socket itself
stays open and nothing queued is lost.

Each front door process receives on ``<route folder>/.doors-net<id>/<pid>.sock`` (mode 0600,
in the route book's private folder, one folder per network namespace). A path nobody listens
on is stale (its process ended): the next process that looks for a peer removes it. One
exchange: a message naming the kind (``listener``, ``connection`` or ``kept``) with up to 64
descriptors, answered ``ok`` (taken) or ``no`` (refused and closed).
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Final

from harness.sidecar._http import WSGIServer
from harness.sidecar._routes import pid_alive

__all__ = [
    "CONNECTION",
    "KEPT",
    "LISTENER",
    "SUPPORTED",
    "Peer",
    "Receiver",
    "folder_of",
    "hand_over",
    "peers",
]

SUPPORTED: Final = all(
    hasattr(socket, name) for name in ("AF_UNIX", "SO_REUSEPORT", "send_fds", "recv_fds")
)
"""Without ``SO_REUSEPORT`` or descriptor passing (Windows) an exiting process drains and closes."""

LISTENER: Final = b"listener"
CONNECTION: Final = b"connection"
"""A connection that has not sent a request yet."""
KEPT: Final = b"kept"
"""An idle keep-alive connection (it has been answered before)."""
MAX_FDS: Final = 64
"""Descriptors per message (Linux takes at most 253 in one)."""

_TIMEOUT: Final = 5.0
_SUFFIX: Final = ".sock"
_CLOEXEC: Final = getattr(socket, "MSG_CMSG_CLOEXEC", 0)
_TRUNCATED: Final = getattr(socket, "MSG_CTRUNC", 0)

Take = Callable[[bytes, list[socket.socket]], bool]
"""Adopts handed-over sockets of a kind; returns ``False`` to refuse them."""


def folder_of(route_folder: Path) -> Path:
    """Return the folder of the receivers' Unix sockets inside a route book's folder.

    One per network namespace (``unshare -n`` shares the route folder): a listener on another
    namespace's loopback brings calls for sidecars only that namespace can reach.
    """
    try:
        namespace = f"-net{os.stat('/proc/self/ns/net').st_ino}"
    except OSError:  # not Linux: no network namespaces to tell apart
        namespace = ""
    return route_folder / f".doors{namespace}"


class Receiver:
    """This process's Unix socket on which other processes hand their sockets over."""

    def __init__(
        self, sock: socket.socket, path: Path, address: tuple[str, int], take: Take
    ) -> None:
        self.path = path
        self._sock = sock
        self._address = address
        self._take = take
        self._closing = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"direktiv-front-door-handoff-{address[1]}", daemon=True
        )
        self._thread.start()

    @classmethod
    def open(cls, folder: Path, address: tuple[str, int], take: Take) -> Receiver | None:
        """Listen at ``folder/<pid>.sock`` for sockets of the front door on ``address``.

        ``None`` if it cannot be bound (too long a path).
        """
        path = folder / f"{os.getpid()}{_SUFFIX}"
        temporary = folder / f".{os.getpid()}{_SUFFIX}.tmp"
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            folder.mkdir(mode=0o700, exist_ok=True)
            with contextlib.suppress(FileNotFoundError):
                temporary.unlink()
            sock.bind(str(temporary))
            os.chmod(temporary, 0o600)
            sock.listen(16)
            # Listening before it has its name: a path that refuses is always a stale one.
            os.replace(temporary, path)
        except OSError:
            sock.close()
            with contextlib.suppress(OSError):
                temporary.unlink()
            return None
        return cls(sock, path, address, take)

    def close(self) -> None:
        """Stop receiving and remove the path (bounded: a handoff under way is waited for)."""
        self._closing.set()
        with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as wake:
            wake.settimeout(_TIMEOUT)
            wake.connect(str(self.path))  # ends the blocked accept()
        with contextlib.suppress(OSError):
            self.path.unlink()
        self._thread.join(2 * _TIMEOUT)
        self._sock.close()

    def forget(self) -> None:
        """Close the socket without removing the path (a forked child: the path is its parent's)."""
        self._closing.set()
        self._sock.close()

    def _run(self) -> None:
        while not self._closing.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            with conn:
                if self._closing.is_set():
                    return
                with contextlib.suppress(OSError):
                    self._serve(conn)

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(_TIMEOUT)
        while True:
            kind, fds, flags, _ = socket.recv_fds(conn, 64, MAX_FDS, _CLOEXEC)
            socks = [self._wrap(fd) for fd in fds]
            valid = [s for s in socks if s is not None]
            fine = (
                kind in (LISTENER, CONNECTION, KEPT)
                and not flags & _TRUNCATED
                and len(valid) == len(fds) > 0
                and all(_fits(s, self._address, kind == LISTENER) for s in valid)
            )
            if not fine or not self._take(kind, valid):
                for sock in valid:
                    sock.close()
                if not kind:
                    return  # the sender has finished
                conn.sendall(b"no")
                continue
            conn.sendall(b"ok")

    @staticmethod
    def _wrap(fd: int) -> socket.socket | None:
        try:
            os.set_inheritable(fd, False)
            return socket.socket(fileno=fd)
        except OSError:
            with contextlib.suppress(OSError):
                os.close(fd)
            return None


def _fits(sock: socket.socket, address: tuple[str, int], listening: bool) -> bool:
    """Return whether ``sock`` is a TCP socket of the front door's address, listening or not."""
    try:
        if sock.family not in (socket.AF_INET, socket.AF_INET6):
            return False
        if sock.type != socket.SOCK_STREAM or tuple(sock.getsockname()[:2]) != address:
            return False
        accepting = getattr(socket, "SO_ACCEPTCONN", None)
        return accepting is None or bool(sock.getsockopt(socket.SOL_SOCKET, accepting)) == listening
    except OSError:
        return False


class Peer:
    """A connection to another process's :class:`Receiver`."""

    def __init__(self, sock: socket.socket, pid: int) -> None:
        self.pid = pid
        self._sock = sock

    def give(self, kind: bytes, fds: Sequence[int]) -> tuple[int, int]:
        """Hand ``fds`` over in batches; return how many were taken, then how many are unsure.

        The unsure ones were sent but not answered: the peer may serve them, so the caller
        must not (it closes its copies).
        """
        taken = 0
        for start in range(0, len(fds), MAX_FDS):
            batch = fds[start : start + MAX_FDS]
            try:
                socket.send_fds(self._sock, [kind], batch)
            except OSError:
                return taken, 0
            try:
                answer = self._answer()
            except OSError:
                return taken, len(batch)
            if answer != b"ok":
                return taken, 0 if answer == b"no" else len(batch)
            taken += len(batch)
        return taken, 0

    def _answer(self) -> bytes:
        answer = b""
        while len(answer) < 2:
            chunk = self._sock.recv(2 - len(answer))
            if not chunk:
                break
            answer += chunk
        return answer

    def close(self) -> None:
        """End the exchange."""
        self._sock.close()

    def __enter__(self) -> Peer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def peers(folder: Path) -> Iterator[Peer]:
    """Yield a connection to each other live receiver in ``folder``; remove stale paths."""
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return
    for name in names:
        path = folder / name
        stem = name.removesuffix(_SUFFIX)
        if name.startswith("."):  # a receiver's name before it listens
            pid = name[1:].partition(".")[0]
            if pid.isdigit() and not pid_alive(int(pid)):
                with contextlib.suppress(OSError):
                    path.unlink()
            continue
        if not name.endswith(_SUFFIX) or not stem.isdigit() or int(stem) == os.getpid():
            continue
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(_TIMEOUT)
        try:
            sock.connect(str(path))
        except (ConnectionRefusedError, FileNotFoundError):
            sock.close()
            with contextlib.suppress(OSError):
                path.unlink()  # nobody listens: its process has ended
            continue
        except OSError:
            sock.close()
            continue
        yield Peer(sock, int(stem))


def hand_over(server: WSGIServer, folder: Path) -> bool:
    """Give ``server``'s listeners, then its idle connections, to live peers in ``folder``.

    Returns whether every listener was taken; those no peer took are accepted on again.
    """
    listeners = server.pause_accepting()
    if listeners is None:
        return False
    for peer in peers(folder):
        with peer:
            taken, _ = peer.give(LISTENER, [s.fileno() for s in listeners])
            server.release_listeners(listeners[:taken])
            listeners = listeners[taken:]
            if not listeners:
                for kind, served in ((CONNECTION, False), (KEPT, True)):
                    idle = server.detach_idle(served=served)
                    taken, unsure = peer.give(kind, [s.fileno() for s in idle])
                    for sock in idle[: taken + unsure]:  # never served by two processes
                        sock.close()
                    server.adopt(connections=idle[taken + unsure :], served=served)
                return True
    server.resume_accepting()
    return False
