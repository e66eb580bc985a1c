"""Calling functions: real HTTP servers on 127.0.0.1, WSGI and ASGI apps, Python callables."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
import re
import socket
import tarfile
import threading
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from direktiv_sdk import open_store
from direktiv_sdk.engine.functions import (
    FunctionCall,
    FunctionFile,
    FunctionOutcome,
    adapt_functions,
)
from direktiv_sdk.errors import (
    ArchiveError,
    FunctionError,
    FunctionUnreachableError,
    InvalidFileTypeError,
    InvalidTargetError,
    OutFolderError,
    PortInUseError,
    SidecarResponseError,
)
from direktiv_sdk.store import Owner, Scope, VariableStore
from harness import (
    MAX_BODY,
    ASGIRunner,
    CallableRunner,
    FunctionContext,
    Sidecar,
    SidecarRequest,
    URLRunner,
    WSGIRunner,
    adapt_target,
    call_function,
    decode_output,
    function_file,
)

TIMEOUT = 30.0
"""Seconds any wait in these tests may take."""

Behaviour = Callable[["Seen"], tuple[int, dict[str, str], bytes]]


@dataclass
class Seen:
    """One request a test server received, and what the temp dir held meanwhile."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    temp_listing: list[str] = field(default_factory=list)


class FunctionServer:
    """A real stdlib HTTP server on 127.0.0.1:0 whose answers a test decides."""

    def __init__(self) -> None:
        self.behaviour: Behaviour = lambda seen: (200, {}, b"{}")
        self.seen: list[Seen] = []
        self.cancelled = threading.Event()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                seen = Seen(self.command, self.path, dict(self.headers), self.rfile.read(length))
                temp = seen.headers.get("Direktiv-TempDir")
                if temp and Path(temp).is_dir():
                    seen.temp_listing = sorted(
                        str(p.relative_to(temp)) for p in Path(temp).rglob("*")
                    )
                if self.command == "DELETE":
                    owner.cancelled.set()
                    status, headers, body = 200, dict[str, str](), b""
                else:
                    owner.seen.append(seen)
                    status, headers, body = owner.behaviour(seen)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                if "Content-Length" not in headers:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                with contextlib.suppress(ConnectionError):
                    self.wfile.write(body)

            do_POST = do_DELETE = _handle  # noqa: N815 - http.server's naming

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(TIMEOUT)


@pytest.fixture
def server() -> Iterator[FunctionServer]:
    made = FunctionServer()
    yield made
    made.close()


@pytest.fixture
def sidecar() -> Iterator[Sidecar]:
    """A sidecar on a free port for URL targets that are told where it is."""
    with Sidecar(port=0) as made:
        yield made
        made.check()


@pytest.fixture
def store() -> VariableStore:
    return open_store("memory://")


def url_call(
    server: FunctionServer, sidecar: Sidecar, input: object = None, **kw: object
) -> object:
    return call_function(server.url, input, sidecar=sidecar, **kw)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- the request


def test_request_carries_direktiv_headers_body_and_files(
    server: FunctionServer, sidecar: Sidecar, store: VariableStore
) -> None:
    store.set(Owner.for_instance("default", "inst-1").ref("cfg"), b"config")
    result = call_function(
        server.url,
        {"b": 1, "a": "<x>"},
        files=[{"key": "cfg"}],
        store=store,
        instance="inst-1",
        iterator=3,
        action_id="action-1",
        sidecar=sidecar,
    )
    assert result.ok
    (seen,) = server.seen
    assert (seen.method, seen.path, seen.body) == ("POST", "/", b'{"a":"\\u003cx\\u003e","b":1}')
    assert seen.headers["Direktiv-ActionID"] == "action-1"
    assert seen.headers["Direktiv-Iterator"] == "3"
    assert seen.headers["Content-Type"] == "application/json"
    assert seen.headers["Direktiv-TempDir"] == str(result.temp_dir)
    assert seen.temp_listing == [
        "cfg",
        "out",
        "out/file",
        "out/instance",
        "out/namespace",
        "out/workflow",
    ]
    assert not result.temp_dir.exists()  # removed after the call


