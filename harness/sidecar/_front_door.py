"""The front door: one listener on ``127.0.0.1:8889`` for all of a user's processes.

Functions hard-code ``http://localhost:8889``, but every process (a pytest-xdist worker, a
``direktiv-sdk run``) keeps its own sidecar on a free port. The first process that registers
an action binds the port and becomes the front door. It answers requests for its own actions
directly and forwards the others, by ``aid``, to the sidecar that wrote the action into the
:class:`~._routes.RouteBook`. With ``SO_REUSEPORT`` every such process listens; one that exits
hands its listening sockets to another (:mod:`._handoff`) instead of closing them, so no
connection queued on them is reset. Without it (Windows), when the listening process exits the
next process that registers an action or whose watcher notices (every 0.1 s while it has
actions) binds the port: the kernel lets exactly one win. A port held by a program that is not
a front door of ours is reported, never fought over.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import ClassVar, Final, Protocol
from urllib.parse import parse_qs

from harness.sidecar import _handoff
from harness.sidecar._forward import Forwarder, StartResponse, text_response
from harness.sidecar._http import WSGIServer
from harness.sidecar._routes import (
    PROBE_PATH,
    WATCH_PATH,
    RouteBook,
    describe_holder,
    identity,
    pid_alive,
)

__all__ = [
    "DEFAULT_FRONT_DOOR_PORT",
    "FRONT_DOOR_HOST",
    "PORT_HELP",
    "SIDECAR_PORT_ENV",
    "SIDECAR_URL_ENV",
    "FrontDoor",
    "front_door_port",
]

FRONT_DOOR_HOST: Final = "127.0.0.1"
DEFAULT_FRONT_DOOR_PORT: Final = 8889
"""The port of Direktiv's sidecar: functions call ``http://localhost:8889``."""
SIDECAR_PORT_ENV: Final = "DIREKTIV_SIDECAR_PORT"
"""Chooses the front door port (``0``: no front door) when no option does."""
SIDECAR_URL_ENV: Final = "DIREKTIV_SIDECAR_URL"
"""The name under which a call exports its sidecar's base URL to the function."""
PORT_HELP: Final = (
    "choose another port with --direktiv-sidecar-port N (pytest), --sidecar-port N "
    f"(direktiv-sdk run) or ${SIDECAR_PORT_ENV}=N, or stop that program"
)
_WATCH_SECONDS: Final = 0.1
_REPROBE_SECONDS: Final = 2.0
"""How long a foreign holder's description is trusted before the port is probed again."""
_DRAIN_SECONDS: Final = 5.0
"""How long an exiting process waits for the requests it is serving for others."""
_QUIET_SECONDS: Final = 0.5
"""A connection this new may not have sent its request yet."""
_FINISH_SECONDS: Final = 10.0
"""How long an exiting process serves what it accepted (a request head's time limit)."""
_MAX_LISTENERS: Final = 64
"""Listening sockets a process takes over at most: a long-lived one must not gather without end
one descriptor per process that exited before it (past it, an exiting process drains)."""


def front_door_port(value: object = None) -> int | None:
    """Return the front door port from ``value``, else ``$DIREKTIV_SIDECAR_PORT``, else 8889.

    ``0`` (or ``off``) means no front door: ``None``.

    Raises:
        ValueError: The value is not a port number.
    """
    source = "the sidecar port"
    if value is None or value == "":
        value = os.environ.get(SIDECAR_PORT_ENV, "")
        source = f"${SIDECAR_PORT_ENV}"
        if not value:
            return DEFAULT_FRONT_DOOR_PORT
    text = str(value).strip().lower()
    if text == "off":
        return None
    if isinstance(value, bool) or not text.isdigit() or not 0 <= int(text) <= 65535:
        raise ValueError(f"invalid {source} {value!r}: use 1-65535, or 0 for no front door")
    return int(text) or None


class Served(Protocol):
    """What the front door needs of a sidecar: its WSGI app and, when it listens, its URL."""

    def __call__(
        self, environ: dict[str, object], start_response: StartResponse
    ) -> Iterable[bytes]: ...

    @property
    def running(self) -> bool: ...

    @property
    def url(self) -> str: ...


