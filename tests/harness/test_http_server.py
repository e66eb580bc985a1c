"""The sidecar's HTTP server when it leaves: draining, finishing, giving sockets away, adopting."""

from __future__ import annotations

import http.client
import socket
import threading
from collections.abc import Callable, Iterable, Iterator

import pytest
from door_support import until

from harness.sidecar._http import WSGIServer

TIMEOUT = 10.0


def _app(name: bytes) -> Callable[..., Iterable[bytes]]:
    def app(environ: dict[str, object], start_response: Callable[..., object]) -> list[bytes]:
        start_response("200 OK", [("Content-Length", str(len(name)))])
        return [name]

    return app


def _ignore(error: BaseException) -> None:
    """Errors are the test's to find in the answers."""


@pytest.fixture
def servers() -> Iterator[Callable[[bytes], WSGIServer]]:
    started: list[WSGIServer] = []

    def start(name: bytes) -> WSGIServer:
        server = WSGIServer("127.0.0.1", 0, _app(name), _ignore)
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def _connect(server: WSGIServer) -> socket.socket:
    return socket.create_connection(server.server_address, timeout=TIMEOUT)


def _answer(sock: socket.socket) -> tuple[int, str | None, bytes]:
    response = http.client.HTTPResponse(sock)
    response.begin()
    return response.status, response.getheader("Connection"), response.read()


def _ask(sock: socket.socket) -> tuple[int, str | None, bytes]:
    """Send one request on ``sock``; return the status, the Connection header and the body."""
    sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    return _answer(sock)


def test_a_draining_server_answers_with_connection_close(
    servers: Callable[[bytes], WSGIServer],
) -> None:
    server = servers(b"a")
    with _connect(server) as sock:
        assert _ask(sock) == (200, None, b"a")  # kept alive
        server.draining = True
        assert _ask(sock) == (200, "close", b"a")
        assert sock.recv(1) == b""  # and closed


def test_finish_serves_a_connection_that_has_not_sent_its_request_yet(
    servers: Callable[[bytes], WSGIServer],
) -> None:
    server = servers(b"a")
    with _connect(server) as fresh, _connect(server) as idle:
        assert _ask(idle) == (200, None, b"a")  # an idle keep-alive connection now
        until(lambda: server.open_connections == 2, TIMEOUT)
        finished: list[bool] = []
        finishing = threading.Thread(target=lambda: finished.append(server.finish(TIMEOUT)))
        finishing.start()
        assert idle.recv(1) == b""  # the client of an idle connection expects it may close
        assert _ask(fresh) == (200, "close", b"a")
        finishing.join(TIMEOUT)
    assert finished == [True]
    assert server.open_connections == 0


def test_a_paused_listener_adopted_by_another_server_keeps_its_queued_connection(
    servers: Callable[[bytes], WSGIServer],
) -> None:
    first, second = servers(b"first"), servers(b"second")
    listeners = first.pause_accepting()
    assert listeners == [first.socket]
    with _connect(first) as queued:  # first no longer accepts: it waits in the backlog
        queued.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        twin = listeners[0].dup()  # what another process would receive
        second.adopt(listeners=[twin])
        first.release_listeners(listeners)
        assert _answer(queued) == (200, None, b"second")
    with _connect(first) as later:  # the port stays served, by the second server
        assert _ask(later) == (200, None, b"second")


def test_idle_connections_move_to_another_server(servers: Callable[[bytes], WSGIServer]) -> None:
    first, second = servers(b"first"), servers(b"second")
    with _connect(first) as client:
        assert _ask(client) == (200, None, b"first")
        idle: list[socket.socket] = []

        def detached() -> bool:  # once the worker has handed the connection back
            assert first.detach_idle(served=False) == []  # it has answered a request
            idle.extend(first.detach_idle(served=True))
            return bool(idle)

        until(detached, TIMEOUT)
        assert len(idle) == 1
        assert first.open_connections == 0
        second.adopt(connections=[idle[0].dup()], served=True)
        idle[0].close()
        assert second.open_connections == 1
        assert _ask(client) == (200, None, b"second")


def test_resume_accepting_after_a_pause(servers: Callable[[bytes], WSGIServer]) -> None:
    server = servers(b"a")
    assert server.pause_accepting() == [server.socket]
    with _connect(server) as queued:
        server.resume_accepting()
        assert _ask(queued) == (200, None, b"a")
