"""Relaying a front-door request to the sidecar of another process, over kept-alive connections.

:class:`~._front_door.FrontDoor` answers requests for its own actions itself and hands the others
to a :class:`Forwarder` with the URL the route book gives for the ``aid``.
"""

from __future__ import annotations

import contextlib
import http.client
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Final
from urllib.parse import quote, urlsplit

__all__ = ["FORWARD_TIMEOUT", "Forwarder", "StartResponse", "text_response"]

FORWARD_TIMEOUT: Final = 300.0
"""Seconds a forwarded request may take."""
_CHUNK: Final = 1 << 16
_HOP_BY_HOP: Final = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "expect",
    }
)

StartResponse = Callable[..., object]


def text_response(start_response: StartResponse, status: str, text: str) -> list[bytes]:
    """Answer with a one-line plain-text body."""
    body = f"{text}\n".encode()
    start_response(
        status,
        [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))],
    )
    return [body]


class Forwarder:
    """Kept-alive connections to other processes' sidecars, by URL, and the relay over them."""

    def __init__(self) -> None:
        self._pool: dict[str, list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()

    def _connection(self, url: str) -> http.client.HTTPConnection:
        with self._lock:
            idle = self._pool.get(url)
            if idle:
                return idle.pop()
        parts = urlsplit(url)
        return http.client.HTTPConnection(
            parts.hostname or "127.0.0.1", parts.port, timeout=FORWARD_TIMEOUT
        )

    def _release(self, url: str, connection: http.client.HTTPConnection) -> None:
        with self._lock:
            self._pool.setdefault(url, []).append(connection)

    def forward(
        self,
        url: str,
        aid: str,
        environ: dict[str, object],
        start_response: StartResponse,
        gone: Callable[[str], None],
    ) -> Iterable[bytes]:
        """Relay one request for action ``aid`` to the sidecar at ``url``; return its answer.

        A sidecar that refuses the connection has ended: ``gone(aid)`` forgets its route.
        """
        method = str(environ.get("REQUEST_METHOD", "GET"))
        target = quote(str(environ.get("PATH_INFO", "")), safe="/", encoding="latin-1")
        if environ.get("QUERY_STRING"):
            target += f"?{environ['QUERY_STRING']}"
        declared = str(environ.get("CONTENT_LENGTH") or "").strip()
        chunked = "chunked" in str(environ.get("HTTP_TRANSFER_ENCODING", "")).lower()
        for attempt in (1, 2):  # a pooled connection may have been closed by the sidecar
            connection = self._connection(url)
            fresh = connection.sock is None
            try:
                connection.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
                for name, value in _request_headers(environ):
                    connection.putheader(name, value)
                if chunked and not declared:
                    connection.putheader("Transfer-Encoding", "chunked")
                connection.endheaders()
            except OSError as exc:
                connection.close()
                if fresh or attempt == 2:
                    if isinstance(exc, ConnectionRefusedError):
                        gone(aid)
                    return text_response(
                        start_response,
                        "502 Bad Gateway",
                        f"the sidecar of action {aid} at {url} does not answer ({exc}): "
                        "the process that ran it has ended",
                    )
                continue
            break
        stream = environ["wsgi.input"]
        # The sidecar may refuse early (413) and close: its answer can still be read.
        with contextlib.suppress(OSError):
            _send_body(connection, stream, declared, chunked)
        try:
            response = connection.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            connection.close()
            text = f"the sidecar of action {aid} at {url} broke off ({exc})"
            return text_response(start_response, "502 Bad Gateway", text)
        headers = [(n, v) for n, v in response.getheaders() if n.lower() not in _HOP_BY_HOP]
        start_response(f"{response.status} {response.reason}", headers)
        return _Relay(response, connection, lambda: self._release(url, connection))

    def close(self) -> None:
        """Close the idle connections (those relaying an answer close when it ends)."""
        with self._lock:
            pool, self._pool = self._pool, {}
        for connections in pool.values():
            for connection in connections:
                connection.close()


def _request_headers(environ: dict[str, object]) -> Iterator[tuple[str, str]]:
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            name = key[5:].replace("_", "-")
            if name.lower() not in _HOP_BY_HOP:
                yield name, str(value)
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH") and value != "":
            yield key.replace("_", "-"), str(value)


def _send_body(
    connection: http.client.HTTPConnection, stream: object, declared: str, chunked: bool
) -> None:
    read = stream.read  # type: ignore[attr-defined]
    if declared.isdigit():
        left = int(declared)
        while left > 0:
            data = read(min(left, _CHUNK))
            if not data:
                break
            connection.send(data)
            left -= len(data)
    elif chunked:
        while data := read(_CHUNK):
            connection.send(b"%x\r\n%s\r\n" % (len(data), data))
        connection.send(b"0\r\n\r\n")


class _Relay:
    """The forwarded answer as a WSGI iterable; the connection goes back to the pool after."""

    def __init__(
        self,
        response: http.client.HTTPResponse,
        connection: http.client.HTTPConnection,
        release: Callable[[], None],
    ) -> None:
        self._response = response
        self._connection = connection
        self._release = release

    def __iter__(self) -> Iterator[bytes]:
        while chunk := self._response.read(_CHUNK):
            yield chunk

    def close(self) -> None:
        response = self._response
        if response.isclosed() and not response.will_close:
            self._release()
        else:
            response.close()
            self._connection.close()