def test_bytes_input_is_sent_as_it_is(server: FunctionServer, sidecar: Sidecar) -> None:
    call_function(server.url, b"not json", sidecar=sidecar)
    assert server.seen[0].body == b"not json"


# ---------------------------------------------------------------------------- the response (§5.6)


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ((200, {}, b'{"x":1}'), FunctionOutcome(output=b'{"x":1}')),
        ((204, {}, b""), FunctionOutcome(output=b"")),
        (
            (
                200,
                {"Direktiv-ErrorCode": "app.bad", "Direktiv-ErrorMessage": "it broke"},
                b"body is ignored",
            ),
            FunctionOutcome(error_code="app.bad", error_message="it broke"),
        ),
        ((500, {"Direktiv-ErrorCode": "app.bad"}, b""), FunctionOutcome(error_code="app.bad")),
        (
            (500, {"Direktiv-ErrorMessage": "discarded"}, b"oops"),
            FunctionOutcome(error_code="container failed", error_message=""),
        ),
        ((404, {}, b""), FunctionOutcome(error_code="container failed")),
        (
            (200, {"Direktiv-ErrorMessage": "no code: uncatchable"}, b"{}"),
            FunctionOutcome(crash="no code: uncatchable"),
        ),
        (
            (200, {"Content-Length": str(MAX_BODY + 1)}, b""),
            FunctionOutcome(crash="service response is too large"),
        ),
    ],
)
def test_response_handling(
    server: FunctionServer,
    sidecar: Sidecar,
    answer: tuple[int, dict[str, str], bytes],
    expected: FunctionOutcome,
) -> None:
    server.behaviour = lambda seen: answer
    result = call_function(server.url, {}, sidecar=sidecar)
    assert result.outcome == expected


def test_a_streamed_response_over_the_limit_crashes(sidecar: Sidecar) -> None:
    def app(environ: dict[str, object], start_response: Callable[..., object]) -> Iterator[bytes]:
        start_response("200 OK", [])
        for _ in range(11):
            yield b"x" * 100

    runner = WSGIRunner(app, sidecar=sidecar, max_response=1000)
    assert call_function(runner, {}).crash == "service response is too large"
    exact = WSGIRunner(app, sidecar=sidecar, max_response=1100)
    assert call_function(exact, {}).output == b"x" * 1100


@pytest.mark.slow
def test_a_chunked_response_one_byte_over_128_mib_crashes(
    server: FunctionServer, sidecar: Sidecar
) -> None:
    def app(environ: dict[str, object], start_response: Callable[..., object]) -> Iterator[bytes]:
        start_response("200 OK", [])
        piece = b"\0" * (1 << 20)
        for _ in range(128):
            yield piece
        yield b"!"

    assert call_function(WSGIRunner(app, sidecar=sidecar), {}).crash == (
        "service response is too large"
    )


@pytest.mark.parametrize(
    ("output", "value"),
    [
        (b'{"a":[1,2.5]}', {"a": [1.0, 2.5]}),
        (b'"text"', "text"),
        (b"plain text", base64.b64encode(b"plain text").decode()),
        (b"", ""),
        (b"1 2", base64.b64encode(b"1 2").decode()),
    ],
)
def test_output_decodes_as_json_or_base64(output: bytes, value: object) -> None:
    assert decode_output(output) == value


def test_werkzeug_servers_are_called_too(sidecar: Sidecar) -> None:
    from werkzeug.serving import make_server

    def app(environ: dict[str, object], start_response: Callable[..., object]) -> list[bytes]:
        start_response("200 OK", [("Direktiv-ErrorCode", "wz.code")])
        return [b""]

    werkzeug = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(
        target=werkzeug.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
    )
    thread.start()
    try:
        result = call_function(f"http://127.0.0.1:{werkzeug.server_port}", {}, sidecar=sidecar)
    finally:
        werkzeug.shutdown()
        thread.join(TIMEOUT)
    assert (result.error_code, result.error_message) == ("wz.code", "")


