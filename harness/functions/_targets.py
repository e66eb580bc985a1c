"""The four ways a function is reached: a URL, a WSGI app, an ASGI app, a Python callable."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import math
import threading
import weakref
from abc import abstractmethod
from collections.abc import Callable
from typing import Final, Unpack

import httpx

from direktiv_sdk._compat import override
from direktiv_sdk.engine.functions import FunctionCall
from direktiv_sdk.errors import FunctionError, InvalidTargetError
from direktiv_sdk.expr import gojson
from harness.functions._context import FunctionContext, make_sidecar_client
from harness.functions._runners import (
    ERROR_CODE_HEADER,
    ERROR_MESSAGE_HEADER,
    CallRecord,
    Response,
    RunnerOptions,
    SidecarRunner,
    TimedOut,
    Unreachable,
    read_capped,
)
from harness.sidecar import SIDECAR_URL_ENV

__all__ = ["ASGIRunner", "CallableRunner", "URLRunner", "WSGIRunner"]

_IN_PROCESS_URL: Final = "http://localhost:8080/"
"""Where the sidecar sends function requests; in-process apps see this URL."""

_CANCEL_TIMEOUT: Final = 1.0


def _timeout(call: FunctionCall) -> httpx.Timeout:
    return httpx.Timeout(None if math.isinf(call.timeout) else call.timeout)


class _HTTPRunner(SidecarRunner):
    """Send the request through an ``httpx.Client`` (a URL or a WSGI app)."""

    _url: str

    def __init__(self, **options: Unpack[RunnerOptions]) -> None:
        super().__init__(**options)
        self._client: httpx.Client | None = None
        self._client_lock = threading.Lock()

    @abstractmethod
    def _make_client(self) -> httpx.Client:
        """Return the client requests go through."""

    def _http(self) -> httpx.Client:
        with self._client_lock:
            if self._client is None:
                self._client = self._make_client()
                # Close the pool when the runner is collected, even if nobody calls close().
                weakref.finalize(self, self._client.close)
            return self._client

    @override
    def _send(
        self, call: FunctionCall, headers: dict[str, str], record: CallRecord
    ) -> Response | TimedOut:
        client = self._http()
        request = client.build_request(
            "POST", self._url, content=call.input, headers=headers, timeout=_timeout(call)
        )
        try:
            response = client.send(request, stream=True)
        except httpx.TimeoutException:
            # httpx's limits are the call's timeout: it may run out a moment before the
            # caller's own wait does, and it is the same timeout.
            return TimedOut()
        except httpx.TransportError as exc:
            raise Unreachable(f"{type(exc).__name__}: {exc}") from exc
        try:
            if response.headers.get(ERROR_CODE_HEADER):
                body: bytes | None = b""  # ignored, as Direktiv does
            else:
                body = read_capped(
                    response.headers.get("Content-Length"),
                    response.iter_bytes(),
                    self.max_response,
                )
        except httpx.TimeoutException:
            return TimedOut()
        except httpx.TransportError as exc:
            raise Unreachable(f"the response broke off: {exc}") from exc
        finally:
            response.close()
        return Response(response.status_code, response.headers, body)

    @override
    def _cancel(self, aid: str) -> None:
        def cancel() -> None:
            with contextlib.suppress(Exception):
                self._http().request(
                    "DELETE",
                    self._url,
                    headers={"Direktiv-ActionID": aid},
                    timeout=_CANCEL_TIMEOUT,
                )

        threading.Thread(target=cancel, name=f"direktiv-cancel-{aid}", daemon=True).start()

    @override
    def close(self) -> None:
        with self._client_lock:
            if self._client is not None:
                self._client.close()


class URLRunner(_HTTPRunner):
    """Call a function that runs as an HTTP server (a container, a local process).

    The function's ``/var`` and ``/log`` requests reach :attr:`sidecar`: by default this
    process's :meth:`Sidecar.shared`, through the front door on ``localhost:8889`` that
    Direktiv functions hard-code. A server started for the test gets the sidecar's URL as
    ``$DIREKTIV_SIDECAR_URL`` only if whoever starts it passes it (see ``function_process``).
    """

    def __init__(self, url: str, **options: Unpack[RunnerOptions]) -> None:
        super().__init__(**options)
        self._url = url

    @override
    def _make_client(self) -> httpx.Client:
        return httpx.Client(trust_env=False)

    @override
    def describe(self) -> str:
        return self._url


class WSGIRunner(_HTTPRunner):
    """Call a WSGI app in-process (through ``httpx.WSGITransport``), at ``http://localhost:8080/``."""

    def __init__(self, app: Callable[..., object], **options: Unpack[RunnerOptions]) -> None:
        super().__init__(**options)
        self.app = app
        self._url = _IN_PROCESS_URL

    @override
    def _make_client(self) -> httpx.Client:
        app, sidecar = self.app, self.sidecar

        def with_sidecar_url(
            environ: dict[str, object], start_response: Callable[..., object]
        ) -> object:
            # The function sees its sidecar in the environ, never in the runner's os.environ.
            if sidecar.running:
                environ[SIDECAR_URL_ENV] = sidecar.url
            return app(environ, start_response)

        transport = httpx.WSGITransport(app=with_sidecar_url)  # type: ignore[arg-type]
        return httpx.Client(transport=transport, trust_env=False)

    @override
    def describe(self) -> str:
        return f"WSGI app {self.app!r}"


