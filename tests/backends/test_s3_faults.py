"""The S3 store under faults: concurrent processes, failing servers, torn responses."""

from __future__ import annotations

import multiprocessing
import os
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from backends.s3 import S3Store
from direktiv_sdk import Owner, StoreError, open_store
from direktiv_sdk.errors import PreconditionFailedError
from direktiv_sdk.store import VariableStore

NS = Owner.for_namespace("ns")
COUNTER = NS.ref("counter")
_JOIN_TIMEOUT = 180.0
_SERVER_TIMEOUT = 10.0
_NO_RETRIES = {"retries": {"total_max_attempts": 1}, "connect_timeout": 5, "read_timeout": 5}


def _increment_many(url: str, env: dict[str, str], count: int, start: object) -> None:
    """Add 1 to the counter ``count`` times with update(): runs in a spawned process."""
    os.environ.update(env)
    start.wait(_JOIN_TIMEOUT)  # type: ignore[attr-defined]
    with open_store(url) as store:
        for _ in range(count):
            store.update(COUNTER, lambda data: str(int(data or b"0") + 1).encode())


@pytest.mark.slow
def test_four_processes_never_lose_an_increment(s3_store_url: str) -> None:
    env = {k: v for k, v in os.environ.items() if k.startswith("AWS_")}
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(4)
    workers = [
        context.Process(target=_increment_many, args=(s3_store_url, env, 50, start))
        for _ in range(4)
    ]
    for worker in workers:
        worker.start()
    try:
        for worker in workers:
            worker.join(_JOIN_TIMEOUT)
        assert all(not w.is_alive() for w in workers), f"a worker ran past {_JOIN_TIMEOUT}s"
        assert [w.exitcode for w in workers] == [0, 0, 0, 0]
    finally:
        for worker in workers:
            if worker.is_alive():
                worker.kill()
                worker.join(_JOIN_TIMEOUT)
    with open_store(s3_store_url) as store:
        got = store.get(COUNTER)
    assert got is not None
    assert got.data == b"200"


# --------------------------------------------------------------------------- failing servers


class _Answer(BaseHTTPRequestHandler):
    """Answer every request with the server's canned status, headers and body."""

    # HTTP/1.1 so that the handler answers botocore's "Expect: 100-continue" on PUT.
    protocol_version = "HTTP/1.1"
    server: _CannedServer

    def _answer(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.methods.append(self.command)
        status, headers, body = self.server.answer
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_PUT = do_HEAD = do_DELETE = do_POST = _answer  # noqa: N815 - http.server's names

    def log_message(self, format: str, *args: object) -> None:
        pass


class _CannedServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, answer: tuple[int, dict[str, str], bytes]) -> None:
        super().__init__(("127.0.0.1", 0), _Answer)
        self.answer = answer
        self.methods: list[str] = []

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"


@contextmanager
def _canned_server(status: int, headers: dict[str, str], body: bytes) -> Iterator[_CannedServer]:
    server = _CannedServer((status, headers, body))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(_SERVER_TIMEOUT)


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)


_SLOW_DOWN = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate.</Message></Error>"
)

_OPERATIONS: list[tuple[str, Callable[[VariableStore], object], object]] = [
    ("get", lambda s: s.get(COUNTER), COUNTER),
    ("open", lambda s: s.open(COUNTER), COUNTER),
    ("set", lambda s: s.set(COUNTER, b"1"), COUNTER),
    ("delete", lambda s: s.delete(COUNTER), COUNTER),
    ("list", lambda s: s.list(NS), NS),
]