# ---------------------------------------------------------------------------- out/ after the call


def test_out_is_collected_also_after_an_error_response(
    server: FunctionServer, sidecar: Sidecar
) -> None:
    def behaviour(seen: Seen) -> tuple[int, dict[str, str], bytes]:
        out = Path(seen.headers["Direktiv-TempDir"]) / "out"
        (out / "workflow" / "report").write_bytes(b"partial")
        return 500, {"Direktiv-ErrorCode": "app.failed"}, b""

    server.behaviour = behaviour
    result = call_function(server.url, {}, sidecar=sidecar, workflow="/w.yaml")
    assert result.error_code == "app.failed"
    assert [(w.scope, w.key, w.data, w.via) for w in result.writes] == [
        (Scope.WORKFLOW, "report", b"partial", "out")
    ]
    variable = result.store.get(Owner.for_workflow("default", "/w.yaml").ref("report"))
    assert variable is not None
    assert (variable.data, variable.mime_type) == (b"partial", "")


def test_a_bad_out_name_crashes_the_call(server: FunctionServer, sidecar: Sidecar) -> None:
    def behaviour(seen: Seen) -> tuple[int, dict[str, str], bytes]:
        (Path(seen.headers["Direktiv-TempDir"]) / "out" / "instance" / "_x").write_bytes(b"1")
        return 200, {}, b"{}"

    server.behaviour = behaviour
    with pytest.raises(OutFolderError, match=r"^cannot collect 'out/instance/_x': '_x' is not"):
        call_function(server.url, {}, sidecar=sidecar)
    result = call_function(server.url, {}, sidecar=sidecar, raise_errors=False)
    assert result.crash.startswith("cannot collect 'out/instance/_x'")
    assert isinstance(result.error, OutFolderError)
    assert result.writes == ()


# ---------------------------------------------------------------------------- failures, timeouts


def test_an_unreachable_url_crashes_without_collecting(sidecar: Sidecar) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, never listening: connections are refused
        url = f"http://127.0.0.1:{port}/"
        with pytest.raises(FunctionUnreachableError) as caught:
            call_function(url, {}, sidecar=sidecar)
        result = call_function(url, {}, sidecar=sidecar, raise_errors=False)
    assert str(caught.value) == (
        f"cannot reach the function at {url!r} (ConnectError: [Errno 111] Connection refused): "
        "start it or fix the URL"
    )
    assert result.crash == str(caught.value)
    assert result.writes == ()


def test_a_slow_url_times_out_and_is_sent_a_cancel(
    server: FunctionServer, sidecar: Sidecar
) -> None:
    release = threading.Event()

    def behaviour(seen: Seen) -> tuple[int, dict[str, str], bytes]:
        release.wait(TIMEOUT)
        return 200, {}, b"{}"

    server.behaviour = behaviour
    try:
        result = call_function(server.url, {}, sidecar=sidecar, timeout=0.2, action_id="slow-1")
        assert server.cancelled.wait(TIMEOUT), "no DELETE reached the function"
    finally:
        release.set()
    assert (result.error_code, result.error_message) == (
        "direktiv.cancels.timeout.soft",
        "operation timed out",
    )
    assert result.timed_out


def test_a_slow_callable_times_out() -> None:
    release = threading.Event()
    try:
        result = call_function(lambda value, ctx: release.wait(TIMEOUT), {}, timeout=0.1)
    finally:
        release.set()
    assert result.outcome == FunctionOutcome(
        error_code="direktiv.cancels.timeout.soft", error_message="operation timed out"
    )


