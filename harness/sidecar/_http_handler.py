"""One HTTP/1.1 request of a connection, answered by a WSGI app (the sidecar server's handler).

:class:`Handler` parses one request head with :mod:`http.server`, checks its framing
(:func:`~harness.sidecar._http_body.body_length`), runs the app and drains or refuses the rest of
the body; the server calls it again for the next request of a kept-alive connection.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import Final, Protocol
from urllib.parse import unquote

from harness.sidecar._http_body import (
    Body,
    FramingError,
    MalformedBodyError,
    SocketReader,
    body_length,
)

__all__ = ["CONNECTION_ERRORS", "Connection", "Handler", "ServerSettings", "WSGIApp"]

_DRAIN_LIMIT: Final = 1 << 20
"""Unread request bytes we read and discard to keep a connection alive; more closes it."""

_LINGER_SECONDS: Final = 2.0
"""How long a closing connection keeps reading what the client still sends (so it sees 413)."""

CONNECTION_ERRORS: Final = (ConnectionError, TimeoutError)


class WSGIApp(Protocol):
    """A WSGI application (PEP 3333), typed loosely enough for any of them."""

    def __call__(
        self, environ: dict[str, object], start_response: Callable[..., object]
    ) -> Iterable[bytes]: ...


@dataclass(eq=False, slots=True)
class Connection:
    """One client connection: its socket and the bytes read but not yet parsed."""

    sock: socket.socket
    address: tuple[str, int]
    buffer: bytearray = field(default_factory=bytearray)
    deadline: float = 0.0
    head_started: bool = False
    served: bool = False
    """It has answered a request before (an idle keep-alive connection when waiting)."""

    def head_complete(self) -> bool:
        start = 0
        # Blank lines before a request line are ignored (RFC 9112 §2.2).
        while self.buffer.startswith((b"\r\n", b"\n"), start):
            start += 2 if self.buffer.startswith(b"\r\n", start) else 1
        del self.buffer[:start]
        return b"\r\n\r\n" in self.buffer or b"\n\n" in self.buffer


class ServerSettings(Protocol):
    """What a :class:`Handler` needs from its server."""

    app: WSGIApp
    idle_timeout: float
    server_address: tuple[str, int]
    draining: bool

    def on_error(self, error: BaseException) -> None:
        """Record a failure of the app for ``check()``."""


class Handler(BaseHTTPRequestHandler):
    """Answer one request of a connection (the server calls it again for the next one)."""

    protocol_version = "HTTP/1.1"
    # Buffered writes: the status line, headers and a small body leave in one segment (with
    # separate writes, Nagle and delayed ACKs cost ~40 ms per keep-alive round trip).
    wbufsize = 1 << 16
    server: ServerSettings  # type: ignore[assignment]

    def __init__(self, connection: Connection, server: ServerSettings) -> None:
        self._conn = connection
        super().__init__(connection.sock, connection.address, server)  # type: ignore[arg-type]

    def setup(self) -> None:
        self.connection = self.request
        self.connection.settimeout(self.server.idle_timeout)
        self.rfile = SocketReader(self.connection, self._conn.buffer)  # type: ignore[assignment]
        self.wfile = self.connection.makefile("wb", self.wbufsize)

    def handle(self) -> None:
        self.close_connection = True
        self.handle_one_request()

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

    def _environ(self, body: Body) -> dict[str, object]:
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
        try:
            length = body_length(self.headers)
        except FramingError as exc:
            self.close_connection = True
            self._expect_100 = False
            self.send_error(exc.status, exc.message)
            return
        body = Body(self.rfile, length, self._send_continue)  # type: ignore[arg-type]
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
        except CONNECTION_ERRORS:
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
        body: Body,
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
        if not self.close_connection and (self.server.draining or not self._can_drain(body)):
            # Say so, or the client reuses a connection we are about to close (send_header
            # sets close_connection).
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

    def _can_drain(self, body: Body) -> bool:
        """Return whether the unread rest of the body is small enough to read and discard."""
        if body.exhausted:
            return True
        left = body.left
        return not self._expect_100 and left is not None and left <= _DRAIN_LIMIT

    def _finish_body(self, body: Body) -> None:
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
        except (MalformedBodyError, OSError):
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
