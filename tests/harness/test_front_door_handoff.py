"""A front door process that exits while others call the port loses no connection.

It hands its listening sockets (and idle connections) to a live peer over a Unix socket
(``harness/sidecar/_handoff.py``); with no peer it drains and closes.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import queue
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
from door_support import free_port, private_network, until

from direktiv_sdk import open_store
from harness import FrontDoor, Sidecar
from harness.sidecar import _handoff
from harness.sidecar._routes import PROBE_PATH, RouteBook

SUITE = Path(__file__).with_name("suite")
TIMEOUT = 60.0

pytestmark = pytest.mark.skipif(
    not _handoff.SUPPORTED, reason="no SO_REUSEPORT or descriptor passing here (Windows)"
)


@pytest.fixture
def port() -> Iterator[int]:
    port = free_port()
    yield port
    door = FrontDoor._doors.get(("127.0.0.1", port))
    if door is not None:
        door.close()


class Child:
    """A helper script of ``suite/`` in its own process, driven through stdin (all bounded)."""

    def __init__(self, *command: object) -> None:
        self.process = subprocess.Popen(
            list(map(str, command)),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._lines: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        with self.process.stdout:
            for line in self.process.stdout:
                self._lines.put(line.strip())
        self._lines.put(None)

    def line(self) -> str | None:
        """Return the next line it prints (``None`` at its end)."""
        return self._lines.get(timeout=TIMEOUT)

    def send(self, command: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(f"{command}\n")
        self.process.stdin.flush()

    def finish(self, command: str = "") -> list[str]:
        """Send the last command, wait for the exit; return the lines printed since."""
        assert self.process.stdin is not None
        if self.process.poll() is None:
            with contextlib.suppress(BrokenPipeError):
                self.send(command)
                self.process.stdin.close()
        try:
            self.process.wait(TIMEOUT)
        finally:
            self.kill()
        assert self.process.returncode == 0
        return list(iter(self.line, None))

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(TIMEOUT)
        if self.process.stdin is not None:
            with contextlib.suppress(BrokenPipeError):
                self.process.stdin.close()


@pytest.fixture
def spawn() -> Iterator[Callable[..., Child]]:
    """Start helper processes; whatever a failed test leaves running is killed."""
    children: list[Child] = []

    def start(script: str, *args: object, prefix: Sequence[str] = ()) -> Child:
        children.append(Child(*prefix, sys.executable, SUITE / script, *args))
        return children[-1]

    yield start
    for child in children:
        child.kill()


def test_requests_keep_their_answers_while_front_door_processes_exit(
    port: int, spawn: Callable[..., Child]
) -> None:
    caller = spawn("door_caller.py", port, "caller", 8)
    doors = [spawn("door_process.py", port, f"exiting-{n}") for n in range(3)]
    assert [door.line() for door in doors] == ["ready None"] * 3
    assert caller.line() == "ready"
    assert caller.line() == "running"  # traffic spreads over all four listeners now
    for door in doors:  # one after the other, each under the caller's traffic
        assert door.finish("exit") == []
    [last] = caller.finish("stop")
    summary = json.loads(last)
    total = summary["ok"] + summary["failed"]
    assert summary["ok"] > 0
    assert summary["failed"] == 0, f"{summary['failed']} of {total} failed: {summary['errors']}"


def _folder(port: int) -> Path:
    return _handoff.folder_of(RouteBook.for_port(port).folder)


def _listener(port: int) -> socket.socket:
    """A listening socket on the front door port, as a front door process has one."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(16)
    return sock


def _probe(sock: socket.socket) -> tuple[int, str | None]:
    """Ask the front door on ``sock`` who it is; return its pid and Connection header."""
    sock.sendall(f"GET {PROBE_PATH} HTTP/1.1\r\nHost: front-door\r\n\r\n".encode())
    response = http.client.HTTPResponse(sock)
    response.begin()
    assert response.status == 200
    return int(json.loads(response.read())["pid"]), response.getheader("Connection")


def test_a_handed_over_listener_keeps_the_connection_queued_on_it(
    port: int, spawn: Callable[..., Child]
) -> None:
    listener = _listener(port)
    # Nobody accepts on it, and it is the port's only listener: the kernel queues this here.
    client = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    door = spawn("door_process.py", port, "taker")
    with listener, client:
        assert door.line() == "ready None"
        with next(_handoff.peers(_folder(port))) as peer:
            assert peer.pid == door.process.pid
            assert peer.give(_handoff.LISTENER, [listener.fileno()]) == (1, 0)
        listener.close()  # the socket lives on in the other process
        assert _probe(client) == (door.process.pid, None)
    door.finish("exit")


@pytest.mark.parametrize("kept", [False, True], ids=["fresh", "kept-alive"])
def test_an_exiting_process_hands_over_its_idle_connections(
    port: int, spawn: Callable[..., Child], kept: bool
) -> None:
    leaving = spawn("door_process.py", port, "leaving")
    assert leaving.line() == "ready None"
    # The only listener is the leaving process's: it accepts this (or still has it queued).
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as client:
        if kept:  # answered once, then idle
            assert _probe(client) == (leaving.process.pid, None)
        staying = spawn("door_process.py", port, "staying")
        assert staying.line() == "ready None"
        leaving.finish("exit")
        assert _probe(client) == (staying.process.pid, None)
    staying.finish("exit")


