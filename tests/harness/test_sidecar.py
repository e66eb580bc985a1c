"""The fake sidecar over real HTTP on 127.0.0.1 and in-process through WSGI."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from http import HTTPStatus
from pathlib import Path

import httpx
import pytest

from direktiv_sdk import open_store
from direktiv_sdk.errors import (
    InvalidKeyError,
    InvalidOwnerError,
    PortInUseError,
    SidecarAddressError,
)
from direktiv_sdk.store import KEY_PATTERN, Owner, VariableStore
from harness import MAX_BODY, MAX_LOG_BODY, ActionContext, Sidecar, SidecarRequest

TIMEOUT = 30.0
"""Seconds any socket operation or helper thread of these tests may take."""


@pytest.fixture(scope="module")
def running() -> Iterator[Sidecar]:
    """One sidecar listening on a free loopback port for the whole module."""
    with Sidecar(port=0) as sidecar:
        yield sidecar


@pytest.fixture
def sidecar(running: Sidecar) -> Iterator[Sidecar]:
    """The module's sidecar, cleared before the test and checked after it."""
    running.clear()
    yield running
    running.check()


@pytest.fixture
def store() -> VariableStore:
    return open_store("memory://")


@pytest.fixture
def action(sidecar: Sidecar, store: VariableStore) -> Iterator[ActionContext]:
    with sidecar.action(store, namespace="ns", workflow="/flows/a.yaml", instance="i1") as ctx:
        yield ctx


@pytest.fixture(params=["http", "wsgi"])
def client(request: pytest.FixtureRequest, sidecar: Sidecar) -> Iterator[httpx.Client]:
    """A client reaching the sidecar over real HTTP, or in-process through its WSGI app."""
    if request.param == "http":
        made = httpx.Client(base_url=sidecar.url, timeout=TIMEOUT, trust_env=False)
    else:
        transport = httpx.WSGITransport(app=sidecar)
        made = httpx.Client(transport=transport, base_url="http://localhost:8889")
    with made:
        yield made


def _var(aid: str, scope: str = "instance", key: str = "x") -> dict[str, str]:
    return {"aid": aid, "scope": scope, "key": key}


# ---------------------------------------------------------------------------- /var


def test_post_then_get_round_trips_bytes_and_mime_type(
    client: httpx.Client, action: ActionContext, store: VariableStore
) -> None:
    data = bytes(range(256)) * 3
    posted = client.post(
        "/var", params=_var(action.aid), content=data, headers={"Content-Type": "image/png"}
    )
    assert (posted.status_code, posted.content) == (200, b"")
    got = client.get("/var", params=_var(action.aid))
    assert (got.status_code, got.content) == (200, data)
    variable = store.get(Owner.for_instance("ns", "i1").ref("x"))
    assert variable is not None
    assert (variable.data, variable.mime_type) == (data, "image/png")


def test_post_without_content_type_stores_empty_mime_and_empty_body_stays(
    client: httpx.Client, action: ActionContext, store: VariableStore
) -> None:
    ref = Owner.for_workflow("ns", "/flows/a.yaml").ref("w")
    store.set(ref, b"old", mime_type="text/plain")
    assert client.post("/var", params=_var(action.aid, "workflow", "w"), content=b"").status_code
    variable = store.get(ref)
    assert variable is not None
    assert (variable.data, variable.mime_type) == (b"", "")


def test_each_scope_reaches_its_owner(
    client: httpx.Client, action: ActionContext, store: VariableStore
) -> None:
    for scope in ("instance", "workflow", "namespace"):
        response = client.post("/var", params=_var(action.aid, scope, "k"), content=scope.encode())
        assert response.status_code == 200
    owners = {
        "instance": Owner.for_instance("ns", "i1"),
        "workflow": Owner.for_workflow("ns", "/flows/a.yaml"),
        "namespace": Owner.for_namespace("ns"),
    }
    for scope, owner in owners.items():
        variable = store.get(owner.ref("k"))
        assert variable is not None
        assert variable.data == scope.encode()
    assert [(w.scope.value, w.key, w.via) for w in action.writes] == [
        ("instance", "k", "var"),
        ("workflow", "k", "var"),
        ("namespace", "k", "var"),
    ]


