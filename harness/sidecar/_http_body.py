"""Request framing for the sidecar's HTTP server: the socket reader, the body, RFC 9112 checks.

A connection's unread bytes stay in its :class:`SocketReader` between requests, so whatever a
client sends after a body is parsed as its next request (never dropped, never stored). The body
length comes from exactly one of ``Content-Length`` and ``Transfer-Encoding: chunked``; anything
else is refused (RFC 9112 §6.1-§6.3), so a proxy and this server can never disagree on where a
request ends.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Callable, Iterator
from email.message import Message
from http import HTTPStatus
from typing import Final

__all__ = ["Body", "FramingError", "MalformedBodyError", "SocketReader", "body_length"]

_DIGITS: Final = re.compile(r"[0-9]+")
_RECV_SIZE: Final = 1 << 16


class MalformedBodyError(ValueError):
    """The client's chunked encoding is broken, or the body ended early."""


class FramingError(Exception):
    """The request's framing headers are refused: answer ``status`` and close."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class SocketReader:
    """``readline``/``read`` over a socket; bytes read ahead stay in :attr:`buffer`."""

    def __init__(self, sock: socket.socket, buffer: bytearray) -> None:
        self._sock = sock
        self.buffer = buffer

    def _fill(self) -> bool:
        chunk = self._sock.recv(_RECV_SIZE)
        if not chunk:
            return False
        self.buffer += chunk
        return True

    def readline(self, limit: int | None = -1) -> bytes:
        """Return one line including ``\\n`` (at most ``limit`` bytes; ``b""`` at EOF)."""
        limit = -1 if limit is None else limit
        start = 0
        while True:
            end = self.buffer.find(b"\n", start)
            if end >= 0:
                size = end + 1
                break
            if 0 <= limit <= len(self.buffer):
                size = limit
                break
            start = len(self.buffer)
            if not self._fill():
                size = len(self.buffer)
                break
        if limit >= 0:
            size = min(size, limit)
        line = bytes(self.buffer[:size])
        del self.buffer[:size]
        return line

    def close(self) -> None:
        """Leave the socket open: the connection outlives one request."""

    def read(self, size: int | None = -1) -> bytes:
        """Return up to ``size`` bytes: buffered ones first, else one ``recv``."""
        if size is None or size < 0:
            while self._fill():
                pass
            size = len(self.buffer)
        elif not self.buffer and size:
            self._fill()
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data


def body_length(headers: Message) -> int | None:
    """Return the body's ``Content-Length`` (``None``: chunked) or raise :class:`FramingError`."""
    codings = [
        coding.strip().lower()
        for value in headers.get_all("Transfer-Encoding") or ()
        for coding in value.split(",")
        if coding.strip()
    ]
    lengths = headers.get_all("Content-Length") or []
    if codings:
        if lengths:
            raise FramingError(
                HTTPStatus.BAD_REQUEST,
                "both Content-Length and Transfer-Encoding are set; send only one",
            )
        if codings[-1] != "chunked":
            raise FramingError(
                HTTPStatus.BAD_REQUEST,
                f"Transfer-Encoding {', '.join(codings)!r} does not end with chunked",
            )
        if codings != ["chunked"]:
            raise FramingError(
                HTTPStatus.NOT_IMPLEMENTED,
                f"Transfer-Encoding {', '.join(codings)!r} is not supported; send only chunked",
            )
        return None
    values = {value.strip() for value in lengths}
    if not values:
        return 0
    if len(values) > 1 or not _DIGITS.fullmatch(next(iter(values))):
        raise FramingError(HTTPStatus.BAD_REQUEST, f"invalid Content-Length {', '.join(lengths)!r}")
    return int(next(iter(values)))


class Body:
    """``wsgi.input``: the request body (by ``Content-Length`` or chunked), read on demand."""

    def __init__(
        self, rfile: SocketReader, length: int | None, on_first_read: Callable[[], None]
    ) -> None:
        self._rfile = rfile
        self._left = length if length is not None else 0
        self._chunked = length is None
        self._done = length == 0
        self._on_first_read: Callable[[], None] | None = on_first_read

    @property
    def exhausted(self) -> bool:
        """Return whether the whole body was read."""
        return self._done

    @property
    def left(self) -> int | None:
        """Return the unread byte count of a ``Content-Length`` body (``None``: chunked)."""
        return None if self._chunked else self._left

    def _next_chunk(self) -> bool:
        """Read the next chunk header; return whether the body ended."""
        line = self._rfile.readline(1026)
        if not line.endswith(b"\n"):
            raise MalformedBodyError("a chunk size line is missing or too long")
        size_text = line.split(b";", 1)[0].strip()
        if not re.fullmatch(rb"[0-9A-Fa-f]{1,16}", size_text):
            raise MalformedBodyError(f"invalid chunk size line {line!r}")
        size = int(size_text, 16)
        if size == 0:
            for _ in range(100):  # trailer fields, bounded
                if self._rfile.readline(8192) in (b"\r\n", b"\n", b""):
                    break
            self._done = True
        self._left = size
        return self._done

    def read(self, size: int | None = -1) -> bytes:
        """Return up to ``size`` bytes of the body (all of it for ``-1``)."""
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
            raise MalformedBodyError("the connection closed in the middle of the body")
        self._left -= len(data)
        if self._left == 0:
            if self._chunked:
                if self._rfile.readline(3) not in (b"\r\n", b"\n"):
                    raise MalformedBodyError("a chunk does not end with CRLF")
            else:
                self._done = True
        return data

    def readline(self, size: int | None = -1) -> bytes:
        """Return one line of the body (rarely used by WSGI apps; one byte at a time)."""
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
