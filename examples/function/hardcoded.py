"""greeter: a Direktiv function that hard-codes its sidecar, ``http://localhost:8889``.

Like most real functions it never reads an environment variable: it sends ``POST
http://localhost:8889/var`` with its action id, as Direktiv's sidecar expects. The harness's
front door on port 8889 routes that request to the sidecar of the call, in any process. The
same WSGI app runs in-process (``direktiv_call(app, ...)``) or as its own server
(``python examples/function/hardcoded.py --port 0``).
"""

from __future__ import annotations

import argparse
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import IO, cast
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

SIDECAR = "http://localhost:8889"
"""Hard-coded, as in Direktiv: the sidecar shares the function's network namespace."""

StartResponse = Callable[[str, list[tuple[str, str]]], object]


def set_variable(action_id: str, scope: str, key: str, data: bytes) -> None:
    """Store a variable through the sidecar."""
    query = urllib.parse.urlencode({"aid": action_id, "scope": scope, "key": key})
    request = urllib.request.Request(
        f"{SIDECAR}/var?{query}", data=data, method="POST", headers={"Content-Type": "text/plain"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()


def get_variable(action_id: str, scope: str, key: str) -> bytes | None:
    """Return a variable from the sidecar, or ``None`` when it does not exist."""
    query = urllib.parse.urlencode({"aid": action_id, "scope": scope, "key": key})
    try:
        with urllib.request.urlopen(f"{SIDECAR}/var?{query}", timeout=10) as response:
            return cast(bytes, response.read())
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return None
        raise


def app(environ: dict[str, object], start_response: StartResponse) -> Iterable[bytes]:
    """Greet ``{"name": ...}``, count the greetings in a workflow variable, answer the count."""
    if environ.get("REQUEST_METHOD") == "DELETE":
        start_response("200 OK", [])
        return [b""]
    length = int(str(environ.get("CONTENT_LENGTH") or 0))
    body = json.loads(cast(IO[bytes], environ["wsgi.input"]).read(length) or b"{}")
    action_id = str(environ.get("HTTP_DIREKTIV_ACTIONID", ""))
    before = get_variable(action_id, "workflow", "greetings")
    count = int(before or b"0") + 1
    set_variable(action_id, "workflow", "greetings", str(count).encode())
    set_variable(action_id, "instance", "greeting", f"hello {body.get('name', 'you')}".encode())
    answer = json.dumps({"greetings": count}).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [answer]


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    """One thread per request, as a function's real web server has."""

    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output clean."""


def main() -> None:
    """Serve the function on port 8080, as Direktiv runs it (``--port 0``: any free port)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    arguments = parser.parse_args()
    with make_server(
        arguments.host, arguments.port, app, server_class=_ThreadingServer, handler_class=_Quiet
    ) as server:
        print(f"greeter listening on http://{arguments.host}:{server.server_port}", flush=True)
        server.serve_forever()


if __name__ == "__main__":
    main()
