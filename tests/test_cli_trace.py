"""``direktiv-sdk run --trace``: a live, complete trace (the installed command, in a subprocess)."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from direktiv_sdk import run_workflow
from direktiv_sdk.clock import VirtualClock
from direktiv_sdk.engine.results import CallTrace, FileInfo, VariableWrite

CLI = str(Path(sys.executable).with_name("direktiv-sdk"))

APP = """\
import os
from direktiv_sdk.errors import FunctionError

def shout(input, context):
    context.vars.set("last", input["text"], scope="workflow")
    (context.out("namespace") / "loud").write_text(input["text"].upper())
    return {"text": input["text"].upper()}

def peek(input, context):
    # What the trace file holds while this action still runs: the blocks of finished states.
    with open(os.environ["TRACE_FILE"], encoding="utf-8") as file:
        return {"seen": file.read()}

calls = []

def flaky(input, context):
    calls.append(1)
    if len(calls) == 1:
        raise FunctionError("app.busy", "try again")
    return {"ok": len(calls)}
"""

FLOW = """\
functions:
- id: shout
  type: knative-workflow
  image: example/shout
states:
- id: a
  type: setter
  variables:
  - key: doc
    scope: instance
    value: hello world
  transition: b
- id: b
  type: action
  action:
    function: shout
    input: {text: 'jq(.name)'}
    files:
    - key: doc
      scope: instance
      as: doc.txt
"""

STATE_FIELDS = {
    "event", "instance", "parent", "depth", "path", "state", "type", "started", "finished",
    "input", "var", "writes", "calls", "transform", "logs", "error", "branch", "next",
}  # fmt: skip
CALL_FIELDS = {
    "function", "target", "attempt", "input", "files", "output", "error", "writes", "retry_wait"
}  # fmt: skip
WRITE_FIELDS = {"scope", "key", "size", "mime_type", "via", "deleted"}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "app.py").write_text(APP, encoding="utf-8")
    (tmp_path / "flow.yaml").write_text(FLOW, encoding="utf-8")
    return tmp_path


def _run(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, **(env or {})}
    return subprocess.run(
        [CLI, "run", *args], cwd=cwd, capture_output=True, text=True, timeout=60, env=full,
        check=False,
    )  # fmt: skip


def test_text_trace_shows_the_call_its_files_and_its_writes(project: Path) -> None:
    done = _run(
        project, "flow.yaml", "--store", "memory://", "--input", '{"name": "bo"}',
        "--function", "shout=app:shout", "--instance", "i-1", "--trace",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == '{"name":"bo","return":{"text":"BO"}}\n'
    assert done.stderr == (
        "instance i-1 /flow.yaml (default)\n"
        "-- state a (setter)\n"
        '   input:     {"name":"bo"}\n'
        '   set:       instance doc = "hello world" (application/json, 13 bytes)\n'
        "   next:      b\n"
        "-- state b (action)\n"
        '   input:     {"name":"bo"}\n'
        "   call:      shout -> Python function 'shout' (attempt 1)\n"
        '     send:    {"text":"bo"}\n'
        "     file:    doc.txt (plain, 13 bytes)\n"
        '     set:     workflow last = bo ("", 2 bytes) via var\n'
        '     set:     namespace loud = BO ("", 2 bytes) via out\n'
        '     return:  {"text":"BO"}\n'
        "   next:      (end)\n"
        "-- complete\n"
    )
    assert "\x1b[" not in done.stderr  # piped: no colour


def test_json_trace_has_one_object_per_state_with_stable_fields(project: Path) -> None:
    done = _run(
        project, "flow.yaml", "--store", "memory://", "--input", '{"name": "bo"}',
        "--function", "shout=app.py:shout", "--trace-format", "json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stderr.splitlines()]
    assert [r["event"] for r in records] == ["start", "state", "state", "end"]
    setter, action = records[1], records[2]
    assert set(setter) == set(action) == STATE_FIELDS
    assert (setter["state"], setter["next"], action["state"], action["next"]) == ("a", "b", "b", "")
    assert setter["writes"] == [
        {"scope": "instance", "key": "doc", "size": 13, "mime_type": "application/json",
         "via": "setter", "deleted": False}
    ]  # fmt: skip
    (call,) = action["calls"]
    assert set(call) == CALL_FIELDS
    assert call["files"] == [{"name": "doc.txt", "type": "plain", "size": 13}]
    assert (call["input"], call["output"], call["error"]) == ({"text": "bo"}, {"text": "BO"}, None)
    assert [(w["via"], w["scope"], w["key"], w["size"]) for w in call["writes"]] == [
        ("var", "workflow", "last", 2),
        ("out", "namespace", "loud", 2),
    ]
    assert all(set(w) == WRITE_FIELDS for w in action["writes"])
    assert records[3]["status"] == "complete"


def test_each_state_is_written_the_moment_it_ends(project: Path) -> None:
    flow = project / "live.yaml"
    flow.write_text(
        "functions: [{id: peek, type: knative-workflow, image: x}]\n"
        "states:\n"
        "- {id: first, type: noop, transition: second}\n"
        "- {id: second, type: action, action: {function: peek}}\n",
        encoding="utf-8",
    )
    trace = project / "trace.txt"
    done = _run(
        project, "live.yaml", "--store", "memory://", "--function", "peek=app:peek",
        "--trace-file", str(trace), env={"TRACE_FILE": str(trace)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)["return"]["seen"]
    assert "-- state first (noop)" in seen  # flushed before the next state ran
    assert "-- state second" not in seen
    assert "-- state second (action)" in trace.read_text(encoding="utf-8")


def test_colour_only_on_a_terminal_and_never_with_no_color(project: Path) -> None:
    def on_tty(env: dict[str, str]) -> str:
        leader, follower = pty.openpty()
        try:
            subprocess.run(
                [CLI, "run", "flow.yaml", "--store", "memory://", "--function",
                 "shout=app:shout", "--input", '{"name": "bo"}', "--trace"],
                cwd=project, stdout=subprocess.DEVNULL, stderr=follower, timeout=60,
                env={k: v for k, v in {**os.environ, **env}.items() if v}, check=True,
            )  # fmt: skip
            os.close(follower)
            chunks = []
            while True:
                try:
                    chunk = os.read(leader, 65536)
                except OSError:  # EIO: the terminal's other side is closed
                    break
                if not chunk:
                    break
                chunks.append(chunk)
            return b"".join(chunks).decode()
        finally:
            os.close(leader)

    coloured = on_tty({"NO_COLOR": ""})
    assert "\x1b[1m-- state a (setter)\x1b[0m" in coloured
    plain = on_tty({"NO_COLOR": "1"})
    assert "-- state a (setter)" in plain
    assert "\x1b[" not in plain


def test_retries_and_their_waits_are_in_the_trace_and_the_api(project: Path) -> None:
    flow = project / "retry.yaml"
    flow.write_text(
        "functions: [{id: flaky, type: knative-workflow, image: x}]\n"
        "states:\n"
        "- id: a\n  type: action\n  action:\n    function: flaky\n"
        "    retries: {max_attempts: 2, delay: PT30S, codes: [app.busy]}\n",
        encoding="utf-8",
    )
    done = _run(
        project, "retry.yaml", "--store", "memory://", "--function", "flaky=app:flaky",
        "--virtual-clock", "--trace",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "     error:   app.busy: try again\n     retry:   after 30 s\n" in done.stderr
    assert "(attempt 2)" in done.stderr


def test_state_trace_of_the_python_api_holds_calls_and_writes() -> None:
    def shout(input: dict[str, str], context: object) -> dict[str, str]:
        context.vars.set("last", input["text"], scope="workflow")  # type: ignore[attr-defined]
        return {"text": input["text"].upper()}

    result = run_workflow(
        "functions: [{id: shout, type: knative-workflow, image: x}]\n"
        "states:\n- {id: a, type: action, action: {function: shout, input: {text: hi}}}\n",
        store="memory://",
        functions={"shout": shout},
        clock=VirtualClock(),
    )
    (step,) = result.trace
    assert step.writes == (VariableWrite("workflow", "last", b"hi", "", "var"),)
    assert step.calls == (
        CallTrace(
            "shout", "Python function 'test_state_trace_of_the_python_api_holds_calls_and_"
            "writes.<locals>.shout'", 1, {"text": "hi"}, (), {"text": "HI"}, None, None,
            (VariableWrite("workflow", "last", b"hi", "", "var"),), None,
        ),
    )  # fmt: skip
    assert step.started == step.finished == VirtualClock().now()
    assert isinstance(FileInfo("a", "plain", 1), tuple)


def test_virtual_clock_lets_delays_and_timeouts_pass_without_waiting(project: Path) -> None:
    flow = project / "slow.yaml"
    flow.write_text(
        "timeouts: {interrupt: PT2H}\n"
        "states:\n- {id: wait, type: delay, duration: PT1H, transition: again}\n"
        "- {id: again, type: delay, duration: PT2H}\n",
        encoding="utf-8",
    )
    done = _run(project, "slow.yaml", "--store", "memory://", "--virtual-clock", "--trace-format",
                "json")  # fmt: skip
    assert done.returncode == 1  # the workflow's interrupt fired during the second delay
    assert json.loads(done.stderr.splitlines()[-1])["error"] == {
        "code": "direktiv.cancels.timeout.soft", "message": "operation timed out"
    }  # fmt: skip
    states = [json.loads(line) for line in done.stderr.splitlines()[:-1]]
    delays = [r for r in states if r.get("event") == "state"]
    assert delays[0]["finished"] - delays[0]["started"] == 3600
    assert delays[1]["finished"] - delays[0]["started"] == 7200


WEB_APPS = """\
import json

