"""A small threaded HTTP/1.1 server for one WSGI app, on the standard library.

Why not Werkzeug's development server: it closes every connection (``Connection: close``), so
it has no keep-alive, and it calls ``sys.exit(1)`` when the port is taken. This server keeps
connections alive, decodes chunked request bodies, answers ``Expect: 100-continue`` only when
the app reads the body, stops at once (a wake-up pipe instead of a poll interval) and closes
its open connections when it stops.
"""

from __future__ import annotations

import contextlib
import io
import os
import selectors
import socket
import socketserver
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Final, Protocol
from urllib.parse import unquote

__all__ = ["WSGIServer"]

_DRAIN_LIMIT: Final = 1 << 20
"""Unread request bytes we read and discard to keep a connection alive; more closes it."""

_LINGER_SECONDS: Final = 2.0
"""How long a closing connection keeps reading what the client still sends (so it sees 413)."""

_IDLE_SECONDS: Final = 120.0
"""An idle keep-alive connection is closed after this long."""

_STOP_JOIN_SECONDS: Final = 5.0

_CONNECTION_ERRORS: Final = (ConnectionError, TimeoutError)


class WSGIApp(Protocol):
    """A WSGI application (PEP 3333), typed loosely enough for any of them."""

    def __call__(
        self, environ: dict[str, object], start_response: Callable[..., object]
    ) -> Iterable[bytes]: ...


class _MalformedBodyError(ValueError):
    """The client's chunked encoding is broken."""


