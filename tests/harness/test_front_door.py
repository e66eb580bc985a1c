"""The front door: every process of the user listens on the port and routes by ``aid``."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from door_support import free_port

from direktiv_sdk import open_store
from harness import FrontDoor, Sidecar, front_door_port
from harness.sidecar._routes import describe_holder

PROCESS = Path(__file__).with_name("suite") / "door_process.py"
TIMEOUT = 30.0


class Door:
    """Another process with one action ``aid`` behind the front door on ``port``."""

    def __init__(self, port: int, aid: str) -> None:
        self.aid = aid
        self.process = subprocess.Popen(
            [sys.executable, str(PROCESS), str(port), aid],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self.ready = self.process.stdout.readline()

    def exit(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("exit\n")
        self.process.stdin.close()
        self.process.wait(timeout=TIMEOUT)
        assert self.process.stdout is not None
        self.process.stdout.close()


@pytest.fixture
def port() -> Iterator[int]:
    port = free_port()
    yield port
    door = FrontDoor._doors.get(("127.0.0.1", port))
    if door is not None:
        door.close()


def _who(port: int, aid: str) -> httpx.Response:
    params = {"aid": aid, "scope": "instance", "key": "who"}
    return httpx.get(f"http://localhost:{port}/var", params=params, timeout=TIMEOUT)


def test_requests_reach_the_sidecar_of_their_action_in_any_process(port: int) -> None:
    doors = [Door(port, f"proc-{n}") for n in range(3)]
    try:
        assert [door.ready for door in doors] == ["ready None\n"] * 3
        for door in doors:  # whichever process accepts the connection
            for _ in range(5):
                assert _who(port, door.aid).content == door.aid.encode()
        answer = _who(port, "nobody")
        assert (answer.status_code, answer.text) == (404, "actionId nobody not found\n")
    finally:
        for door in doors:
            door.exit()


def test_when_a_process_exits_the_others_stay_reachable(port: int) -> None:
    first, second = Door(port, "first"), Door(port, "second")
    try:
        first.exit()
        # New connections go to the processes still listening: no hand-over to wait for.
        for _ in range(20):
            assert _who(port, "second").content == b"second"
        assert _who(port, "first").status_code == 404
    finally:
        second.exit()


def test_processes_started_at_once_all_get_routed(port: int) -> None:
    doors = [Door(port, f"race-{n}") for n in range(6)]  # started together, bind in a race
    try:
        assert {door.ready for door in doors} == {"ready None\n"}
        assert all(_who(port, door.aid).content == door.aid.encode() for door in doors)
    finally:
        for door in doors:
            door.exit()


def test_a_large_body_and_a_chunked_body_go_through(port: int) -> None:
    store = open_store("memory://")
    sidecar = Sidecar(front_door=port)
    other = Door(port, "other")
    try:
        with sidecar.action(store) as action:
            data = os.urandom(3 << 20)
            params = {"aid": action.aid, "scope": "workflow", "key": "big"}
            with httpx.Client(base_url=f"http://localhost:{port}", timeout=TIMEOUT) as http:
                assert http.post("/var", params=params, content=data).status_code == 200
                assert http.get("/var", params=params).content == data
                chunks = iter([b"a" * 1000, b"b" * 1000])
                assert http.post("/var", params=params, content=chunks).status_code == 200
                assert http.get("/var", params=params).content == b"a" * 1000 + b"b" * 1000
    finally:
        other.exit()
        sidecar.stop()


def test_a_port_held_by_another_program_is_named(port: int) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", port))
        blocker.listen()
        sidecar = Sidecar(front_door=port)
        try:
            with sidecar.action(open_store("memory://")):
                assert sidecar.front_door is not None
                problem = sidecar.front_door.problem
        finally:
            sidecar.stop()
    assert problem is not None
    assert problem.startswith(f"127.0.0.1:{port} is held by pid {os.getpid()} (")
    assert problem.endswith(
        f"so functions that hard-code http://localhost:{port} cannot reach the sidecar; "
        "choose another port with --direktiv-sidecar-port N (pytest), --sidecar-port N "
        "(direktiv-sdk run) or $DIREKTIV_SIDECAR_PORT=N, or stop that program"
    )


def test_the_front_door_identifies_itself(port: int) -> None:
    sidecar = Sidecar(front_door=port)
    try:
        with sidecar.action(open_store("memory://")):
            holder = describe_holder("127.0.0.1", port)
    finally:
        sidecar.stop()
    assert holder.ours
    assert holder.pid == os.getpid()


@pytest.mark.parametrize(
    ("value", "port"), [(None, 8889), ("9000", 9000), ("0", None), ("off", None), (1234, 1234)]
)
def test_front_door_port_values(
    monkeypatch: pytest.MonkeyPatch, value: object, port: int | None
) -> None:
    monkeypatch.delenv("DIREKTIV_SIDECAR_PORT", raising=False)
    assert front_door_port(value) == port


def test_front_door_port_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIREKTIV_SIDECAR_PORT", "7777")
    assert front_door_port() == 7777
    monkeypatch.setenv("DIREKTIV_SIDECAR_PORT", "nope")
    with pytest.raises(ValueError, match=r"^invalid \$DIREKTIV_SIDECAR_PORT 'nope': use 1-65535"):
        front_door_port()


def test_a_forked_child_does_not_keep_the_port(port: int) -> None:
    sidecar = Sidecar(front_door=port)
    with sidecar.action(open_store("memory://")):
        pid = os.fork()
        if pid == 0:  # the child: the parent's listener must be closed here
            door = FrontDoor._doors.get(("127.0.0.1", port))
            os._exit(0 if door is None or not door.owner else 1)
        _, status = os.waitpid(pid, 0)
    sidecar.stop()
    assert os.waitstatus_to_exitcode(status) == 0
