"""A small HTTP/1.1 server for one WSGI app, on the standard library, that holds up under load.

One selector thread accepts connections (listen backlog 1024) and waits for each one's next
request head; only a complete head is handed to a bounded pool of worker threads, which run the
app and read the body. Idle keep-alive connections therefore cost a file descriptor, not a
thread, and a client that trickles its head (slowloris) is closed after ``header_timeout``
without ever holding a worker. Keep-alive, chunked request bodies, ``Expect: 100-continue``
answered only when the app reads the body, and bytes after a body parsed as the next request.

The front door also uses it to leave without dropping a connection: it can pause accepting,
give its listening sockets and its idle connections away (:meth:`WSGIServer.pause_accepting`,
:meth:`~WSGIServer.detach_idle`), take those of another process (:meth:`~WSGIServer.adopt`)
and :meth:`~WSGIServer.finish`: serve what it has accepted, each answer saying
``Connection: close``, before :meth:`~WSGIServer.stop`.

Why not Werkzeug's development server: it closes every connection (``Connection: close``) and
calls ``sys.exit(1)`` when the port is taken; ``http.server``'s threading server has a backlog
of 5 and one unbounded thread per connection.
"""

from __future__ import annotations

import contextlib
import errno
import os
import queue
import selectors
import socket
import threading
import time
from collections.abc import Callable, Iterable
from typing import Final, TypeVar

from harness.sidecar._http_handler import CONNECTION_ERRORS, Connection, Handler, WSGIApp

__all__ = ["WSGIServer"]

BACKLOG: Final = 1024
"""The listen backlog: connections the kernel queues before we accept them."""

WORKERS: Final = 32
"""Worker threads: requests the app runs at once (the rest wait, already accepted)."""

MAX_CONNECTIONS: Final = 4096
"""Open connections at most; beyond it new ones wait in the backlog."""

IDLE_SECONDS: Final = 60.0
"""An idle keep-alive connection, or a socket read inside a request, times out after this."""

HEADER_SECONDS: Final = 10.0
"""A request head must arrive complete within this time of its first byte."""

_MAX_HEAD: Final = 65536 + 100 * 8192
"""The largest request head (http.server's line and header limits)."""

_NEXT_REQUEST_SECONDS: Final = 0.005
"""How long a worker waits for a kept-alive client's next request before handing it back."""

_STOP_JOIN_SECONDS: Final = 5.0
_WAKE: Final = "wake"
_ACCEPT: Final = "accept"

_T = TypeVar("_T")


