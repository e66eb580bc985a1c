"""CloudEvents in the CLI: ``run --event``, ``events send``, and Ctrl-C / SIGTERM during a run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from direktiv_sdk.cli import main

WAIT = """\
states:
- id: wait
  type: consumeEvent
  timeout: PT1M
  event: {type: greeting}
  transform: 'jq({who: .greeting.who})'
"""


def _event(kind: str, **attributes: object) -> str:
    return json.dumps(
        {"specversion": "1.0", "id": kind, "source": "cli", "type": kind, **attributes}
    )


def test_run_delivers_events_once_the_flow_waits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "flow.yaml").write_text(WAIT)
    (tmp_path / "events.jsonl").write_text(_event("other") + "\n" + _event("greeting", who="ann"))
    flow, events = str(tmp_path / "flow.yaml"), str(tmp_path / "events.jsonl")
    assert main(["run", flow, "--store", "memory://", "--event", events]) == 0
    assert capsys.readouterr().out == '{"who":"ann"}\n'


def test_a_malformed_event_file_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "flow.yaml").write_text(WAIT)
    (tmp_path / "bad.json").write_text('{"specversion": "1.0", "source": "s", "type": "t"}')
    code = main(["run", str(tmp_path / "flow.yaml"), "--event", str(tmp_path / "bad.json")])
    err = capsys.readouterr().err
    assert code == 2
    assert "invalid CloudEvent (id)" in err
    assert "bad.json: missing required attribute 'id'" in err


def test_events_send_prints_every_instance(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "hello.yaml").write_text(
        "start: {type: event, event: {type: hello}}\n"
        "states:\n- {id: a, type: noop, transform: 'jq({lang: .hello.lang})'}\n"
    )
    (tmp_path / "oops.yaml").write_text(
        "start: {type: event, event: {type: oops}}\n"
        "states:\n- {id: a, type: error, error: my.error, message: no}\n"
    )
    (tmp_path / "e.json").write_text(_event("hello", lang="en"))
    args = ["events", "send", str(tmp_path / "e.json"), "--root", str(tmp_path)]
    assert main([*args, "--store", "memory://"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    record = json.loads(line)
    assert (record["path"], record["status"], record["output"]) == (
        "/hello.yaml", "complete", {"lang": "en"},
    )  # fmt: skip
    (tmp_path / "f.json").write_text(_event("oops"))
    args = ["events", "send", str(tmp_path / "f.json"), "--root", str(tmp_path)]
    assert main([*args, "--store", "memory://"]) == 1
    (line,) = capsys.readouterr().out.splitlines()
    assert json.loads(line)["error"] == {"code": "my.error", "message": "no"}


def _start_delay(tmp_path: Path) -> subprocess.Popen[str]:
    (tmp_path / "slow.yaml").write_text(
        "states:\n"
        "- id: mark\n  type: setter\n  variables: [{key: started, scope: namespace, value: 1}]\n"
        "  transition: sleep\n"
        "- {id: sleep, type: delay, duration: PT60S}\n"
    )
    store = tmp_path / "store"
    process = subprocess.Popen(
        [sys.executable, "-m", "direktiv_sdk.cli", "run", str(tmp_path / "slow.yaml"),
         "--store", f"file://{store}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ},
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not any(store.rglob("started*")):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the flow never started"
        time.sleep(0.05)
    return process


@pytest.mark.parametrize(("number", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_cancels_the_instance_without_a_traceback(
    tmp_path: Path, number: signal.Signals, code: int
) -> None:
    process = _start_delay(tmp_path)
    process.send_signal(number)
    out, err = process.communicate(timeout=60)
    assert process.returncode == code, err
    assert "Traceback" not in err
    assert f"{number.name}: cancelled the instance" in err
    assert "-- state mark (setter)" in err  # what it did so far
    assert '"code":"direktiv.cancels.api"' in err
    assert out == ""
