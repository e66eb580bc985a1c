"""A fake Direktiv sidecar: ``/var`` and ``/log`` over real HTTP, routed by action id.

A :class:`Sidecar` is a WSGI app (call it in-process, e.g. through ``httpx.WSGITransport``)
and, once started, a threaded HTTP/1.1 server with keep-alive on ``127.0.0.1:8889`` (the
address functions hard-code) or any port. Actions are registered with the store and owners
their requests reach; requests for an unknown ``aid`` get 404. Every request is recorded
(:attr:`Sidecar.requests`) and server-side failures are re-raised by :meth:`Sidecar.check`, in
the style of pytest-httpserver.
"""

from __future__ import annotations

import atexit
import errno
import ipaddress
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from http import HTTPStatus
from typing import TYPE_CHECKING, ClassVar, Final

from direktiv_sdk.errors import PortInUseError, SidecarAddressError
from direktiv_sdk.store import VariableStore
from harness.sidecar._action import ActionContext, SidecarRequest, VariableWrite
from harness.sidecar._app import MAX_BODY, MAX_LOG_BODY, route
from harness.sidecar._front_door import FrontDoor, front_door_port
from harness.sidecar._http import WSGIServer
from harness.sidecar._routes import describe_holder

if TYPE_CHECKING:
    from types import TracebackType
    from typing import Self

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "MAX_BODY",
    "MAX_LOG_BODY",
    "ActionContext",
    "Sidecar",
    "SidecarRequest",
    "VariableWrite",
]