class WSGIServer:
    """Serve one WSGI app: a selector thread for idle connections, a bounded worker pool."""

    def __init__(
        self,
        host: str,
        port: int,
        app: WSGIApp,
        on_error: Callable[[BaseException], None],
        *,
        workers: int = WORKERS,
        idle_timeout: float = IDLE_SECONDS,
        header_timeout: float = HEADER_SECONDS,
        max_connections: int = MAX_CONNECTIONS,
        reuse_port: bool = False,
    ) -> None:
        self.app = app
        self.on_error = on_error
        self.workers = workers
        self.idle_timeout = idle_timeout
        self.header_timeout = header_timeout
        self.max_connections = max_connections
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.socket = socket.socket(family, socket.SOCK_STREAM)
        try:
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port and hasattr(socket, "SO_REUSEPORT"):  # the front door: see there
                self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            self.socket.bind((host, port))
            self.socket.listen(BACKLOG)
            self.socket.setblocking(False)
        except BaseException:
            self.socket.close()
            raise
        self.server_address: tuple[str, int] = self.socket.getsockname()[:2]
        self.draining = False
        """Every answer says ``Connection: close`` (the server is about to go)."""
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self._lock = threading.Lock()
        self._connection_closed = threading.Condition(self._lock)
        self._listeners = [self.socket]  # ours, and those other processes handed over
        self._returned: list[Connection] = []  # back from a worker, to wait for the next head
        self._calls: list[Callable[[], None]] = []  # run on the selector thread
        self._busy: set[Connection] = set()
        self._open = 0
        self._paused = False
        self._finishing = False
        self._jobs: queue.SimpleQueue[Connection | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._stopping = False
        self._loop: threading.Thread | None = None
        # Owned by the selector thread:
        self._selector: selectors.BaseSelector | None = None
        self._waiting: set[Connection] = set()
        self._registered: set[socket.socket] = set()

    @property
    def listeners(self) -> list[socket.socket]:
        """Return the listening sockets: its own and those another process handed over."""
        with self._lock:
            return list(self._listeners)

    @property
    def open_connections(self) -> int:
        """Return how many accepted connections are open."""
        with self._lock:
            return self._open

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Serve in background threads."""
        self._loop = threading.Thread(target=self._serve, name="direktiv-sidecar", daemon=True)
        self._loop.start()

    def stop(self) -> None:
        """Stop accepting, close open connections and wait (bounded) for the threads."""
        self._stopping = True
        self._wake()
        if self._loop is not None:
            self._loop.join(_STOP_JOIN_SECONDS)
        with self._lock:
            busy = list(self._busy)
            threads = list(self._threads)
        for connection in busy:
            with contextlib.suppress(OSError):
                connection.sock.shutdown(socket.SHUT_RDWR)
        for _ in threads:
            self._jobs.put(None)
        deadline = time.monotonic() + _STOP_JOIN_SECONDS
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self.close_listeners()
        os.close(self._wake_r)
        os.close(self._wake_w)

    def close_listeners(self) -> None:
        """Close every listening socket this server owns (a forked child must not keep them)."""
        with self._lock:
            listeners, self._listeners = self._listeners, []
        for listener in listeners:
            listener.close()

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._wake_w, b"x")

    # ------------------------------------------------------------------ leaving, adopting

    def pause_accepting(self) -> list[socket.socket] | None:
        """Stop accepting (new connections wait in the backlog); return the listening sockets.

        ``None`` if the selector thread does not answer.
        """

        def pause() -> list[socket.socket]:
            self._paused = True
            self._sync_listeners()
            with self._lock:
                return list(self._listeners)

        return self._in_loop(pause)

    def resume_accepting(self) -> None:
        """Accept again after :meth:`pause_accepting`."""
        self._paused = False
        self._wake()

    def release_listeners(self, listeners: Iterable[socket.socket]) -> None:
        """Close this process's copy of paused ``listeners`` another process now accepts on."""
        for listener in listeners:
            with self._lock:
                self._listeners.remove(listener)
            listener.close()

    def detach_idle(self, *, served: bool) -> list[socket.socket]:
        """Take out the connections waiting for a request of which nothing was read yet.

        ``served``: those that answered one before (idle keep-alive), else the fresh ones.
        """

        def detach() -> list[socket.socket]:
            idle = [c for c in self._waiting if not c.buffer and c.served == served]
            for connection in idle:
                self._unwait(connection)
            with self._lock:
                self._open -= len(idle)
                self._connection_closed.notify_all()
            return [c.sock for c in idle]

        return self._in_loop(detach) or []

    def adopt(
        self,
        listeners: Iterable[socket.socket] = (),
        connections: Iterable[socket.socket] = (),
        *,
        served: bool = False,
    ) -> None:
        """Accept on ``listeners`` too, and serve ``connections`` (from another process)."""
        adopted = []
        for sock in connections:
            sock.setblocking(False)
            address: tuple[str, int] = ("", 0)
            with contextlib.suppress(OSError):
                address = sock.getpeername()[:2]
            adopted.append(Connection(sock, address, served=served))
        with self._lock:
            for listener in listeners:
                listener.setblocking(False)
                self._listeners.append(listener)
            self._open += len(adopted)
            self._returned.extend(adopted)
        self._wake()

    def finish(self, timeout: float) -> bool:
        """Stop accepting and serve what was accepted; return whether every connection ended.

        A request being served is answered, a connection that has not sent its request yet
        gets until the header timeout to send it; idle keep-alive connections are closed.
        Every answer says ``Connection: close``. Bounded by ``timeout``.
        """
        self.draining = True

        def begin() -> bool:
            self._paused = self._finishing = True
            self._sync_listeners()
            for connection in list(self._waiting):
                self._unwait(connection)
                self._wait_for_head(connection)  # with the finishing rules
            return True

        if not self._in_loop(begin):
            return False
        with self._connection_closed:
            return self._connection_closed.wait_for(lambda: self._open <= 0, timeout)

    def _in_loop(self, call: Callable[[], _T]) -> _T | None:
        """Run ``call`` on the selector thread; its result, or ``None`` if it does not answer."""
        if self._loop is None or not self._loop.is_alive() or self._stopping:
            return None
        done = threading.Event()
        results: list[_T] = []

        def run() -> None:
            try:
                results.append(call())
            finally:
                done.set()

        with self._lock:
            self._calls.append(run)
        self._wake()
        done.wait(_STOP_JOIN_SECONDS)
        return results[0] if results else None

    # ------------------------------------------------------------------ selector thread

    def _serve(self) -> None:
        with selectors.DefaultSelector() as selector:
            self._selector = selector
            selector.register(self._wake_r, selectors.EVENT_READ, _WAKE)
            self._sync_listeners()
            try:
                while not self._stopping:
                    now = time.monotonic()
                    timeout = min((c.deadline for c in self._waiting), default=now + 1.0) - now
                    for key, _ in selector.select(max(0.0, min(timeout, 1.0))):
                        if key.data == _WAKE:
                            with contextlib.suppress(BlockingIOError):
                                os.read(self._wake_r, 4096)
                        elif key.data == _ACCEPT:
                            self._accept(key.fileobj)  # type: ignore[arg-type]
                        else:
                            self._read_head(key.data)
                    with self._lock:
                        returned, self._returned = self._returned, []
                        calls, self._calls = self._calls, []
                    for connection in returned:
                        self._wait_for_head(connection)
                    for call in calls:
                        try:
                            call()
                        except Exception as exc:  # the caller gets None; serving goes on
                            self.on_error(exc)
                    self._expire()
                    self._sync_listeners()
            finally:
                for connection in self._waiting:
                    self._close(connection)
                self._waiting.clear()
                self._registered.clear()

    def _sync_listeners(self) -> None:
        """Accept on every listener, or on none while paused or full (the backlog holds on)."""
        assert self._selector is not None
        with self._lock:
            full = self._open >= self.max_connections
            wanted = set() if self._paused or full else set(self._listeners)
        for listener in self._registered - wanted:
            self._selector.unregister(listener)
        for listener in wanted - self._registered:
            self._selector.register(listener, selectors.EVENT_READ, _ACCEPT)
        self._registered = wanted

    def _accept(self, listener: socket.socket) -> None:
        for _ in range(64):
            try:
                sock, address = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    time.sleep(0.01)  # out of descriptors: let connections close first
                return
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._open += 1
            self._wait_for_head(Connection(sock, address))

    def _wait_for_head(self, connection: Connection) -> None:
        assert self._selector is not None
        connection.head_started = bool(connection.buffer)
        if self._finishing and connection.served and not connection.head_started:
            self._close(connection)  # idle keep-alive: the client expects it may close
            return
        connection.sock.setblocking(False)
        now = time.monotonic()
        timeout = self.header_timeout if connection.head_started else self.idle_timeout
        connection.deadline = now + timeout
        if self._finishing:
            connection.deadline = min(connection.deadline, now + self.header_timeout)
        self._waiting.add(connection)
        self._selector.register(connection.sock, selectors.EVENT_READ, connection)

    def _read_head(self, connection: Connection) -> None:
        try:
            chunk = connection.sock.recv(1 << 16)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            chunk = b""
        if not chunk:
            self._drop(connection)
            return
        connection.buffer += chunk
        if not connection.head_started:
            connection.head_started = True
            connection.deadline = time.monotonic() + self.header_timeout
        if connection.head_complete() or len(connection.buffer) > _MAX_HEAD:
            # A head over the limit goes to a worker too: http.server answers 431 or 414.
            self._unwait(connection)
            self._dispatch(connection)

    def _expire(self) -> None:
        now = time.monotonic()
        for connection in [c for c in self._waiting if c.deadline <= now]:
            self._drop(connection)

    def _unwait(self, connection: Connection) -> None:
        assert self._selector is not None
        self._selector.unregister(connection.sock)
        self._waiting.discard(connection)

    def _drop(self, connection: Connection) -> None:
        self._unwait(connection)
        self._close(connection)

    def _close(self, connection: Connection) -> None:
        with contextlib.suppress(OSError):
            connection.sock.close()
        with self._lock:
            self._open -= 1
            self._connection_closed.notify_all()

    # ------------------------------------------------------------------ worker threads

    def _dispatch(self, connection: Connection) -> None:
        with self._lock:
            self._busy.add(connection)
            if len(self._threads) < self.workers:
                thread = threading.Thread(
                    target=self._work, name="direktiv-sidecar-worker", daemon=True
                )
                self._threads.append(thread)
                thread.start()
        self._jobs.put(connection)

    def _work(self) -> None:
        while (connection := self._jobs.get()) is not None:
            keep = False
            try:
                keep = self._serve_requests(connection)
            except CONNECTION_ERRORS:
                pass
            except Exception as exc:  # recorded for check(); the thread must go on
                self.on_error(exc)
            with self._lock:
                self._busy.discard(connection)
            if keep and not self._stopping:
                connection.served = True
                with self._lock:
                    self._returned.append(connection)
                self._wake()
            else:
                self._close(connection)

    def _serve_requests(self, connection: Connection) -> bool:
        """Answer every complete request head buffered; return whether to keep the connection."""
        connection.sock.setblocking(True)
        while True:
            handler = Handler(connection, self)
            if handler.close_connection or self._stopping:
                return False
            if not connection.head_complete() and not self._next_head_soon(connection):
                return True

    def _next_head_soon(self, connection: Connection) -> bool:
        """Wait briefly for the client's next request head on this worker; return if it came.

        A keep-alive client usually sends its next request at once: serving it here saves two
        thread switches through the selector (a bounded wait, so a worker is never held long).
        """
        deadline = time.monotonic() + _NEXT_REQUEST_SECONDS
        with selectors.DefaultSelector() as selector:
            selector.register(connection.sock, selectors.EVENT_READ)
            while (left := deadline - time.monotonic()) > 0 and selector.select(left):
                chunk = connection.sock.recv(1 << 16)
                if not chunk:
                    return False
                connection.buffer += chunk
                if connection.head_complete() or len(connection.buffer) > _MAX_HEAD:
                    return True
        return False