def test_get_missing_variable_is_404(client: httpx.Client, action: ActionContext) -> None:
    response = client.get("/var", params=_var(action.aid, "namespace", "nope"))
    assert response.status_code == 404
    assert response.text == "resource with key nope not found in scope namespace\n"


@pytest.mark.parametrize("scope", ["file", "thread", "system", "", "Instance"])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_unknown_scope_is_400(
    client: httpx.Client, action: ActionContext, scope: str, method: str
) -> None:
    response = client.request(method, "/var", params=_var(action.aid, scope), content=b"x")
    assert response.status_code == 400
    assert response.text == f"unknown scope: {scope}\n"
    assert action.writes == ()


@pytest.mark.parametrize("key", ["1x", "a_", ".hidden", "", "a/b"])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_bad_key_is_400(client: httpx.Client, action: ActionContext, key: str, method: str) -> None:
    response = client.request(method, "/var", params=_var(action.aid, key=key), content=b"x")
    assert response.status_code == 400
    assert response.text == f"{InvalidKeyError(key, KEY_PATTERN)}\n"


def test_unknown_or_missing_aid_is_404(client: httpx.Client, action: ActionContext) -> None:
    del action
    unknown = client.get("/var", params=_var("nope"))
    assert (unknown.status_code, unknown.text) == (404, "actionId nope not found\n")
    missing = client.post("/var", params={"scope": "instance", "key": "x"}, content=b"1")
    assert (missing.status_code, missing.text) == (404, "actionId  not found\n")
    log = client.post("/log", params={"aid": "nope"}, content=b"hi")
    assert (log.status_code, log.text) == (404, "actionId nope not found\n")


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "OPTIONS", "FOO"])
def test_other_methods_are_405(client: httpx.Client, action: ActionContext, method: str) -> None:
    response = client.request(method, "/var", params=_var(action.aid), content=b"x")
    assert response.status_code == 405
    assert response.text == "Method Not Allowed\n"
    assert response.headers["Allow"] == "GET, POST"


def test_unknown_path_is_404(client: httpx.Client, action: ActionContext) -> None:
    response = client.get("/vars", params=_var(action.aid))
    assert (response.status_code, response.text) == (404, "404 page not found\n")


def test_large_variable_streams_back_intact(client: httpx.Client, action: ActionContext) -> None:
    data = bytes(range(251)) * 20_000  # ~5 MB, several store chunks
    assert client.post("/var", params=_var(action.aid), content=data).status_code == 200
    response = client.get("/var", params=_var(action.aid))
    assert response.headers["Content-Length"] == str(len(data))
    assert response.content == data


def test_declared_body_over_the_limit_is_refused_unread_in_process(
    sidecar: Sidecar, action: ActionContext
) -> None:
    statuses: list[str] = []

    class Unreadable:
        def read(self, size: int = -1) -> bytes:
            raise AssertionError("the body must not be read")

    environ: dict[str, object] = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/var",
        "QUERY_STRING": f"aid={action.aid}&scope=instance&key=x",
        "CONTENT_LENGTH": str(MAX_BODY + 1),
        "wsgi.input": Unreadable(),
    }
    body = b"".join(sidecar(environ, lambda status, headers: statuses.append(status)))
    # The phrase is the standard library's: "Content Too Large" from Python 3.13 (RFC 9110).
    assert statuses == [f"413 {HTTPStatus.REQUEST_ENTITY_TOO_LARGE.phrase}"]
    assert body == b"size limit: 134217728 bytes\n"
    assert action.writes == ()