class _Body:
    """``wsgi.input``: the request body (by ``Content-Length`` or chunked), read on demand."""

    def __init__(
        self, rfile: io.BufferedIOBase, length: int | None, on_first_read: Callable[[], None]
    ) -> None:
        self._rfile = rfile
        self._left = length if length is not None else 0
        self._chunked = length is None
        self._done = length == 0
        self._on_first_read: Callable[[], None] | None = on_first_read

    @property
    def exhausted(self) -> bool:
        return self._done

    @property
    def left(self) -> int | None:
        """Return the unread byte count of a ``Content-Length`` body (``None``: chunked)."""
        return None if self._chunked else self._left

    def _next_chunk(self) -> bool:
        """Read the next chunk header; return whether the body ended."""
        line = self._rfile.readline(1026)
        if not line.endswith(b"\n"):
            raise _MalformedBodyError("a chunk size line is missing or too long")
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise _MalformedBodyError(f"invalid chunk size line {line!r}") from None
        if size < 0:
            raise _MalformedBodyError(f"invalid chunk size line {line!r}")
        if size == 0:
            for _ in range(100):  # trailer fields, bounded
                if self._rfile.readline(8192) in (b"\r\n", b"\n", b""):
                    break
            self._done = True
        self._left = size
        return self._done

    def read(self, size: int | None = -1) -> bytes:
        if self._on_first_read is not None:
            callback, self._on_first_read = self._on_first_read, None
            callback()
        if size is None or size < 0:
            parts = []
            while part := self.read(1 << 20):
                parts.append(part)
            return b"".join(parts)
        if self._done or size == 0:
            return b""
        if self._chunked and self._left == 0 and self._next_chunk():
            return b""
        data = self._rfile.read(min(size, self._left))
        if not data:
            raise _MalformedBodyError("the connection closed in the middle of the body")
        self._left -= len(data)
        if self._left == 0:
            if self._chunked:
                if self._rfile.readline(3) not in (b"\r\n", b"\n"):
                    raise _MalformedBodyError("a chunk does not end with CRLF")
            else:
                self._done = True
        return data

    def readline(self, size: int | None = -1) -> bytes:
        # Rarely used by WSGI apps; correct, if slow (one byte at a time).
        out = bytearray()
        while size is None or size < 0 or len(out) < size:
            byte = self.read(1)
            out += byte
            if not byte or byte == b"\n":
                break
        return bytes(out)

    def __iter__(self) -> Iterator[bytes]:
        while line := self.readline():
            yield line


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = _IDLE_SECONDS
    # Buffered writes: the status line, headers and a small body leave in one segment (with
    # separate writes, Nagle and delayed ACKs cost ~40 ms per keep-alive round trip).
    wbufsize = 1 << 16
    server: WSGIServer

    def __getattr__(self, name: str) -> Callable[[], None]:
        # Every method reaches the app, which decides (405); http.server would answer 501.
        if name.startswith("do_"):
            return self._run_app
        raise AttributeError(name)

    def parse_request(self) -> bool:
        self._expect_100 = False
        self._responded = False
        return super().parse_request()

    def handle_expect_100(self) -> bool:
        # Answer 100 Continue only when the app reads the body: a refused request (413, 404)
        # then never makes the client send it.
        self._expect_100 = True
        return True

    def _send_continue(self) -> None:
        if self._expect_100 and not self._responded:
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            self.wfile.flush()
        self._expect_100 = False

    def log_message(self, format: str, *args: object) -> None:
        """Stay quiet: the sidecar keeps its own request log."""

    def _environ(self, body: _Body) -> dict[str, object]:
        path, _, query = self.path.partition("?")
        host, port = self.server.server_address[:2]
        environ: dict[str, object] = {
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": body,
            "wsgi.input_terminated": True,
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
            "REQUEST_METHOD": self.command,
            "SCRIPT_NAME": "",
            "PATH_INFO": unquote(path, encoding="latin-1"),
            "QUERY_STRING": query,
            "SERVER_NAME": str(host),
            "SERVER_PORT": str(port),
            "SERVER_PROTOCOL": self.request_version,
            "REMOTE_ADDR": self.client_address[0],
        }
        for name, value in self.headers.items():
            key = name.upper().replace("-", "_")
            if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                key = f"HTTP_{key}"
            environ[key] = f"{environ[key]},{value}" if key in environ else value
        return environ

    def _run_app(self) -> None:
        chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
        declared = self.headers.get("Content-Length")
        if not chunked and declared is not None and not declared.strip().isdigit():
            self.send_error(HTTPStatus.BAD_REQUEST, f"invalid Content-Length {declared!r}")
            self.close_connection = True
            return
        length = None if chunked else int(declared or 0)
        body = _Body(self.rfile, length, self._send_continue)
        environ = self._environ(body)
        status_line = ""
        headers: list[tuple[str, str]] = []
        written: list[bytes] = []  # PEP 3333's legacy write(): sent before the iterable

        def start_response(
            status: str, response_headers: list[tuple[str, str]], *_: object
        ) -> Callable[[bytes], None]:
            nonlocal status_line, headers
            status_line, headers = status, list(response_headers)
            return written.append

        result = None
        try:
            result = self.server.app(environ, start_response)
            chunks = iter(result)
            # The app may call start_response lazily, on the first iteration.
            first = next(chunks, b"")
            self._respond(status_line, headers, _prepend([*written, first], chunks), body)
        except _CONNECTION_ERRORS:
            self.close_connection = True
        except Exception as exc:  # a server must answer; check() re-raises it
            self.server.on_error(exc)
            if not self._responded:
                self.send_error(HTTPStatus.INTERNAL_SERVER_ERROR, f"{type(exc).__name__}: {exc}")
            self.close_connection = True
        finally:
            if result is not None and hasattr(result, "close"):
                result.close()
        self._finish_body(body)

    def _respond(
        self,
        status_line: str,
        headers: list[tuple[str, str]],
        chunks: Iterator[bytes],
        body: _Body,
    ) -> None:
        code, _, reason = status_line.partition(" ")
        self.send_response(int(code), reason or None)
        names = {name.lower() for name, _ in headers}
        for name, value in headers:
            self.send_header(name, value)
        sized = "content-length" in names or self.command == "HEAD"
        chunked = not sized and self.request_version != "HTTP/1.0"
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        elif not sized:
            self.close_connection = True  # an HTTP/1.0 body without a length ends at close
        if not self.close_connection and not self._can_drain(body):
            # Say so, or the client reuses a connection we are about to close.
            self.send_header("Connection", "close")
        self.end_headers()
        self._responded = True
        if self.command == "HEAD":
            return
        for chunk in chunks:
            if not chunk:
                continue
            if chunked:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            else:
                self.wfile.write(chunk)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _can_drain(self, body: _Body) -> bool:
        """Return whether the unread rest of the body is small enough to read and discard."""
        if body.exhausted:
            return True
        left = body.left
        return not self._expect_100 and left is not None and left <= _DRAIN_LIMIT

    def _finish_body(self, body: _Body) -> None:
        """Keep the connection usable: drain a small unread body, else close it."""
        if body.exhausted:
            return
        if not self._can_drain(body):
            self.close_connection = True
            if not self._expect_100:  # without 100 Continue the client may never send it
                self._linger()
            return
        try:
            while body.read(64 * 1024):
                pass
        except (ValueError, OSError):
            self.close_connection = True

    def _linger(self) -> None:
        """Read what the client still sends for a while, so it reads our answer, not a reset."""
        with contextlib.suppress(OSError):
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_WR)
            deadline = time.monotonic() + _LINGER_SECONDS
            while (left := deadline - time.monotonic()) > 0:
                self.connection.settimeout(left)
                if not self.connection.recv(1 << 20):
                    break