def test_without_a_peer_an_exiting_process_drains_then_frees_the_port(
    port: int, spawn: Callable[..., Child]
) -> None:
    door = spawn("door_process.py", port, "alone")
    assert door.line() == "ready None"
    path = _folder(port) / f"{door.process.pid}.sock"
    assert path.exists()
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as accepted:
        door.send("exit")
        until(lambda: not path.exists(), TIMEOUT)  # it is leaving, and no process can take the port
        # Accepted before, its request sent after: answered all the same, as the last one.
        assert _probe(accepted) == (door.process.pid, "close")
        door.finish()
    with socket.socket() as plain:  # no listener is left behind: this one binds alone
        plain.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past TIME_WAIT, not LISTEN
        plain.bind(("127.0.0.1", port))
        plain.listen()


def test_stale_paths_are_removed_and_live_peers_found(
    port: int, spawn: Callable[..., Child]
) -> None:
    folder = _folder(port)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait(TIMEOUT)
    stale = folder / f"{ended.pid}.sock"
    with socket.socket(socket.AF_UNIX) as gone:  # its process ended without removing it
        gone.bind(str(stale))
    half = folder / f".{ended.pid}.sock.tmp"
    half.touch()
    door = spawn("door_process.py", port, "live")
    assert door.line() == "ready None"
    found = list(_handoff.peers(folder))
    for peer in found:
        peer.close()
    assert [peer.pid for peer in found] == [door.process.pid]
    assert not stale.exists()
    assert not half.exists()
    door.finish("exit")
    assert list(_handoff.peers(folder)) == []
    assert os.listdir(folder) == []


def _taking(answer: bool) -> tuple[_handoff.Take, list[tuple[bytes, list[socket.socket]]]]:
    taken: list[tuple[bytes, list[socket.socket]]] = []

    def take(kind: bytes, socks: list[socket.socket]) -> bool:
        if answer:
            taken.append((kind, socks))
        return answer

    return take, taken


@pytest.mark.parametrize("answer", [True, False])
def test_a_receiver_takes_only_sockets_of_its_port_and_kind(port: int, answer: bool) -> None:
    take, taken = _taking(answer)
    receiver = _handoff.Receiver.open(_folder(port), ("127.0.0.1", port), take)
    assert receiver is not None
    listener, other, elsewhere = _listener(port), socket.socket(), socket.socket()
    other.bind(("127.0.0.1", 0))
    other.listen()
    elsewhere.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    elsewhere.bind(("127.0.0.2", port))  # the port, another address
    elsewhere.listen()
    try:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(TIMEOUT)
            sock.connect(str(receiver.path))
            peer = _handoff.Peer(sock, os.getpid())
            assert peer.give(_handoff.CONNECTION, [listener.fileno()]) == (0, 0)  # listening
            assert peer.give(_handoff.LISTENER, [other.fileno()]) == (0, 0)  # another port
            assert peer.give(_handoff.LISTENER, [elsewhere.fileno()]) == (0, 0)
            assert peer.give(_handoff.LISTENER, [listener.fileno()]) == (int(answer), 0)
    finally:
        receiver.close()
        for sock in (listener, other, elsewhere):
            sock.close()
    assert not receiver.path.exists()
    if answer:
        [(kind, [received])] = taken
        assert kind == _handoff.LISTENER
        assert received.getsockname() == ("127.0.0.1", port)
        received.close()


def test_a_process_takes_over_a_bounded_number_of_listeners(port: int) -> None:
    sidecar = Sidecar(front_door=port)
    with sidecar.action(open_store("memory://")):
        door = sidecar.front_door
        assert door is not None
        assert door.owner
        path = _folder(port) / f"{os.getpid()}.sock"
        listeners = [_listener(port) for _ in range(70)]
        try:
            with socket.socket(socket.AF_UNIX) as sock:
                sock.settimeout(TIMEOUT)
                sock.connect(str(path))
                peer = _handoff.Peer(sock, os.getpid())
                # Its own listener and 63 more: 64. The seven others stay with their owner.
                fds = [listener.fileno() for listener in listeners]
                assert peer.give(_handoff.LISTENER, fds[:63]) == (63, 0)
                assert peer.give(_handoff.LISTENER, fds[63:]) == (0, 0)
        finally:
            for listener in listeners:
                listener.close()
    sidecar.stop()


def test_a_listener_never_goes_to_another_network_namespace(
    port: int, spawn: Callable[..., Child]
) -> None:
    # Same route folder, another loopback: its connections would reach sidecars we cannot.
    prefix = private_network()
    if not prefix:
        pytest.skip("unshare -rn does not work here: no private network namespace")
    here = spawn("door_process.py", port, "here")
    assert here.line() == "ready None"
    there = spawn("door_process.py", port, "there", prefix=prefix)
    assert there.line() == "ready None"
    assert there.finish("exit") == []
    here.send("listeners")
    assert here.line() == "listeners 1"
    here.finish("exit")