DEFAULT_HOST: Final = "127.0.0.1"
DEFAULT_PORT: Final = 8889
"""The port of Direktiv's local sidecar server: functions call ``http://localhost:8889``."""


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Sidecar:
    """Direktiv's sidecar ``/var`` and ``/log`` endpoints for any number of actions at once.

    Args:
        host: The address to listen on; only loopback addresses unless ``allow_remote``.
        port: The port (``0``, the default, picks a free one; read it back from :attr:`port`).
        front_door: Also route this sidecar's actions through the machine's front door on
            ``127.0.0.1:<front_door>`` (8889 for functions that hard-code
            ``http://localhost:8889``); the sidecar then starts listening at its first action.
            ``None``: reachable only at :attr:`url` or in-process.
        allow_remote: Allow a non-loopback ``host``: the sidecar has no authentication.
        max_body: The largest ``POST /var`` body (128 MiB, as Direktiv).
        max_log_body: The largest ``POST /log`` body (4 MiB, as Direktiv).
    """

    _running: ClassVar[dict[tuple[str, int], Sidecar]] = {}
    _running_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(
        self,
        *,
        host: str = DEFAULT_HOST,
        port: int = 0,
        front_door: int | None = None,
        allow_remote: bool = False,
        max_body: int = MAX_BODY,
        max_log_body: int = MAX_LOG_BODY,
    ) -> None:
        if not isinstance(host, str) or not (_is_loopback(host) or allow_remote):
            raise SidecarAddressError(str(host))
        if not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"invalid port {port!r}: use 0-65535 (0 picks a free port)")
        self.host = host
        self._port = port
        self.max_body = max_body
        self.max_log_body = max_log_body
        self._lock = threading.Lock()
        self._actions: dict[str, ActionContext] = {}
        self._requests: list[SidecarRequest] = []
        self._errors: list[Exception] = []
        self._server: WSGIServer | None = None
        if front_door is not None and (
            isinstance(front_door, bool) or not isinstance(front_door, int) or front_door < 1
        ):
            raise ValueError(f"invalid front_door {front_door!r}: use a port from 1 to 65535")
        self.front_door = None if front_door is None else FrontDoor.for_port(front_door)
        """This process's part of the front door the actions are routed through, if any."""

    # ------------------------------------------------------------------ actions

    def register(self, context: ActionContext) -> str:
        """Route ``/var`` and ``/log`` requests for ``context.aid`` to ``context``; return it."""
        if not isinstance(context, ActionContext):
            raise TypeError(f"context must be an ActionContext, not {type(context).__name__}")
        with self._lock:
            if context.aid in self._actions:
                raise ValueError(
                    f"action id {context.aid!r} is already registered: unregister it first"
                )
            self._actions[context.aid] = context
        if self.front_door is not None:
            if not self.running:
                self.start()
            self.front_door.add(context.aid, self)
        return context.aid

    def unregister(self, aid: str | ActionContext) -> None:
        """Stop routing requests for ``aid`` (they get 404 afterwards); unknown ids are ignored."""
        key = aid.aid if isinstance(aid, ActionContext) else aid
        with self._lock:
            known = self._actions.pop(key, None)
        if known is not None and self.front_door is not None:
            self.front_door.remove(key)

    @contextmanager
    def action(
        self,
        store: VariableStore,
        *,
        namespace: str = "default",
        workflow: str = "/workflow.yaml",
        instance: str | None = None,
        log: Callable[[str], None] | None = None,
        aid: str | None = None,
    ) -> Iterator[ActionContext]:
        """Register a new action for the ``with`` block and yield its context."""
        context = ActionContext(
            store, namespace=namespace, workflow=workflow, instance=instance, log=log, aid=aid
        )
        self.register(context)
        try:
            yield context
        finally:
            self.unregister(context)

    def lookup(self, aid: str) -> ActionContext | None:
        """Return the registered action ``aid``, or ``None``."""
        with self._lock:
            return self._actions.get(aid)

    # ------------------------------------------------------------------ WSGI

    def __call__(
        self, environ: dict[str, object], start_response: Callable[..., object]
    ) -> Iterable[bytes]:
        """Answer one request (WSGI): the same routing the HTTP server uses."""
        reply = route(environ, self.lookup, max_body=self.max_body, max_log_body=self.max_log_body)
        record = SidecarRequest(
            method=str(environ.get("REQUEST_METHOD", "")),
            path=str(environ.get("PATH_INFO", "")),
            aid=reply.aid,
            scope=reply.scope,
            key=reply.key,
            status=int(reply.status),
        )
        with self._lock:
            self._requests.append(record)
            if isinstance(reply.error, Exception):
                self._errors.append(reply.error)
        start_response(f"{reply.status} {HTTPStatus(reply.status).phrase}", reply.headers)
        return reply.body

    # ------------------------------------------------------------------ records

    @property
    def requests(self) -> tuple[SidecarRequest, ...]:
        """Return every request answered since the last :meth:`clear`, in order."""
        with self._lock:
            return tuple(self._requests)

    def requests_for(self, aid: str) -> tuple[SidecarRequest, ...]:
        """Return the recorded requests of action ``aid``."""
        return tuple(r for r in self.requests if r.aid == aid)

    def clear(self) -> None:
        """Forget recorded requests and server-side failures (registered actions stay)."""
        with self._lock:
            self._requests.clear()
            self._errors.clear()

    def record_error(self, error: BaseException) -> None:
        """Remember a server-side failure for :meth:`check`."""
        if isinstance(error, Exception):
            with self._lock:
                self._errors.append(error)

    def check(self) -> None:
        """Re-raise server-side failures since the last check (an ``ExceptionGroup`` if many)."""
        with self._lock:
            errors, self._errors = self._errors, []
        if len(errors) == 1:
            raise errors[0]
        if errors:
            raise ExceptionGroup(f"the sidecar failed {len(errors)} times", errors)

    # ------------------------------------------------------------------ server

    @property
    def running(self) -> bool:
        """Return whether the HTTP server is listening."""
        return self._server is not None

    @property
    def port(self) -> int:
        """Return the port (the real one once started with ``port=0``)."""
        return self._port

    @property
    def url(self) -> str:
        """Return the base URL, e.g. ``http://127.0.0.1:8889``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self._port}"

    def start(self) -> Self:
        """Listen on :attr:`host` and :attr:`port` in background threads; return ``self``."""
        if self._server is not None:
            return self
        try:
            server = WSGIServer(self.host, self._port, self, self.record_error)
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                reason = exc.strerror or str(exc)
                if exc.errno == errno.EADDRINUSE:
                    reason = f"held by {describe_holder(self.host, self._port).description}"
                raise PortInUseError(self.host, self._port, reason) from exc
            raise
        self._port = int(server.server_address[1])
        server.start()
        self._server = server
        with Sidecar._running_lock:
            Sidecar._running[(self.host, self._port)] = self
        return self

    def stop(self) -> None:
        """Stop listening and close open connections; registrations and records stay."""
        server, self._server = self._server, None
        if server is None:
            return
        with Sidecar._running_lock:
            if Sidecar._running.get((self.host, self._port)) is self:
                del Sidecar._running[(self.host, self._port)]
        server.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"Sidecar({self.url!r}, {state})"

    # ------------------------------------------------------------------ the shared one

    @classmethod
    def shared(
        cls, *, host: str = DEFAULT_HOST, port: int = 0, front_door: int | str | None = "env"
    ) -> Sidecar:
        """Return this process's running sidecar, starting one if needed (stopped at exit).

        Runners use it by default. With ``port=0`` it listens on a free port and its actions
        are routed through the front door on ``front_door`` (``"env"``: ``$DIREKTIV_SIDECAR_PORT``
        else 8889; ``None``: none), so functions that hard-code ``http://localhost:8889``
        reach it from any process. With another ``port`` it is the sidecar on that address
        (one the caller started there is reused).

        Raises:
            PortInUseError: ``port`` is not 0 and something else listens on it.
        """
        door = front_door_port() if front_door == "env" else front_door
        if door is not None and not isinstance(door, int):
            raise ValueError(f"invalid front_door {front_door!r}: use a port, None or 'env'")
        key = (host, port, door if port == 0 else None)
        with cls._running_lock:
            existing = cls._running.get((host, port)) if port else _own.get(key)
        if existing is not None:
            return existing
        with _shared_lock:
            with cls._running_lock:
                existing = cls._running.get((host, port)) if port else _own.get(key)
            if existing is not None:
                return existing
            sidecar = cls(host=host, port=port, front_door=door if port == 0 else None).start()
            if port == 0:
                _own[key] = sidecar
            atexit.register(sidecar.stop)
            return sidecar


_shared_lock = threading.Lock()
_own: dict[tuple[str, int, int | None], Sidecar] = {}
"""The sidecars :meth:`Sidecar.shared` started on free ports, by front door port."""