def _prepend(first: list[bytes], rest: Iterator[bytes]) -> Iterator[bytes]:
    yield from first
    yield from rest


class WSGIServer(ThreadingHTTPServer):
    """Serve one WSGI app on a thread per connection until :meth:`stop`."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(
        self,
        host: str,
        port: int,
        app: WSGIApp,
        on_error: Callable[[BaseException], None],
    ) -> None:
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.app = app
        self.on_error = on_error
        self._lock = threading.Lock()
        self._connections: dict[socket.socket, threading.Thread] = {}
        self._wake_r, self._wake_w = os.pipe()
        self._loop: threading.Thread | None = None
        try:
            super().__init__((host, port), _Handler)
        except BaseException:
            os.close(self._wake_r)
            os.close(self._wake_w)
            raise

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks the host name up (getfqdn), which can take seconds.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), self.server_address[1]

    def start(self) -> None:
        """Serve in a background thread."""
        self._loop = threading.Thread(target=self._serve, name="direktiv-sidecar", daemon=True)
        self._loop.start()

    def _serve(self) -> None:
        with selectors.DefaultSelector() as selector:
            self.socket.setblocking(False)
            selector.register(self.socket, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while True:
                for key, _ in selector.select():
                    if key.fileobj == self._wake_r:
                        return
                    try:
                        request, address = self.socket.accept()
                    except OSError:
                        continue
                    request.setblocking(True)
                    request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    self._spawn(request, address)

    def _spawn(self, request: socket.socket, address: tuple[str, int]) -> None:
        thread = threading.Thread(
            target=self._serve_connection,
            args=(request, address),
            name="direktiv-sidecar-connection",
            daemon=True,
        )
        with self._lock:
            self._connections[request] = thread
        thread.start()

    def _serve_connection(self, request: socket.socket, address: tuple[str, int]) -> None:
        try:
            self.finish_request(request, address)
        except _CONNECTION_ERRORS:
            pass
        except Exception as exc:  # recorded for check(); the thread must end cleanly
            self.on_error(exc)
        finally:
            with self._lock:
                self._connections.pop(request, None)
            self.shutdown_request(request)

    def stop(self) -> None:
        """Stop accepting, close open connections and wait (bounded) for their threads."""
        os.write(self._wake_w, b"x")
        if self._loop is not None:
            self._loop.join(_STOP_JOIN_SECONDS)
        self.server_close()
        with self._lock:
            connections = dict(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + _STOP_JOIN_SECONDS
        for thread in connections.values():
            thread.join(max(0.0, deadline - time.monotonic()))
        os.close(self._wake_r)
        os.close(self._wake_w)