@pytest.mark.usefixtures("aws_env")
@pytest.mark.parametrize(
    "failure",
    [
        (500, b"", "HTTP 500 (Internal Server Error)"),
        (503, _SLOW_DOWN, "HTTP 503 SlowDown (Please reduce your request rate.)"),
    ],
    ids=["500", "503-slowdown"],
)
@pytest.mark.parametrize("operation", _OPERATIONS, ids=[o[0] for o in _OPERATIONS])
def test_server_errors_surface_as_store_errors(
    failure: tuple[int, bytes, str],
    operation: tuple[str, Callable[[VariableStore], object], object],
) -> None:
    status, body, answer = failure
    action, call, target = operation
    if action == "delete":  # it starts with a HEAD, and a HEAD's error has no body
        answer = f"HTTP {status} ({HTTPStatus(status).phrase})"
    headers = {"Content-Type": "application/xml", "Content-Length": str(len(body))}
    with (
        _canned_server(status, headers, body) as server,
        open_store("s3://bucket/p", endpoint_url=server.url, config_kwargs=_NO_RETRIES) as store,
    ):
        with pytest.raises(StoreError) as info:
            call(store)
        assert len(server.methods) == 1
    assert str(info.value) == f"cannot {action} {target} in 's3://bucket/p': S3 answered {answer}"
    assert isinstance(info.value.__cause__, ClientError)


@pytest.mark.usefixtures("aws_env")
def test_retries_are_bounded_by_the_client_config() -> None:
    headers = {"Content-Length": "0"}
    with (
        _canned_server(503, headers, b"") as server,
        open_store(
            "s3://bucket/p",
            endpoint_url=server.url,
            config_kwargs={"retries": {"total_max_attempts": 3, "mode": "legacy"}},
        ) as store,
    ):
        with pytest.raises(StoreError) as info:
            store.get(COUNTER)
        assert server.methods == ["GET", "GET", "GET"]
    assert str(info.value) == (
        f"cannot get {COUNTER} in 's3://bucket/p': S3 answered HTTP 503 (Service Unavailable)"
    )


@pytest.mark.usefixtures("aws_env")
def test_unreachable_endpoint() -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nobody listens on it
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    with (
        open_store("s3://bucket/p", endpoint_url=url, config_kwargs=_NO_RETRIES) as store,
        pytest.raises(StoreError) as info,
    ):
        store.get(COUNTER)
    assert str(info.value) == (
        f"cannot get {COUNTER} in 's3://bucket/p': EndpointConnectionError: Could not connect "
        f'to the endpoint URL: "{url}/bucket/p/ns/namespace/counter"'
    )
    assert isinstance(info.value.__cause__, EndpointConnectionError)


@pytest.mark.usefixtures("aws_env")
def test_response_torn_mid_body_fails_the_read() -> None:
    headers = {
        "Content-Length": "1000",
        "ETag": '"0123456789abcdef0123456789abcdef"',
        "Last-Modified": "Sun, 01 Mar 2026 10:00:00 GMT",
    }
    with (
        _canned_server(200, headers, b"only ten b") as server,
        open_store("s3://bucket/p", endpoint_url=server.url, config_kwargs=_NO_RETRIES) as store,
    ):
        reader = store.open(COUNTER)
        assert reader is not None
        assert reader.meta.size == 1000
        with reader, pytest.raises(StoreError) as info:
            reader.read()
        with pytest.raises(StoreError) as got:
            store.get(COUNTER)
    assert str(info.value).startswith(f"cannot read {COUNTER} in 's3://bucket/p': ")
    assert str(got.value).startswith(f"cannot get {COUNTER} in 's3://bucket/p': ")
    assert info.value.__cause__ is not None


def test_concurrent_compare_and_set_has_exactly_one_winner(s3_store: S3Store) -> None:
    """The guarantee update() rests on: of writers holding one version, exactly one wins."""
    writers = 8
    for round_ in range(10):
        version = s3_store.set(COUNTER, f"base-{round_}".encode()).version
        start = threading.Barrier(writers, timeout=_SERVER_TIMEOUT)
        outcomes: list[str] = []

        def write(
            index: int,
            version: str = version,
            start: threading.Barrier = start,
            outcomes: list[str] = outcomes,
        ) -> None:
            start.wait()
            try:
                s3_store.set(COUNTER, f"w{index}".encode(), if_version=version)
                outcomes.append("won")
            except PreconditionFailedError:
                outcomes.append("lost")

        threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(_JOIN_TIMEOUT)
        assert sorted(outcomes) == ["lost"] * (writers - 1) + ["won"], outcomes