def test_a_slow_asgi_app_is_cancelled() -> None:
    cancelled = threading.Event()

    async def app(scope: dict[str, object], receive: object, send: object) -> None:
        try:
            await asyncio.sleep(TIMEOUT)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    result = call_function(app, {}, timeout=0.1)
    assert result.error_code == "direktiv.cancels.timeout.soft"
    assert cancelled.wait(TIMEOUT)


def test_an_asgi_app_raising_timeouterror_itself_is_container_failed() -> None:
    async def app(scope: dict[str, object], receive: object, send: object) -> None:
        raise TimeoutError("upstream took too long")

    result = call_function(app, {}, timeout=TIMEOUT, raise_errors=False)
    assert (result.error_code, result.error_message) == ("container failed", "")
    assert isinstance(result.error, TimeoutError)


# ---------------------------------------------------------------------------- the shared sidecar


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_url_functions_reach_the_front_door_port(
    server: FunctionServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The machine's 8889 may be anyone's here: the same path on a free front door port.
    port = _free_port()
    monkeypatch.setenv("DIREKTIV_SIDECAR_PORT", str(port))

    def behaviour(seen: Seen) -> tuple[int, dict[str, str], bytes]:
        aid = seen.headers["Direktiv-ActionID"]
        request = urllib.request.Request(
            f"http://localhost:{port}/var?aid={aid}&scope=namespace&key=hardcoded",
            data=b"via 8889",
            headers={"Content-Type": "text/plain"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            assert response.status == 200
        return 200, {}, b"{}"

    server.behaviour = behaviour
    result = call_function(server.url, {})
    assert result.ok
    assert result.requests == (
        SidecarRequest("POST", "/var", result.action_id, "namespace", "hardcoded", 200),
    )
    assert result.written("hardcoded", "namespace") is not None
    variable = result.store.get(Owner.for_namespace("default").ref("hardcoded"))
    assert variable is not None
    assert (variable.data, variable.mime_type) == (b"via 8889", "text/plain")
    assert Sidecar.shared() is Sidecar.shared()


def test_a_taken_shared_port_is_reported() -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        with pytest.raises(PortInUseError, match=rf"^cannot listen on 127\.0\.0\.1:{port} "):
            Sidecar.shared(port=port)


# ---------------------------------------------------------------------------- in-process targets


def test_wsgi_app_target() -> None:
    def app(environ: dict[str, object], start_response: Callable[..., object]) -> list[bytes]:
        stream = environ["wsgi.input"]
        assert isinstance(stream, io.BytesIO)
        body = json.loads(stream.read())
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps({"echo": body, "it": environ["HTTP_DIREKTIV_ITERATOR"]}).encode()]

    result = call_function(app, {"n": 2}, iterator=7)
    assert result.value == {"echo": {"n": 2.0}, "it": "7"}


def test_a_crashing_wsgi_app_is_container_failed() -> None:
    def app(environ: dict[str, object], start_response: Callable[..., object]) -> list[bytes]:
        raise KeyError("bug")

    with pytest.raises(KeyError, match="bug"):
        call_function(app, {})
    result = call_function(app, {}, raise_errors=False)
    assert (result.error_code, result.error_message) == ("container failed", "")
    assert isinstance(result.error, KeyError)
    runner = adapt_target("f", app)
    outcome = runner.call(
        FunctionCall("f", b"{}", "a-1", 0, "ns", "/w.yaml", "i-1", open_store("memory://"))
    )
    assert outcome == FunctionOutcome(error_code="container failed")


def test_asgi_app_target() -> None:
    async def app(scope: dict[str, object], receive: Callable[..., object], send: object) -> None:
        message = await receive()  # type: ignore[misc]
        headers = dict(scope["headers"])  # type: ignore[call-overload]
        body = json.dumps(
            {"got": json.loads(message["body"]), "aid": headers[b"direktiv-actionid"].decode()}
        )
        await send({"type": "http.response.start", "status": 200, "headers": []})  # type: ignore[operator]
        await send({"type": "http.response.body", "body": body.encode()})  # type: ignore[operator]

    result = call_function(app, [1], action_id="asgi-1")
    assert result.value == {"aid": "asgi-1", "got": [1.0]}


def test_callable_target_with_context(store: VariableStore) -> None:
    store.set(Owner.for_workflow("ns", "/f.yaml").ref("seed"), b"seed")
    seen: list[FunctionContext] = []

    def function(value: object, ctx: FunctionContext) -> object:
        seen.append(ctx)
        assert ctx.vars.get("seed", "workflow") == b"seed"
        assert ctx.vars.get("absent") is None
        ctx.vars.set("made", "text", mime_type="text/plain")
        ctx.vars.set("made", b"bytes", scope=Scope.NAMESPACE)
        ctx.log("a line")
        (ctx.out("instance") / "left").write_bytes(b"from out")
        (ctx.out(Scope.WORKFLOW) / "folder").mkdir()
        with pytest.raises(SidecarResponseError) as caught:
            ctx.vars.set("1bad", b"x")
        assert caught.value.status == 400
        assert str(caught.value).startswith(
            "the sidecar answered 400 to POST /var: \"invalid variable key '1bad'"
        )
        return {
            "value": value,
            "input": ctx.input.decode(),
            "dir": (ctx.temp_dir / "in").read_text(),
        }

    store.set(Owner.for_instance("ns", "run-1").ref("in"), b"file in")
    result = call_function(
        function,
        {"k": 1},
        files=[FunctionFile("in")],
        store=store,
        namespace="ns",
        workflow="/f.yaml",
        instance="run-1",
        action_id="call-1",
    )
    assert result.ok, result
    assert result.value == {"dir": "file in", "input": '{"k":1}', "value": {"k": 1.0}}
    assert result.logs == ("a line",)
    assert [(w.scope.value, w.key, w.mime_type, w.via) for w in result.writes] == [
        ("instance", "made", "text/plain", "var"),
        ("namespace", "made", "", "var"),
        ("workflow", "folder", "", "out"),
        ("instance", "left", "", "out"),
    ]
    assert [(r.method, r.path, r.scope, r.key, r.status) for r in result.requests] == [
        ("GET", "/var", "workflow", "seed", 200),
        ("GET", "/var", "instance", "absent", 404),
        ("POST", "/var", "instance", "made", 200),
        ("POST", "/var", "namespace", "made", 200),
        ("POST", "/log", "", "", 200),
        ("POST", "/var", "instance", "1bad", 400),
    ]
    assert seen[0].action_id == "call-1"
    assert result.written("made") is not None
    assert result.written("made", "namespace").data == b"bytes"  # type: ignore[union-attr]
    assert result.written("nothing") is None


@pytest.mark.parametrize(
    ("returned", "output"),
    [
        (b"\x00raw", b"\x00raw"),
        (bytearray(b"ba"), b"ba"),
        ("text", b'"text"'),
        (None, b"null"),
        ({"b": 1, "a": [True, 1.5]}, b'{"a":[true,1.5],"b":1}'),
    ],
)
def test_callable_return_values(returned: object, output: bytes) -> None:
    assert call_function(lambda value: returned, {}).output == output


def test_callable_gets_raw_bytes_when_the_input_is_not_json() -> None:
    got: list[object] = []
    call_function(got.append, b"\xffnot json")
    assert got == [b"\xffnot json"]


def test_function_error_reports_a_code() -> None:
    def function(value: object) -> object:
        raise FunctionError("app.invalid", "bad input")

    result = call_function(function, {})
    assert result.outcome == FunctionOutcome(error_code="app.invalid", error_message="bad input")
    assert result.error is None


def test_function_error_needs_a_code() -> None:
    with pytest.raises(ValueError, match=r"^invalid error code '': pass a non-empty string$"):
        FunctionError("")


def test_a_crashing_callable_raises_by_default() -> None:
    def function(value: object) -> object:
        raise ZeroDivisionError("boom")

    with pytest.raises(ZeroDivisionError, match="boom"):
        call_function(function, {})
    runner = CallableRunner(function, raise_errors=True)
    call = FunctionCall("f", b"{}", "a-2", 0, "ns", "/w.yaml", "i-2", open_store("memory://"))
    with pytest.raises(ZeroDivisionError):
        runner.call(call)


# ---------------------------------------------------------------------------- files: via call_funct


def test_hostile_files_raise_or_crash_and_write_nothing_outside(
    store: VariableStore, tmp_path: Path
) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("evil")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        tar.addfile(info)
    store.set(Owner.for_instance("default", "i-9").ref("bundle"), buffer.getvalue())
    called: list[object] = []
    kwargs: dict[str, object] = {
        "files": [{"key": "bundle", "type": "tar"}],
        "store": store,
        "instance": "i-9",
        "temp_root": tmp_path / "actions",
    }
    with pytest.raises(ArchiveError) as caught:
        call_function(called.append, {}, **kwargs)  # type: ignore[arg-type]
    result = call_function(called.append, {}, raise_errors=False, **kwargs)  # type: ignore[arg-type]
    message = (
        "cannot unpack 'bundle': member 'evil' is a symbolic link; only regular files and "
        "directories are allowed"
    )
    assert str(caught.value) == message
    assert result.crash == message
    assert called == []  # the function never ran
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["actions"]


def test_an_unknown_file_type_is_raised_before_anything_happens(tmp_path: Path) -> None:
    with pytest.raises(InvalidFileTypeError) as caught:
        call_function(lambda v: v, {}, files=[{"key": "x", "type": "zip"}], temp_root=tmp_path)
    assert caught.value.code == "direktiv.var.invalidType"
    assert list(tmp_path.iterdir()) == []


def test_keep_tempdir_and_temp_root(tmp_path: Path) -> None:
    def function(value: object, ctx: FunctionContext) -> object:
        (ctx.temp_dir / "scratch").write_bytes(b"debug me")
        return str(ctx.temp_dir)

    result = call_function(
        function,
        {},
        files=[{"key": "f", "permissions": "0700"}],
        temp_root=tmp_path,
        action_id="kept-1",
        keep_tempdir=True,
    )
    assert result.temp_dir == tmp_path / "kept-1"
    assert result.value == str(tmp_path / "kept-1")
    assert (result.temp_dir / "scratch").read_bytes() == b"debug me"
    assert (result.temp_dir / "f").stat().st_mode & 0o777 == 0o700


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            {"key": "a", "mode": "0755"},
            "invalid files: entry {'key': 'a', 'mode': '0755'}: use the fields key (required), "
            "scope, as, type and permissions",
        ),
        (
            {"as": "x"},
            "invalid files: entry {'as': 'x'}: use the fields key (required), scope, as, "
            "type and permissions",
        ),
        (
            {"key": "a", "permissions": "0o755"},
            "invalid permissions '0o755': write them in octal, like '0755'",
        ),
        (
            {"key": "a", "permissions": 7.5},
            "invalid permissions 7.5: use an octal string or an int",
        ),
    ],
)
def test_file_mappings_are_validated(entry: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        function_file(entry)


def test_file_mappings_become_function_files() -> None:
    entry = {"key": "k", "scope": "workflow", "as": "y", "type": "tar", "permissions": "755"}
    assert function_file(entry) == FunctionFile("k", "workflow", "y", "tar", 0o755)
    with pytest.raises(TypeError, match=r"^a files: entry must be a FunctionFile or a mapping"):
        function_file("k")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- adapt_target


def test_adapt_target_picks_the_runner() -> None:
    def wsgi(environ: object, start_response: object) -> list[bytes]:
        return []

    async def asgi(scope: object, receive: object, send: object) -> None:
        return None

    class App:
        def wsgi_app(self) -> None: ...

        def __call__(self, a: object, b: object) -> list[bytes]:
            return []

    runner = URLRunner("http://127.0.0.1:1/")
    assert isinstance(adapt_target("f", "http://127.0.0.1:8080"), URLRunner)
    assert isinstance(adapt_target("f", "https://fn.example/run"), URLRunner)
    assert isinstance(adapt_target("f", wsgi), WSGIRunner)
    assert isinstance(adapt_target("f", App()), WSGIRunner)
    assert isinstance(adapt_target("f", asgi), ASGIRunner)
    assert isinstance(adapt_target("f", lambda value, ctx: None), CallableRunner)
    assert isinstance(adapt_target("f", print), CallableRunner)
    assert adapt_target("f", runner) is runner
    runners = adapt_functions({"a": "http://127.0.0.1:9/", "b": runner})
    assert isinstance(runners["a"], URLRunner)
    assert runners["b"] is runner


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ("ftp://host/x", "a URL target needs http:// or https:// and a host"),
        ("localhost:8080", "a URL target needs http:// or https:// and a host"),
        ("http://", "a URL target needs http:// or https:// and a host"),
        (
            42,
            "use an http(s) URL, a WSGI app (environ, start_response), an ASGI app "
            "(scope, receive, send), a Python function (input, context) or a FunctionRunner",
        ),
        (
            dict,
            "use an http(s) URL, a WSGI app (environ, start_response), an ASGI app "
            "(scope, receive, send), a Python function (input, context) or a FunctionRunner",
        ),
        (
            lambda a, b, c: None,
            "a Python function target must accept (input, context) or (input)",
        ),
    ],
)
def test_unusable_targets_name_the_function(target: object, reason: str) -> None:
    with pytest.raises(InvalidTargetError) as caught:
        adapt_target("resize", target)
    assert str(caught.value) == f"cannot call function 'resize' through {target!r}: {reason}"
    assert isinstance(caught.value, TypeError)
    assert isinstance(caught.value, ValueError)


