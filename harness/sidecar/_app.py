"""The sidecar's ``/var`` and ``/log`` endpoints as plain functions over a WSGI environ.

Status codes follow the project's decisions (semantics §9.4), which differ from the reference
where it answers 200 to errors: a missing variable is 404, an unknown scope or a bad key 400, an
unknown or missing ``aid`` 404, a body over the limit 413, another method 405. Every error has
a one-line text body.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import IO, Final
from urllib.parse import parse_qs

from direktiv_sdk.errors import InvalidKeyError
from direktiv_sdk.store import CHUNK_SIZE, Scope, VariableReader, validate_key
from harness.sidecar._action import ActionContext

__all__ = ["MAX_BODY", "MAX_LOG_BODY", "Reply", "read_body", "route"]

MAX_BODY: Final = 134217728
"""128 MiB: the largest ``/var`` body and function response the sidecar accepts."""

MAX_LOG_BODY: Final = 0x400000
"""4 MiB: the largest ``/log`` body."""

_VAR_SCOPES: Final = frozenset(s.value for s in Scope)

WSGIEnviron = dict[str, object]


class _BadRequestError(Exception):
    """The request itself is malformed (bad Content-Length, body ended early)."""


@dataclass(slots=True)
class Reply:
    """What to answer, plus what to record about the request."""

    status: int
    body: Iterable[bytes]
    headers: list[tuple[str, str]] = field(default_factory=list)
    aid: str = ""
    scope: str = ""
    key: str = ""
    error: BaseException | None = None
    """A server-side failure (store, log callback) that ``Sidecar.check()`` re-raises."""


def _text(status: int, text: str, aid: str = "", scope: str = "", key: str = "") -> Reply:
    body = f"{text}\n".encode()
    headers = [
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Length", str(len(body))),
    ]
    return Reply(status, [body], headers, aid=aid, scope=scope, key=key)


class _StreamBody:
    """A WSGI response iterable over a variable reader; closing it closes the reader."""

    def __init__(self, reader: VariableReader) -> None:
        self._reader = reader

    def __iter__(self) -> Iterator[bytes]:
        while chunk := self._reader.read(CHUNK_SIZE):
            yield chunk

    def close(self) -> None:
        self._reader.close()


def _read_exactly(stream: IO[bytes], length: int) -> bytes:
    parts: list[bytes] = []
    remaining = length
    while remaining > 0:
        chunk = stream.read(min(remaining, CHUNK_SIZE))
        if not chunk:
            raise _BadRequestError(f"the body ended after {length - remaining} of {length} bytes")
        parts.append(chunk)
        remaining -= len(chunk)
    return b"".join(parts)


def read_body(environ: WSGIEnviron, limit: int) -> bytes | None:
    """Return the request body, or ``None`` when it is longer than ``limit`` bytes.

    A declared ``Content-Length`` over the limit is refused before anything is read; a body
    without one (chunked) is read until it ends or passes the limit.
    """
    stream = environ["wsgi.input"]
    assert hasattr(stream, "read")
    declared = str(environ.get("CONTENT_LENGTH") or "").strip()
    if declared:
        if not declared.isdigit():
            raise _BadRequestError(f"invalid Content-Length {declared!r}")
        length = int(declared)
        if length > limit:
            return None
        return _guarded(lambda: _read_exactly(stream, length))  # type: ignore[arg-type]
    chunked = "chunked" in str(environ.get("HTTP_TRANSFER_ENCODING", "")).lower()
    if not (chunked or environ.get("wsgi.input_terminated")):
        return b""
    return _guarded(lambda: _read_capped(stream, limit))  # type: ignore[arg-type]


def _read_capped(stream: IO[bytes], limit: int) -> bytes | None:
    parts: list[bytes] = []
    total = 0
    while chunk := stream.read(CHUNK_SIZE):
        total += len(chunk)
        if total > limit:
            return None
        parts.append(chunk)
    return b"".join(parts)


def _guarded(read: Callable[[], bytes | None]) -> bytes | None:
    """Run ``read``; a broken body (bad chunking, early end, timeout) is the client's fault."""
    try:
        return read()
    except (ValueError, OSError) as exc:
        raise _BadRequestError(f"cannot read the request body: {exc}") from exc