class FrontDoor:
    """This process's part in the machine's front door on ``host:port``.

    Use :meth:`for_port`: there is one per port and process. :meth:`add` routes an action to
    a sidecar of this process; :attr:`problem` says why functions that hard-code the port
    cannot reach this process's actions (``None`` when they can).
    """

    _doors: ClassVar[dict[tuple[str, int], FrontDoor]] = {}
    _doors_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, port: int, host: str = FRONT_DOOR_HOST) -> None:
        self.host = host
        self.port = port
        self._book: RouteBook | None = None
        self._lock = threading.Lock()
        self._local: dict[str, Served] = {}
        self._server: WSGIServer | None = None
        self._receiver: _handoff.Receiver | None = None
        self._leaving = False
        self._problem: str | None = None
        self._checked_at = -_REPROBE_SECONDS
        self._peer: int | None = None
        self._forwarder = Forwarder()
        self._watcher: threading.Thread | None = None
        self._closed = threading.Event()
        self._busy = threading.Condition()
        self._in_flight = 0
        self._last_request = 0.0
        self._exit_hook = False

    @classmethod
    def for_port(cls, port: int, host: str = FRONT_DOOR_HOST) -> FrontDoor:
        """Return this process's front door on ``host:port`` (made on first use)."""
        with cls._doors_lock:
            door = cls._doors.get((host, port))
            if door is None:
                door = cls._doors[(host, port)] = cls(port, host)
            return door

    # ------------------------------------------------------------------ routes

    @property
    def book(self) -> RouteBook:
        """Return the route book shared by all processes using this port."""
        if self._book is None:
            self._book = RouteBook.for_port(self.port)
        return self._book

    def add(self, aid: str, sidecar: Served) -> None:
        """Route requests for ``aid`` on the front door port to ``sidecar``."""
        with self._lock:
            self._local[aid] = sidecar
        if sidecar.running:
            self.book.add(aid, sidecar.url)
        self.ensure()
        self._watch()

    def remove(self, aid: str) -> None:
        """Stop routing ``aid`` (unknown ids are ignored)."""
        with self._lock:
            known = self._local.pop(aid, None)
        if known is not None:
            self.book.remove(aid)

    @property
    def owner(self) -> bool:
        """Return whether this process listens on the port."""
        return self._server is not None

    @property
    def problem(self) -> str | None:
        """Return why the port does not reach this process's actions, or ``None``."""
        return self._problem

    @property
    def url(self) -> str:
        """Return the front door's base URL, e.g. ``http://127.0.0.1:8889``."""
        return f"http://{self.host}:{self.port}"

    # ------------------------------------------------------------------ owning the port

    def ensure(self) -> str | None:
        """Listen on the port unless a front door of ours does; return :attr:`problem`."""
        if self._server is not None:
            return None
        with self._lock:
            if self.owner:  # another thread won while this one waited for the lock
                return None
            try:
                # SO_REUSEPORT: every process of the user listens; the kernel spreads new
                # connections over them and each forwards what is not its own, so a process
                # that exits takes nothing down with it. Without it (Windows) the first
                # process listens and the others watch it.
                server = WSGIServer(
                    self.host, self.port, self._app, self._on_error, reuse_port=True
                )
            except OSError as exc:
                if exc.errno not in (errno.EADDRINUSE, errno.EACCES):
                    raise
                self._held_by_another()
                return self._problem
            server.start()
            if not self._exit_hook:
                atexit.register(self._at_exit)
                self._exit_hook = True
            self._server, self._problem, self._peer = server, None, None
            self._leaving = False
            if _handoff.SUPPORTED:
                with contextlib.suppress(OSError):  # then it can still hand over, not take
                    folder = _handoff.folder_of(self.book.folder)
                    address = server.server_address
                    self._receiver = _handoff.Receiver.open(folder, address, self._take)
        return None

    def _take(self, kind: bytes, socks: list[socket.socket]) -> bool:
        """Serve the listeners or connections another process of ours hands over."""
        with self._lock:
            server = self._server
            if server is None or self._leaving:
                return False  # leaving too: it must find another peer
            if kind == _handoff.LISTENER:
                if len(server.listeners) + len(socks) > _MAX_LISTENERS:
                    return False
                server.adopt(listeners=socks)
            else:
                server.adopt(connections=socks, served=kind == _handoff.KEPT)
        return True

    def _held_by_another(self) -> None:
        if self._peer is not None and pid_alive(self._peer):
            return  # routing through a live front door of ours
        now = time.monotonic()
        if self._problem is not None and now - self._checked_at < _REPROBE_SECONDS:
            return
        self._checked_at = now
        holder = describe_holder(self.host, self.port)
        if holder.ours:
            self._peer, self._problem = holder.pid, None
        else:
            self._peer = None
            self._problem = (
                f"{self.host}:{self.port} is held by {holder.description}, so functions that "
                f"hard-code http://localhost:{self.port} cannot reach the sidecar; {PORT_HELP}"
            )

    def _watch(self) -> None:
        if self._watcher is not None:
            return
        with self._lock:
            if self._watcher is None:
                self._watcher = threading.Thread(
                    target=self._watch_loop, name=f"direktiv-front-door-{self.port}", daemon=True
                )
                self._watcher.start()

    def _watch_loop(self) -> None:
        while not self._closed.is_set():
            if self._server is not None or not self._local:
                self._closed.wait(_WATCH_SECONDS)
                continue
            with contextlib.suppress(OSError):
                self.ensure()
            if self._server is None and self._peer is not None:
                self._wait_for_owner_exit()
            else:
                self._closed.wait(_WATCH_SECONDS)

    def _wait_for_owner_exit(self) -> None:
        """Hold a connection to the owner's watch path until it closes: the owner is gone."""
        try:
            with socket.create_connection((self.host, self.port), timeout=_WATCH_SECONDS) as sock:
                sock.sendall(f"GET {WATCH_PATH} HTTP/1.1\r\nHost: front-door\r\n\r\n".encode())
                while not self._closed.is_set():
                    try:
                        if not sock.recv(4096):
                            return
                    except TimeoutError:
                        continue
        except OSError:
            self._closed.wait(_WATCH_SECONDS)

    def close(self) -> None:
        """Stop listening and watching; routes of this process are forgotten."""
        self._closed.set()  # first: it releases the watchers of other processes
        with self._lock:
            server, self._server = self._server, None
            receiver, self._receiver = self._receiver, None
            aids, self._local = list(self._local), {}
            forwarder, self._forwarder = self._forwarder, Forwarder()
        if receiver is not None:
            receiver.close()
        if server is not None:
            server.stop()
        for aid in aids:
            self.book.remove(aid)
        forwarder.close()
        with FrontDoor._doors_lock:
            if FrontDoor._doors.get((self.host, self.port)) is self:
                del FrontDoor._doors[(self.host, self.port)]

    def _after_fork(self) -> None:
        # A forked child must not keep the listening socket: the port would stay taken, with
        # nobody accepting, after this process exits.
        server, self._server = self._server, None
        if server is not None:
            server.close_listeners()
        receiver, self._receiver = self._receiver, None
        if receiver is not None:
            receiver.forget()
        self._lock = threading.Lock()
        self._local, self._forwarder, self._watcher = {}, Forwarder(), None

    def _on_error(self, error: BaseException) -> None:
        """Errors serving a connection are the client's problem; the front door goes on."""

    # ------------------------------------------------------------------ serving

    def _app(self, environ: dict[str, object], start_response: StartResponse) -> Iterable[bytes]:
        path = str(environ.get("PATH_INFO", ""))
        if path == WATCH_PATH:
            start_response("200 OK", [("Connection", "close")])
            return self._until_closed()
        if path == PROBE_PATH:
            body = identity(self.port)
            headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
            start_response("200 OK", headers)
            return [body]
        aid = parse_qs(str(environ.get("QUERY_STRING", ""))).get("aid", [""])[0]
        local = self._local.get(aid)
        url = None if local is not None or not aid else self.book.find(aid)
        if local is None and url is None:
            if path not in ("/var", "/log"):
                return text_response(start_response, "404 Not Found", "404 page not found")
            return text_response(start_response, "404 Not Found", f"actionId {aid} not found")
        with self._busy:
            self._in_flight += 1
            self._last_request = time.monotonic()
        try:
            if local is not None:
                answer = local(environ, start_response)
            else:
                assert url is not None
                answer = self._forwarder.forward(
                    url, aid, environ, start_response, self.book.remove
                )
        except BaseException:
            self._finished()
            raise
        return _Counted(answer, self._finished)

    def _finished(self) -> None:
        with self._busy:
            self._in_flight -= 1
            self._busy.notify_all()

    def drain(self, timeout: float = _DRAIN_SECONDS) -> None:
        """Wait (bounded) until the requests being served now are answered."""
        # A connection accepted a moment ago may not have sent its request yet: wait until
        # no request has started for a short while, too.
        deadline = time.monotonic() + timeout
        with self._busy:
            while (left := deadline - time.monotonic()) > 0:
                recent = time.monotonic() - self._last_request < _QUIET_SECONDS
                if not (self._in_flight or recent):
                    return
                self._busy.wait(min(left, _QUIET_SECONDS))

    def _at_exit(self) -> None:
        # Other processes' functions may be in the middle of a request through this process,
        # or their connections queued on its listener: lose none of them.
        if self._server is not None:
            self._leave()

    def _leave(self) -> None:
        """Hand the listeners to a live peer, else drain; serve what was accepted; close."""
        with self._lock:
            server, receiver = self._server, self._receiver
            self._leaving, self._receiver = True, None
        if server is None:
            return
        server.draining = True  # every answer says Connection: close from now on
        if receiver is not None:
            receiver.close()  # nobody hands this process anything any more
        if not self._hand_over(server):
            self.drain()  # the port's last listener (or no handoff here): wait for quiet
        self._closed.set()  # the watchers' requests end too
        server.finish(_FINISH_SECONDS)
        self.close()

    def _hand_over(self, server: WSGIServer) -> bool:
        if not _handoff.SUPPORTED:
            return False
        try:
            folder = _handoff.folder_of(self.book.folder)
        except OSError:  # no private route folder: no peers either
            return False
        return _handoff.hand_over(server, folder)

    def _until_closed(self) -> Iterator[bytes]:
        # Another process's watcher waits here; it takes the port over when this ends.
        self._closed.wait()
        yield b""


class _Counted:
    """An answer whose end (``close``) is counted, so :meth:`FrontDoor.drain` can wait."""

    def __init__(self, answer: Iterable[bytes], done: Callable[[], None]) -> None:
        self._answer = answer
        self._done: Callable[[], None] | None = done

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._answer)

    def close(self) -> None:
        try:
            close = getattr(self._answer, "close", None)
            if close is not None:
                close()
        finally:
            done, self._done = self._done, None
            if done is not None:
                done()


def _after_fork_in_child() -> None:
    for door in list(FrontDoor._doors.values()):
        door._after_fork()
    FrontDoor._doors_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