def test_async_targets_must_be_asgi() -> None:
    async def handler(value: object, ctx: object) -> None:
        return None

    with pytest.raises(InvalidTargetError, match=r"an async target must be an ASGI app"):
        adapt_target("f", handler)


def test_call_function_refuses_conflicting_runner_options(tmp_path: Path) -> None:
    runner = CallableRunner(lambda value: value)
    with pytest.raises(ValueError, match=r"^a runner target keeps its own options"):
        call_function(runner, {}, keep_tempdir=True)

    class Other:
        def call(self, call: FunctionCall) -> FunctionOutcome:
            return FunctionOutcome()

    with pytest.raises(InvalidTargetError, match=r"call_function needs a SidecarRunner"):
        call_function(Other(), {})


def test_runner_call_is_what_the_interpreter_uses(store: VariableStore) -> None:
    logged: list[str] = []

    def function(value: object, ctx: FunctionContext) -> object:
        ctx.log("from the function")
        return value

    runner = CallableRunner(function)
    call = FunctionCall(
        "echo", b'{"x":1}', "act-1", 2, "ns", "/w.yaml", "inst", store, log=logged.append
    )
    assert runner.call(call) == FunctionOutcome(output=b'{"x":1}')
    assert logged == ["from the function"]
    with pytest.raises(TypeError, match=r"^call must be a FunctionCall, not dict$"):
        runner.run({})  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- docs/harness.md

_DOC = Path(__file__).resolve().parents[2] / "docs" / "harness.md"
_BLOCKS = re.findall(r"^```python\n(.*?)^```$", _DOC.read_text(), re.DOTALL | re.MULTILINE)


def test_the_reference_has_examples() -> None:
    assert len(_BLOCKS) >= 3


@pytest.mark.parametrize("block", _BLOCKS, ids=lambda block: block.splitlines()[0][:40])
def test_each_reference_example_runs(block: str) -> None:
    exec(compile(block, str(_DOC), "exec"), {"__name__": "docs_harness"})