class ASGIRunner(SidecarRunner):
    """Call an ASGI app in-process (through ``httpx.ASGITransport``; no lifespan events)."""

    def __init__(self, app: Callable[..., object], **options: Unpack[RunnerOptions]) -> None:
        super().__init__(**options)
        self.app = app

    async def _with_sidecar_url(
        self, scope: dict[str, object], receive: Callable[..., object], send: object
    ) -> None:
        # The function sees its sidecar in the scope: scope["extensions"]["direktiv"].
        extensions = dict(scope.get("extensions") or {})  # type: ignore[call-overload]
        if self.sidecar.running:
            extensions["direktiv"] = {"sidecar_url": self.sidecar.url}
        await self.app({**scope, "extensions": extensions}, receive, send)  # type: ignore[misc]

    async def _send_async(self, call: FunctionCall, headers: dict[str, str]) -> Response:
        transport = httpx.ASGITransport(app=self._with_sidecar_url)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, trust_env=False) as client:
            request = client.build_request(
                "POST", _IN_PROCESS_URL, content=call.input, headers=headers
            )
            response = await client.send(request, stream=True)
            try:
                body: bytes | None = b""
                if not response.headers.get(ERROR_CODE_HEADER):
                    body = await _read_capped_async(response, self.max_response)
            finally:
                await response.aclose()
            return Response(response.status_code, response.headers, body)

    @override
    def _send(
        self, call: FunctionCall, headers: dict[str, str], record: CallRecord
    ) -> Response | TimedOut:
        # Runs in the runner's worker thread, which has no event loop of its own.
        return asyncio.run(self._send_with_timeout(call, headers))

    async def _send_with_timeout(
        self, call: FunctionCall, headers: dict[str, str]
    ) -> Response | TimedOut:
        # The timeout cancels the app's task, as the sidecar's cancel request would. It may fire
        # a moment before the caller's own wait does: that is the same timeout, not an error
        # (a TimeoutError the app raises itself still is one).
        limit = None if math.isinf(call.timeout) else call.timeout
        try:
            async with asyncio.timeout(limit) as deadline:
                return await self._send_async(call, headers)
        except TimeoutError:
            if deadline.expired():
                return TimedOut()
            raise

    @override
    def describe(self) -> str:
        return f"ASGI app {self.app!r}"


async def _read_capped_async(response: httpx.Response, limit: int) -> bytes | None:
    declared = response.headers.get("Content-Length")
    if declared is not None and declared.strip().isdigit() and int(declared) > limit:
        return None
    parts: list[bytes] = []
    total = 0
    async for chunk in response.aiter_bytes():
        total += len(chunk)
        if total > limit:
            return None
        parts.append(chunk)
    return b"".join(parts)


def _arity(fn: Callable[..., object]) -> int | None:
    """Return 2 if ``fn(input, context)`` binds, else 1 if ``fn(input)`` does, else ``None``."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return 2  # a builtin without a signature: trust the caller
    for arity in (2, 1):
        try:
            signature.bind(*range(arity))
        except TypeError:
            continue
        return arity
    return None


class CallableRunner(SidecarRunner):
    """Call a Python function ``fn(input, context)`` (or ``fn(input)``) in-process.

    ``input`` is the request body decoded with :func:`json.loads` (the raw bytes if it is not
    JSON); ``context`` is a :class:`~harness.FunctionContext`. The return value becomes the
    response body: ``bytes`` as they are, anything else as Go-JSON (so a ``str`` is a JSON
    string). Raising :class:`~direktiv_sdk.errors.FunctionError` reports an error code; any
    other exception is what a crashing server gives: ``container failed``.
    """

    def __init__(
        self,
        fn: Callable[..., object],
        *,
        function_id: str = "function",
        **options: Unpack[RunnerOptions],
    ) -> None:
        super().__init__(**options)
        arity = _arity(fn) if callable(fn) else None
        if arity is None:
            raise InvalidTargetError(
                function_id, fn, "a Python function target must accept (input, context) or (input)"
            )
        self.fn = fn
        self._arity = arity

    @override
    def _send(self, call: FunctionCall, headers: dict[str, str], record: CallRecord) -> Response:
        client = make_sidecar_client(record.sidecar)
        try:
            context = FunctionContext(
                action_id=record.context.aid,
                iterator=call.iterator,
                temp_dir=record.temp_dir,
                input=call.input,
                function_id=call.function_id,
                client=client,
                sidecar_url=record.sidecar.url if record.sidecar.running else "",
            )
            try:
                value: object = json.loads(call.input)
            except ValueError:
                value = call.input
            try:
                result = self.fn(value, context) if self._arity == 2 else self.fn(value)
            except FunctionError as exc:
                error_headers = {ERROR_CODE_HEADER: exc.code, ERROR_MESSAGE_HEADER: exc.message}
                return Response(500, error_headers, b"")
        finally:
            client.close()
        if isinstance(result, bytes | bytearray | memoryview):
            body = bytes(result)
        else:
            body = gojson.dumps(result).encode()  # type: ignore[arg-type]
        return Response(200, {}, body if len(body) <= self.max_response else None)

    @override
    def describe(self) -> str:
        return f"Python function {getattr(self.fn, '__qualname__', self.fn)!r}"