def wsgi(environ, start_response):
    body = json.loads(environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"])))
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps({"wsgi": body["n"] + 1}).encode()]

async def asgi(scope, receive, send):
    message = await receive()
    body = json.loads(message["body"])
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": json.dumps({"asgi": body["n"] * 2}).encode()})
"""


@pytest.mark.parametrize(
    ("spec", "expected"), [("web.py:wsgi", {"wsgi": 2}), ("web:asgi", {"asgi": 2})]
)
def test_wsgi_and_asgi_apps_run_in_process(
    project: Path, spec: str, expected: dict[str, int]
) -> None:
    (project / "web.py").write_text(WEB_APPS, encoding="utf-8")
    flow = project / "web.yaml"
    flow.write_text(
        "functions: [{id: app, type: knative-workflow, image: x}]\n"
        "states:\n- {id: a, type: action, action: {function: app, input: {n: 1}}}\n",
        encoding="utf-8",
    )
    done = _run(project, "web.yaml", "--store", "memory://", "--function", f"app={spec}")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["return"] == expected


def test_a_target_that_does_not_resolve_is_a_usage_error(project: Path) -> None:
    done = _run(project, "flow.yaml", "--store", "memory://", "--function", "shout=app:nope")
    assert done.returncode == 2
    assert done.stderr == (
        "direktiv-sdk: error: cannot call function 'shout' through 'app:nope': "
        "'app' has no attribute 'nope'\n"
    )