def _query(environ: WSGIEnviron) -> dict[str, str]:
    parsed = parse_qs(str(environ.get("QUERY_STRING", "")), keep_blank_values=True)
    return {name: values[0] for name, values in parsed.items()}


def route(
    environ: WSGIEnviron,
    lookup: Callable[[str], ActionContext | None],
    *,
    max_body: int = MAX_BODY,
    max_log_body: int = MAX_LOG_BODY,
) -> Reply:
    """Answer one sidecar request; never raise (failures become 500 replies with ``error``)."""
    path = str(environ.get("PATH_INFO", ""))
    if path not in ("/var", "/log"):
        return _text(HTTPStatus.NOT_FOUND, "404 page not found")
    query = _query(environ)
    aid = query.get("aid", "")
    action = lookup(aid) if aid else None
    if action is None:
        scope, key = (query.get("scope", ""), query.get("key", "")) if path == "/var" else ("", "")
        return _text(
            HTTPStatus.NOT_FOUND, f"actionId {aid} not found", aid=aid, scope=scope, key=key
        )
    method = str(environ.get("REQUEST_METHOD", "GET")).upper()
    try:
        if path == "/log":
            return _log(environ, method, query, action, max_log_body)
        return _var(environ, method, query, action, max_body)
    except _BadRequestError as exc:
        return _text(HTTPStatus.BAD_REQUEST, str(exc), aid=aid)
    except Exception as exc:  # any failure is the sidecar's: 500, and check() re-raises it
        reply = _text(HTTPStatus.INTERNAL_SERVER_ERROR, f"sidecar failure: {exc}", aid=aid)
        reply.error = exc
        return reply


def _var(
    environ: WSGIEnviron,
    method: str,
    query: dict[str, str],
    action: ActionContext,
    max_body: int,
) -> Reply:
    scope, key = query.get("scope", ""), query.get("key", "")
    aid = action.aid
    if method not in ("GET", "POST"):
        reply = _text(HTTPStatus.METHOD_NOT_ALLOWED, "Method Not Allowed", aid, scope, key)
        reply.headers.append(("Allow", "GET, POST"))
        return reply
    if scope not in _VAR_SCOPES:
        return _text(HTTPStatus.BAD_REQUEST, f"unknown scope: {scope}", aid, scope, key)
    try:
        validate_key(key)
    except InvalidKeyError as exc:
        return _text(HTTPStatus.BAD_REQUEST, str(exc), aid, scope, key)
    if method == "POST":
        data = read_body(environ, max_body)
        if data is None:
            return _text(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                f"size limit: {max_body} bytes",
                aid,
                scope,
                key,
            )
        mime_type = str(environ.get("CONTENT_TYPE", ""))
        action.set_variable(Scope(scope), key, data, mime_type, "var")
        return Reply(HTTPStatus.OK, [b""], [("Content-Length", "0")], aid, scope, key)
    reader = action.store.open(action.ref(Scope(scope), key))
    if reader is None:
        return _text(
            HTTPStatus.NOT_FOUND,
            f"resource with key {key} not found in scope {scope}",
            aid,
            scope,
            key,
        )
    headers = [
        ("Content-Type", reader.meta.mime_type or "application/octet-stream"),
        ("Content-Length", str(reader.meta.size)),
    ]
    return Reply(HTTPStatus.OK, _StreamBody(reader), headers, aid, scope, key)


def _log(
    environ: WSGIEnviron,
    method: str,
    query: dict[str, str],
    action: ActionContext,
    max_log_body: int,
) -> Reply:
    if method == "POST":
        data = read_body(environ, max_log_body)
        if data is None:
            return _text(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                f"size limit: {max_log_body} bytes",
                aid=action.aid,
            )
        message = data.decode("utf-8", "replace")
    else:
        message = query.get("log", "")
    if message:
        action.write_log(message)
    return Reply(HTTPStatus.OK, [b""], [("Content-Length", "0")], aid=action.aid)