def _raw_exchange(sidecar: Sidecar, request: bytes, *, responses: int = 1) -> list[bytes]:
    """Send ``request`` bytes on one connection and return ``responses`` raw HTTP responses."""
    with socket.create_connection(("127.0.0.1", sidecar.port), timeout=TIMEOUT) as sock:
        sock.sendall(request)
        reader = sock.makefile("rb")
        out = []
        for _ in range(responses):
            head = b""
            while not head.endswith(b"\r\n\r\n"):
                line = reader.readline()
                assert line, f"connection closed early after {head!r}"
                head += line
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            out.append(head + reader.read(length))
        return out


def test_declared_body_over_the_limit_is_413_over_http(
    sidecar: Sidecar, action: ActionContext
) -> None:
    request = (
        f"POST /var?aid={action.aid}&scope=instance&key=x HTTP/1.1\r\n"
        f"Host: localhost\r\nContent-Length: {MAX_BODY + 1}\r\n\r\n"
    ).encode()
    (response,) = _raw_exchange(sidecar, request)
    assert response.startswith(b"HTTP/1.1 413 ")
    assert response.endswith(b"\r\n\r\nsize limit: 134217728 bytes\n")
    assert action.writes == ()


def test_streamed_body_over_the_limit_is_413(store: VariableStore) -> None:
    with Sidecar(port=0, max_body=1000) as small, small.action(store) as action:
        with httpx.Client(base_url=small.url, timeout=TIMEOUT, trust_env=False) as http:

            def chunks(total: int) -> Iterator[bytes]:
                for _ in range(total // 100):
                    yield b"x" * 100

            fits = http.post("/var", params=_var(action.aid), content=chunks(1000))
            too_big = http.post("/var", params=_var(action.aid, key="y"), content=chunks(1100))
        small.check()
    assert fits.status_code == 200
    assert (too_big.status_code, too_big.text) == (413, "size limit: 1000 bytes\n")
    assert [w.key for w in action.writes] == ["x"]


@pytest.mark.slow
def test_streamed_body_one_byte_over_128_mib_is_413(
    sidecar: Sidecar, action: ActionContext
) -> None:
    piece = b"\0" * (1 << 20)

    def body() -> Iterator[bytes]:
        for _ in range(128):
            yield piece
        yield b"!"

    with httpx.Client(base_url=sidecar.url, timeout=120, trust_env=False) as http:
        response = http.post("/var", params=_var(action.aid), content=body())
    assert (response.status_code, response.text) == (413, "size limit: 134217728 bytes\n")
    assert action.writes == ()


# ---------------------------------------------------------------------------- /log


def test_log_by_body_and_by_query(
    client: httpx.Client, sidecar: Sidecar, store: VariableStore
) -> None:
    lines: list[str] = []
    with sidecar.action(store, log=lines.append) as action:
        assert client.post("/log", params={"aid": action.aid}, content=b"from body").is_success
        assert client.get("/log", params={"aid": action.aid, "log": "from query"}).is_success
        assert client.put("/log", params={"aid": action.aid, "log": "by put"}).is_success
        empty = client.post("/log", params={"aid": action.aid}, content=b"")
        assert (empty.status_code, empty.content) == (200, b"")
        assert client.get("/log", params={"aid": action.aid}).status_code == 200
    assert lines == ["from body", "from query", "by put"]
    assert action.logs == ("from body", "from query", "by put")


def test_log_over_4_mib_is_413(client: httpx.Client, action: ActionContext) -> None:
    response = client.post("/log", params={"aid": action.aid}, content=b"x" * (MAX_LOG_BODY + 1))
    assert (response.status_code, response.text) == (413, "size limit: 4194304 bytes\n")
    assert list(action.logs) == []
    fits = client.post("/log", params={"aid": action.aid}, content=b"y" * MAX_LOG_BODY)
    assert fits.status_code == 200
    assert action.logs == ("y" * MAX_LOG_BODY,)


# ---------------------------------------------------------------------------- records, check()


def test_request_log_records_every_request_and_clear_empties_it(
    client: httpx.Client, sidecar: Sidecar, action: ActionContext
) -> None:
    client.post("/var", params=_var(action.aid, "workflow", "a"), content=b"1")
    client.get("/var", params=_var(action.aid, "namespace", "b"))
    client.get("/var", params=_var("other", "instance", "c"))
    client.post("/log", params={"aid": action.aid}, content=b"x")
    expected = (
        SidecarRequest("POST", "/var", action.aid, "workflow", "a", 200),
        SidecarRequest("GET", "/var", action.aid, "namespace", "b", 404),
        SidecarRequest("GET", "/var", "other", "instance", "c", 404),
        SidecarRequest("POST", "/log", action.aid, "", "", 200),
    )
    assert sidecar.requests == expected
    assert sidecar.requests_for(action.aid) == (expected[0], expected[1], expected[3])
    sidecar.clear()
    assert len(sidecar.requests) == 0


def test_check_reraises_a_server_side_failure(
    client: httpx.Client, sidecar: Sidecar, store: VariableStore
) -> None:
    def broken_log(message: str) -> None:
        raise RuntimeError(f"cannot log {message!r}")

    with sidecar.action(store, log=broken_log) as action:
        response = client.post("/log", params={"aid": action.aid}, content=b"hi")
    assert (response.status_code, response.text) == (500, "sidecar failure: cannot log 'hi'\n")
    with pytest.raises(RuntimeError, match=r"^cannot log 'hi'$"):
        sidecar.check()
    sidecar.check()  # reported once, then forgotten


def test_check_groups_several_failures(
    client: httpx.Client, sidecar: Sidecar, store: VariableStore
) -> None:
    def broken_log(message: str) -> None:
        raise ValueError(message)

    with sidecar.action(store, log=broken_log) as action:
        for text in (b"one", b"two"):
            client.post("/log", params={"aid": action.aid}, content=text)
    with pytest.raises(ExceptionGroup) as caught:
        sidecar.check()
    assert str(caught.value) == "the sidecar failed 2 times (2 sub-exceptions)"
    assert [str(e) for e in caught.value.exceptions] == ["one", "two"]


# ---------------------------------------------------------------------------- registration


def test_unregistered_action_gets_404(client: httpx.Client, sidecar: Sidecar) -> None:
    context = ActionContext(open_store("memory://"), aid="a-1")
    assert sidecar.register(context) == "a-1"
    assert client.post("/var", params=_var("a-1"), content=b"1").status_code == 200
    sidecar.unregister("a-1")
    assert client.post("/var", params=_var("a-1"), content=b"1").status_code == 404
    sidecar.unregister("a-1")  # unknown ids are ignored


def test_register_rejects_duplicates_and_non_contexts(sidecar: Sidecar) -> None:
    context = ActionContext(open_store("memory://"), aid="dup")
    sidecar.register(context)
    try:
        with pytest.raises(ValueError, match=r"^action id 'dup' is already registered"):
            sidecar.register(ActionContext(open_store("memory://"), aid="dup"))
    finally:
        sidecar.unregister(context)
    with pytest.raises(TypeError, match=r"^context must be an ActionContext, not str$"):
        sidecar.register("dup")  # type: ignore[arg-type]


def test_action_context_validates_its_fields() -> None:
    store = open_store("memory://")
    with pytest.raises(InvalidOwnerError, match=r"^invalid workflow path 'a.yaml'"):
        ActionContext(store, workflow="a.yaml")
    with pytest.raises(InvalidOwnerError, match=r"^invalid namespace '1ns'"):
        ActionContext(store, namespace="1ns")
    with pytest.raises(ValueError, match=r"^invalid action id '\.\./x': use 1-128 letters"):
        ActionContext(store, aid="../x")
    with pytest.raises(TypeError, match=r"^store must be a VariableStore, not dict$"):
        ActionContext({})  # type: ignore[arg-type]


def test_many_actions_at_once_on_one_sidecar(sidecar: Sidecar) -> None:
    store = open_store("memory://")
    failures: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            with (
                sidecar.action(store, namespace="ns", instance=f"inst-{n}") as action,
                httpx.Client(base_url=sidecar.url, timeout=TIMEOUT, trust_env=False) as http,
            ):
                for i in range(20):
                    value = f"{n}:{i}".encode()
                    posted = http.post("/var", params=_var(action.aid, key="v"), content=value)
                    assert posted.status_code == 200
                    assert http.get("/var", params=_var(action.aid, key="v")).content == value
        except BaseException as exc:  # re-raised in the test thread
            failures.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT)
        assert not thread.is_alive(), "a worker did not finish in time"
    if failures:
        raise failures[0]
    for n in range(12):
        variable = store.get(Owner.for_instance("ns", f"inst-{n}").ref("v"))
        assert variable is not None
        assert variable.data == f"{n}:19".encode()
    assert len(sidecar.requests) == 12 * 40


