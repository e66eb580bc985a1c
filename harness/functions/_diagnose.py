"""Why a call failed, when the reason is that the function could not reach its sidecar.

An in-process target that cannot connect raises (a Python function) or logs the exception and
answers 500 (Flask, most frameworks): :func:`capture_logged_errors` keeps what the call's
thread logs, and :func:`unreachable_sidecar` turns a refused connection, or a front door that
cannot serve the port, into a :class:`~direktiv_sdk.errors.SidecarUnreachableError`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

import httpx

from direktiv_sdk.errors import SidecarUnreachableError
from harness.sidecar import Sidecar

__all__ = ["capture_logged_errors", "unreachable_sidecar"]

_CHAIN_LIMIT: Final = 20


class _ThreadErrors(logging.Handler):
    """A root handler that keeps the exceptions logged by threads that asked for them."""

    def __init__(self) -> None:
        super().__init__(logging.NOTSET)
        self.wanted: dict[int, list[BaseException]] = {}
        self.guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        errors = self.wanted.get(threading.get_ident())
        if errors is not None and record.exc_info and record.exc_info[1] is not None:
            errors.append(record.exc_info[1])


_handler = _ThreadErrors()
_installed = False


@contextmanager
def capture_logged_errors() -> Iterator[list[BaseException]]:
    """Collect the exceptions this thread logs inside the block (through the root logger)."""
    global _installed  # noqa: PLW0603 - one handler for the process, installed on first use
    with _handler.guard:
        if not _installed:
            logging.getLogger().addHandler(_handler)
            _installed = True
    errors: list[BaseException] = []
    ident = threading.get_ident()
    _handler.wanted[ident] = errors
    try:
        yield errors
    finally:
        _handler.wanted.pop(ident, None)


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen and len(seen) < _CHAIN_LIMIT:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _refused(errors: list[BaseException]) -> tuple[str, BaseException] | None:
    """Return where a connection was refused and the outermost error saying so, if any."""
    for error in errors:
        where = ""
        for link in _chain(error):
            if isinstance(link, httpx.TransportError) and not where:
                try:
                    url = link.request.url
                    where = f"{url.host}:{url.port}" if url.port else str(url.host)
                except RuntimeError:  # no request attached
                    pass
            if isinstance(link, ConnectionRefusedError | httpx.ConnectError):
                return where, error
    return None


def unreachable_sidecar(
    sidecar: Sidecar, errors: list[BaseException], failed: bool
) -> SidecarUnreachableError | None:
    """Return the error to report when a failed call could not reach ``sidecar``, else ``None``.

    Args:
        sidecar: The call's sidecar.
        errors: What the target raised or logged during the call.
        failed: Whether the call crashed or its container failed.
    """
    if not failed:
        return None
    door = sidecar.front_door
    problem = door.problem if door is not None else None
    refused = _refused(errors)
    if refused is None and problem is None:
        return None
    where, cause = refused if refused is not None else ("", None)
    if door is not None:
        where = where or f"localhost:{door.port}"
        reachable = f"{sidecar.url} and, for every process, http://localhost:{door.port}"
    else:
        where = where or "localhost:8889"
        reachable = sidecar.url if sidecar.running else "in-process only (not listening)"
    reason = f"{type(cause).__name__}: {cause}" if cause is not None else "no connection"
    hint = problem or (
        f"this call's sidecar is at {reachable}; the function should use "
        "$DIREKTIV_SIDECAR_URL (or localhost:8889)"
    )
    error = SidecarUnreachableError(where, reason, hint)
    error.__cause__ = cause
    return error
