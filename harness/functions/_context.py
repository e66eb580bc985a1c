"""What a Python function target receives besides its input: ids, temp dir, ``/var``, ``/log``."""

from __future__ import annotations

from pathlib import Path

import httpx

from direktiv_sdk.errors import SidecarResponseError
from direktiv_sdk.store import Scope

__all__ = ["FunctionContext", "VarClient", "make_sidecar_client"]

_SIDECAR_BASE = "http://localhost:8889"


def make_sidecar_client(app: object) -> httpx.Client:
    """Return a client that reaches the sidecar WSGI ``app`` in-process (close it after use)."""
    transport = httpx.WSGITransport(app=app)  # type: ignore[arg-type]
    return httpx.Client(transport=transport, base_url=_SIDECAR_BASE, trust_env=False)


class VarClient:
    """``GET``/``POST /var`` for one action, as a function inside Direktiv would send them."""

    def __init__(self, client: httpx.Client, aid: str) -> None:
        self._client = client
        self._aid = aid

    def get(self, key: str, scope: Scope | str = Scope.INSTANCE) -> bytes | None:
        """Return the variable's bytes, or ``None`` when the sidecar answers 404 for it.

        Raises:
            SidecarResponseError: The sidecar refused the request (bad scope or key, ...).
        """
        params = {"aid": self._aid, "scope": str(scope), "key": key}
        response = self._client.get("/var", params=params)
        if response.status_code == 404 and response.text.startswith("resource with key"):
            return None
        _raise_for_status(response)
        return response.content

    def set(
        self,
        key: str,
        data: bytes | str,
        scope: Scope | str = Scope.INSTANCE,
        *,
        mime_type: str = "",
    ) -> None:
        """Store ``data`` (``str`` as UTF-8) as variable ``key``; ``mime_type`` is sent as-is.

        Raises:
            SidecarResponseError: The sidecar refused the request (bad scope or key, too big).
        """
        body = data.encode() if isinstance(data, str) else bytes(data)
        headers = {"Content-Type": mime_type} if mime_type else {}
        params = {"aid": self._aid, "scope": str(scope), "key": key}
        _raise_for_status(self._client.post("/var", params=params, content=body, headers=headers))


def _raise_for_status(response: httpx.Response) -> None:
    if response.status_code != 200:
        raise SidecarResponseError(
            response.request.method,
            response.request.url.path,
            response.status_code,
            response.text.strip(),
        )


class FunctionContext:
    """The context a Python function target gets: ``fn(input, context)``.

    Attributes:
        action_id: The ``Direktiv-ActionID`` of this call (the ``aid`` of ``/var`` and ``/log``).
        iterator: ``Direktiv-Iterator``: the foreach index, else ``0``.
        temp_dir: ``Direktiv-TempDir``: holds the ``files:`` and the ``out/`` folders.
        input: The raw request body (Go-JSON of the action input).
        function_id: The id of the function in the flow.
        sidecar_url: The sidecar's base URL (``$DIREKTIV_SIDECAR_URL`` of a container), for a
            function that makes its own HTTP requests; ``localhost:8889`` reaches it too.
        vars: ``/var`` of the sidecar for this action.
    """

    def __init__(
        self,
        *,
        action_id: str,
        iterator: int,
        temp_dir: Path,
        input: bytes,
        function_id: str,
        client: httpx.Client,
        sidecar_url: str = "",
    ) -> None:
        self.action_id = action_id
        self.iterator = iterator
        self.temp_dir = temp_dir
        self.input = input
        self.function_id = function_id
        self.sidecar_url = sidecar_url
        self.vars = VarClient(client, action_id)
        self._client = client

    def out(self, scope: Scope | str = Scope.INSTANCE) -> Path:
        """Return ``<temp_dir>/out/<scope>``: files left there become variables of ``scope``."""
        return self.temp_dir / "out" / Scope.parse(scope).value

    def log(self, message: str) -> None:
        """Append ``message`` to the instance log (``POST /log``)."""
        response = self._client.post("/log", params={"aid": self.action_id}, content=message)
        _raise_for_status(response)

    def __repr__(self) -> str:
        return (
            f"FunctionContext(action_id={self.action_id!r}, iterator={self.iterator}, "
            f"temp_dir={str(self.temp_dir)!r})"
        )