# ---------------------------------------------------------------------------- HTTP details


def test_keep_alive_serves_many_requests_on_one_connection(
    sidecar: Sidecar, action: ActionContext
) -> None:
    post = f"POST /var?aid={action.aid}&scope=instance&key=k HTTP/1.1\r\nHost: x\r\n"
    get = f"GET /var?aid={action.aid}&scope=instance&key=k HTTP/1.1\r\nHost: x\r\n\r\n"
    bad_key_with_body = (
        f"POST /var?aid={action.aid}&scope=instance&key=1 HTTP/1.1\r\nHost: x\r\n"
        "Content-Length: 5\r\n\r\nhello"
    )
    chunked = f"{post}Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\n\r\n"
    requests = (bad_key_with_body + chunked + get).encode()
    bad, stored, got = _raw_exchange(sidecar, requests, responses=3)
    assert bad.startswith(b"HTTP/1.1 400 ")
    assert stored.startswith(b"HTTP/1.1 200 ")
    assert got.startswith(b"HTTP/1.1 200 ")
    assert got.endswith(b"\r\n\r\nabcde")


def test_a_large_unread_body_closes_the_connection_and_says_so(
    sidecar: Sidecar, action: ActionContext
) -> None:
    size = 2 * 1024 * 1024  # over the 1 MiB the server drains to keep a connection
    request = (
        f"POST /var?aid={action.aid}&scope=instance&key=1bad HTTP/1.1\r\nHost: x\r\n"
        f"Content-Length: {size}\r\n\r\n"
    ).encode() + b"z" * size
    (response,) = _raw_exchange(sidecar, request)
    assert response.startswith(b"HTTP/1.1 400 ")
    assert b"\r\nConnection: close\r\n" in response
    small = (
        f"POST /var?aid={action.aid}&scope=instance&key=1bad HTTP/1.1\r\nHost: x\r\n"
        "Content-Length: 10\r\n\r\n0123456789"
    ).encode()
    first, second = _raw_exchange(sidecar, small + small, responses=2)
    assert b"Connection: close" not in first
    assert second.startswith(b"HTTP/1.1 400 ")


