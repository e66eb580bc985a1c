"""The sidecar under load and odd HTTP: many clients, slow clients, ambiguous framing."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import BinaryIO

import pytest

from direktiv_sdk import open_store
from direktiv_sdk.store import Scope, VariableStore
from harness.sidecar import ActionContext, Sidecar

TIMEOUT = 30.0
CLIENTS = 1000


@pytest.fixture(scope="module")
def sidecar() -> Iterator[Sidecar]:
    with Sidecar(port=0) as running:
        yield running


@pytest.fixture
def store() -> VariableStore:
    return open_store("memory://")


@pytest.fixture
def action(sidecar: Sidecar, store: VariableStore) -> Iterator[ActionContext]:
    with sidecar.action(store) as context:
        yield context
    sidecar.check()


def _read_response(file: BinaryIO) -> tuple[bytes, bytes]:
    """Return (status line, body) of one response read from the socket file ``file``."""
    status = file.readline()
    length = 0
    while (line := file.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode().partition(":")
        if name.lower() == "content-length":
            length = int(value)
    return status, file.read(length)


def _exchange(port: int, data: bytes) -> bytes:
    """Send ``data``, half-close, and return everything the server answers."""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        out = b""
        while chunk := sock.recv(65536):
            out += chunk
    return out


def _var(action: ActionContext, key: str, method: str = "POST") -> bytes:
    query = f"aid={action.aid}&scope=instance&key={key}"
    return f"{method} /var?{query} HTTP/1.1\r\nHost: x\r\n".encode()


def test_a_thousand_concurrent_clients_all_succeed(sidecar: Sidecar, action: ActionContext) -> None:
    results: list[object] = [None] * CLIENTS
    barrier = threading.Barrier(CLIENTS, timeout=TIMEOUT)

    def client(index: int) -> None:
        body = f"value-{index}".encode()
        try:
            with socket.create_connection(("127.0.0.1", sidecar.port), timeout=TIMEOUT) as sock:
                barrier.wait()
                head = _var(action, f"k{index}") + b"Content-Length: %d\r\n\r\n" % len(body)
                sock.sendall(head + body)
                file = sock.makefile("rb")
                posted, _ = _read_response(file)
                sock.sendall(_var(action, f"k{index}", "GET") + b"\r\n")
                got, data = _read_response(file)
            results[index] = (posted.split()[1], got.split()[1], data == body)
        except Exception as exc:  # recorded and asserted below
            results[index] = exc

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(2 * TIMEOUT)
    failed = [r for r in results if r != (b"200", b"200", True)]
    assert not failed, f"{len(failed)} of {CLIENTS} round trips failed, e.g. {failed[:3]}"


def test_slow_clients_do_not_take_a_thread_each(sidecar: Sidecar, action: ActionContext) -> None:
    before = threading.active_count()
    address = ("127.0.0.1", sidecar.port)
    slow = [socket.create_connection(address, timeout=TIMEOUT) for _ in range(300)]
    try:
        for sock in slow:
            sock.sendall(b"GET /var?aid=")  # a head that never ends (slowloris)
        # A normal client is still served at once.
        answer = _exchange(sidecar.port, _var(action, "x", "GET") + b"\r\n")
        assert answer.startswith(b"HTTP/1.1 404")
        assert threading.active_count() - before < 40
    finally:
        for sock in slow:
            sock.close()


def test_content_length_with_transfer_encoding_is_400_and_stores_nothing(
    sidecar: Sidecar, action: ActionContext
) -> None:
    request = (
        _var(action, "x")
        + b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
    )
    answer = _exchange(sidecar.port, request)
    assert answer.startswith(b"HTTP/1.1 400 both Content-Length and Transfer-Encoding are set")
    assert answer.count(b"HTTP/1.1") == 1  # the rest is not read as another request
    assert action.store.get(action.ref(Scope.INSTANCE, "x")) is None


@pytest.mark.parametrize(
    ("coding", "status"),
    [(b"gzip, chunked", b"501"), (b"chunked, gzip", b"400"), (b"identity", b"400")],
)
def test_transfer_codings_other_than_chunked_are_refused(
    sidecar: Sidecar, action: ActionContext, coding: bytes, status: bytes
) -> None:
    framing = b"Transfer-Encoding: " + coding + b"\r\n\r\n"
    request = _var(action, "x") + framing + b"5\r\nhello\r\n0\r\n\r\n"
    answer = _exchange(sidecar.port, request)
    assert answer.split(b" ", 2)[1] == status
    assert action.store.get(action.ref(Scope.INSTANCE, "x")) is None


def test_bytes_after_the_body_are_the_next_request(sidecar: Sidecar, action: ActionContext) -> None:
    request = (
        _var(action, "x")
        + b"Content-Length: 3\r\n\r\nabc"
        + _var(action, "y")
        + b"Content-Length: 2\r\n\r\nzz"
        + b"NOT-HTTP\r\n\r\n"
    )
    answer = _exchange(sidecar.port, request)
    assert [line for line in answer.split(b"\r\n") if line.startswith(b"HTTP/1.1")] == [
        b"HTTP/1.1 200 OK",
        b"HTTP/1.1 200 OK",
    ]
    assert b"Bad request syntax ('NOT-HTTP')" in answer  # parsed, and refused
    assert action.store.get(action.ref(Scope.INSTANCE, "x")).data == b"abc"  # type: ignore[union-attr]
    assert action.store.get(action.ref(Scope.INSTANCE, "y")).data == b"zz"  # type: ignore[union-attr]


@pytest.mark.parametrize("length", [b"\xef\xbc\x95", b"+5", b"5, 6", b"-1"])
def test_malformed_content_length_is_400(
    sidecar: Sidecar, action: ActionContext, length: bytes
) -> None:
    request = _var(action, "x") + b"Content-Length: " + length + b"\r\n\r\nhello"
    assert _exchange(sidecar.port, request).startswith(b"HTTP/1.1 400 invalid Content-Length")
    assert action.store.get(action.ref(Scope.INSTANCE, "x")) is None