def test_expect_100_continue_is_answered_when_the_body_is_read(
    sidecar: Sidecar, action: ActionContext
) -> None:
    head = (
        f"POST /var?aid={action.aid}&scope=instance&key=k HTTP/1.1\r\nHost: x\r\n"
        "Content-Length: 2\r\nExpect: 100-continue\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", sidecar.port), timeout=TIMEOUT) as sock:
        sock.sendall(head)
        reader = sock.makefile("rb")
        assert reader.readline() == b"HTTP/1.1 100 Continue\r\n"
        assert reader.readline() == b"\r\n"
        sock.sendall(b"ok")
        assert reader.readline().startswith(b"HTTP/1.1 200 ")
    assert [w.data for w in action.writes] == [b"ok"]


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("Content-Length: abc\r\n\r\n", b"HTTP/1.1 400 "),
        ("Transfer-Encoding: chunked\r\n\r\nzz\r\n", b"HTTP/1.1 400 "),
    ],
)
def test_malformed_bodies_are_400(
    sidecar: Sidecar, action: ActionContext, extra: str, expected: bytes
) -> None:
    request = (
        f"POST /var?aid={action.aid}&scope=instance&key=k HTTP/1.1\r\nHost: x\r\n{extra}"
    ).encode()
    (response,) = _raw_exchange(sidecar, request)
    assert response.startswith(expected)
    assert action.writes == ()


# ---------------------------------------------------------------------------- addresses, lifecycle


@pytest.mark.parametrize("host", ["0.0.0.0", "10.1.2.3", "::", "example.com", ""])
def test_non_loopback_hosts_are_refused(host: str) -> None:
    with pytest.raises(SidecarAddressError) as caught:
        Sidecar(host=host, port=0)
    assert str(caught.value) == (
        f"refusing to bind the sidecar to {host!r}: it serves variables without "
        "authentication; use 127.0.0.1 or pass allow_remote=True"
    )


def test_remote_hosts_need_the_explicit_opt_in() -> None:
    sidecar = Sidecar(host="0.0.0.0", port=0, allow_remote=True)  # constructed, never started
    assert sidecar.url == "http://0.0.0.0:0"
    assert Sidecar(host="localhost", port=0).host == "localhost"
    assert Sidecar(host="::1", port=0).url == "http://[::1]:0"


@pytest.mark.parametrize("port", [-1, 65536, "8889"])
def test_invalid_ports_are_refused(port: object) -> None:
    with pytest.raises(ValueError, match=r"^invalid port .*: use 0-65535 \(0 picks a free port\)$"):
        Sidecar(port=port)  # type: ignore[arg-type]


def test_a_taken_port_is_reported_clearly(running: Sidecar) -> None:
    with pytest.raises(PortInUseError) as caught:
        Sidecar(port=running.port).start()
    # The holder is this very process (the running sidecar): the message says which one.
    assert str(caught.value) == (
        f"cannot listen on 127.0.0.1:{running.port} (held by pid {os.getpid()} "
        f"({_command_line()})): stop what uses that port or pass port=0 for a free one"
    )


def _command_line() -> str:
    raw = Path(f"/proc/{os.getpid()}/cmdline").read_bytes()
    return raw.replace(b"\0", b" ").decode("utf-8", "replace").strip()[:120]


def test_stop_closes_idle_connections_and_refuses_new_ones() -> None:
    sidecar = Sidecar(port=0).start()
    assert repr(sidecar) == f"Sidecar('http://127.0.0.1:{sidecar.port}', running)"
    idle = socket.create_connection(("127.0.0.1", sidecar.port), timeout=TIMEOUT)
    with idle:
        idle.sendall(b"GET /var HTTP/1.1\r\nHost: x\r\n\r\n")
        reader = idle.makefile("rb")
        response = reader.read1(65536)
        assert response.startswith(b"HTTP/1.1 404 ")
        assert response.endswith(b"actionId  not found\n")  # kept alive: no EOF yet
        sidecar.stop()
        assert repr(sidecar) == f"Sidecar('http://127.0.0.1:{sidecar.port}', stopped)"
        assert reader.read(1) == b""  # the server closed the idle connection
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", sidecar.port), timeout=TIMEOUT).close()
    sidecar.stop()  # stopping twice is fine


def test_a_stopped_sidecar_can_start_again_and_still_works_in_process() -> None:
    store = open_store("memory://")
    sidecar = Sidecar(port=0)
    with sidecar:
        first = sidecar.port
    with sidecar.action(store) as action:
        transport = httpx.WSGITransport(app=sidecar)
        with httpx.Client(transport=transport, base_url="http://sidecar") as http:
            assert http.post("/var", params=_var(action.aid), content=b"1").status_code == 200
    with sidecar:
        assert sidecar.port == first
        with httpx.Client(base_url=sidecar.url, timeout=TIMEOUT, trust_env=False) as http:
            assert http.get("/var", params=_var("gone")).status_code == 404


def test_shared_reuses_a_running_sidecar_on_that_address(running: Sidecar) -> None:
    assert Sidecar.shared(port=running.port) is running
