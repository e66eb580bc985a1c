"""``direktiv-sdk run``: the contract users and scripts rely on (stdout, stderr, exit codes)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from direktiv_sdk import Owner, open_store
from direktiv_sdk.cli import main

ROOT = Path(__file__).resolve().parent.parent
COUNTER = str(ROOT / "examples" / "counter.yaml")


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"file://{tmp_path}/store"


def _flow(tmp_path: Path, text: str, name: str = "flow.yaml") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_counter_counts(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    for expected in (1, 2, 3):
        assert main(["run", COUNTER, "--store", url]) == 0
        out, err = capsys.readouterr()
        assert out == f'{{"var":{{"x":{expected}}}}}\n'
        assert err == ""


def test_default_store_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DIREKTIV_STORE_URL", f"file://{tmp_path}/env")
    assert main(["run", COUNTER]) == 0
    assert capsys.readouterr().out == '{"var":{"x":1}}\n'
    assert (tmp_path / "env").is_dir()


def test_input_json(url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    flow = _flow(tmp_path, "states:\n- {id: a, type: noop}\n")
    assert main(["run", flow, "--store", url, "--input", '{"b": [1, 2.0], "a": "<x>"}']) == 0
    assert capsys.readouterr().out == '{"a":"\\u003cx\\u003e","b":[1,2]}\n'
    assert main(["run", flow, "--store", url, "--input", "5"]) == 0
    assert capsys.readouterr().out == '{"input":5}\n'


def test_input_must_be_json(url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    flow = _flow(tmp_path, "states:\n- {id: a, type: noop}\n")
    with pytest.raises(SystemExit) as caught:
        main(["run", flow, "--store", url, "--input", "{nope"])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert "error: --input is not valid JSON (" in err
    assert err.rstrip().endswith("use --input-file for other data")


def test_input_file_and_stdin(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    flow = _flow(tmp_path, "states:\n- {id: a, type: noop}\n")
    data = tmp_path / "input.bin"
    data.write_bytes(b"\x00\xff raw")
    assert main(["run", flow, "--store", url, "--input-file", str(data)]) == 0
    assert capsys.readouterr().out == '{"input":"AP8gcmF3"}\n'
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b'{"from": "stdin"}')))
    assert main(["run", flow, "--store", url, "--input-file", "-"]) == 0
    assert capsys.readouterr().out == '{"from":"stdin"}\n'
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert main(["run", flow, "--store", url, "--input-file", str(empty)]) == 0
    assert capsys.readouterr().out == '{"input":""}\n'
    assert main(["run", flow, "--store", url]) == 0
    assert capsys.readouterr().out == "{}\n"


def test_missing_input_file(url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    flow = _flow(tmp_path, "states:\n- {id: a, type: noop}\n")
    with pytest.raises(SystemExit) as caught:
        main(["run", flow, "--store", url, "--input-file", str(tmp_path / "none.json")])
    assert caught.value.code == 2
    assert (
        f"cannot read --input-file {str(tmp_path / 'none.json')!r}: No such file or directory"
        in (capsys.readouterr().err)
    )


def test_input_and_input_file_exclude_each_other(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["run", COUNTER, "--input", "{}", "--input-file", "x"])
    assert caught.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_failed_instance(url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    flow = _flow(tmp_path, "states:\n- {id: a, type: error, error: app.bad, message: 'no <way>'}\n")
    assert main(["run", flow, "--store", url]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == '{"error":{"code":"app.bad","message":"no \\u003cway\\u003e"}}\n'


def test_crashed_instance(url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    flow = _flow(tmp_path, "states:\n- {id: a, type: getter, variables: [{key: /, scope: file}]}\n")
    assert main(["run", flow, "--store", url, "--strict"]) == 2
    assert "invalid file path '/'" in capsys.readouterr().err
    assert main(["run", flow, "--store", url]) == 1  # Direktiv loads it; the getter fails
    assert "invalid file path '/'" in json.loads(capsys.readouterr().err)["error"]["message"]
    flow = _flow(
        tmp_path,
        "states:\n- {id: a, type: getter, variables: [{key: 'jq(\"sub\")', scope: file}]}\n",
    )
    (tmp_path / "sub").mkdir()
    assert main(["run", flow, "--store", url]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert json.loads(err) == {
        "error": {"code": "direktiv.internal.error", "message": "target is not a file: /sub"}
    }


def test_load_error_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    flow = _flow(tmp_path, "states:\n- id: a\n  type: noop\n  transition: b\n")
    assert main(["run", flow, "--store", "memory://"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"direktiv-sdk: error: {flow}:4: state 'a': transition 'b' does not exist\n"


def test_unmapped_function_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    flow = _flow(
        tmp_path,
        "functions: [{id: echo, type: knative-workflow, image: e:1}]\n"
        "states:\n- {id: a, type: action, action: {function: echo}}\n",
    )
    assert main(["run", flow, "--store", "memory://"]) == 2
    assert capsys.readouterr().err == (
        "direktiv-sdk: error: function 'echo' has no target: map it with --function "
        "echo=URL or functions={'echo': ...}\n"
    )


@pytest.mark.parametrize(("option", "value"), [("--function", "echo"), ("--secret", "=x")])
def test_bad_pairs_exit_2(option: str, value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["run", COUNTER, option, value])
    assert caught.value.code == 2
    assert f"error: {option} {value!r}: write {option} NAME=VALUE" in capsys.readouterr().err


def test_bad_store_url_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", COUNTER, "--store", "nope://x"]) == 2
    assert "cannot open store 'nope://x': unknown scheme 'nope'" in capsys.readouterr().err


def test_owner_options(url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    flow = _flow(
        tmp_path,
        "states:\n- id: a\n  type: setter\n  variables:\n"
        "  - {key: w, scope: workflow, value: 1}\n"
        "  - {key: i, scope: instance, value: 2}\n"
        "  - {key: n, scope: namespace, value: 3}\n",
        "sub.yaml",
    )
    args = ["--namespace", "team", "--path", "/flows/x.yaml", "--instance-id", "run-7"]
    assert main(["run", flow, "--store", url, *args]) == 0
    assert capsys.readouterr().out == "{}\n"
    store = open_store(url)
    assert store.get(Owner.for_workflow("team", "/flows/x.yaml").ref("w")) is not None
    assert store.get(Owner.for_instance("team", "run-7").ref("i")) is not None
    assert store.get(Owner.for_namespace("team").ref("n")) is not None


def test_root_and_default_path(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "data.json").write_text('{"v": 1}')
    (tmp_path / "flows").mkdir()
    flow = _flow(
        tmp_path / "flows",
        "states:\n- id: a\n  type: getter\n  variables: [{key: /data.json, scope: file, as: d}]\n"
        "  transition: b\n"
        "- {id: b, type: setter, variables: [{key: x, scope: workflow, value: 1}]}\n",
    )
    assert main(["run", flow, "--store", url, "--root", str(tmp_path)]) == 0
    assert capsys.readouterr().out == '{"var":{"d":{"v":1}}}\n'
    assert open_store(url).get(Owner.for_workflow("default", "/flows/flow.yaml").ref("x"))


def test_secret(url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    flow = _flow(
        tmp_path,
        "functions: [{id: c, type: subflow, workflow: child.yaml}]\n"
        "states:\n"
        "- {id: a, type: action, action: {function: c, secrets: [s], input: 'jq(.secrets)'}}\n",
    )
    _flow(tmp_path, "states:\n- {id: a, type: noop}\n", "child.yaml")
    assert main(["run", flow, "--store", url, "--secret", "s=v=1"]) == 0
    assert capsys.readouterr().out == '{"return":{"s":"v=1"}}\n'


def test_trace(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", COUNTER, "--store", url, "--instance-id", "i-1", "--trace"]) == 0
    out, err = capsys.readouterr()
    assert out == '{"var":{"x":1}}\n'
    assert err == (
        "instance i-1 /counter.yaml (default)\n"
        "-- state a (getter)\n"
        "   input:     {}\n"
        '   var:       {"x":null}\n'
        '   transform: {"var":{"x":1}}\n'
        "   next:      b\n"
        "-- state b (setter)\n"
        '   input:     {"var":{"x":1}}\n'
        "   set:       workflow x = 1 (application/json, 1 byte)\n"
        "   next:      (end)\n"
        "-- complete\n"
    )


def test_trace_of_errors_logs_and_subflows(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flow = _flow(
        tmp_path,
        "functions: [{id: c, type: subflow, workflow: child.yaml}]\n"
        "states:\n"
        "- {id: a, type: action, log: calling, action: {function: c},\n"
        "   catch: [{error: '*', transition: b}]}\n"
        "- {id: b, type: setter, variables: [{key: gone, scope: namespace, value: null}]}\n",
    )
    _flow(
        tmp_path,
        "states:\n- {id: x, type: error, error: app.x, message: child failed}\n",
        "child.yaml",
    )
    assert main(["run", flow, "--store", url, "--instance-id", "p", "--trace"]) == 0
    err = capsys.readouterr().err
    assert "   log:       calling\n" in err
    assert "-- state a (action)\n   input:     {}\n   log:       calling\n" in err  # in its block
    assert err.count("   log:       calling\n") == 1
    assert "   error:     app.x: child failed (caught)\n   next:      b\n" in err
    assert "   delete:    namespace gone\n" in err
    assert "    -- state x (error)\n" in err
    assert "    -- failed: app.x: child failed\n" in err
    assert err.endswith("-- complete\n")


def test_installed_script(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "direktiv-sdk"
    env = {**os.environ, "DIREKTIV_STORE_URL": f"file://{tmp_path}/store"}
    outputs = []
    for _ in range(2):
        done = subprocess.run(
            [str(script), "run", COUNTER],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout)
    assert outputs == ['{"var":{"x":1}}\n', '{"var":{"x":2}}\n']


def test_function_targets_go_to_the_harness(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flow = _flow(
        tmp_path,
        "functions: [{id: echo, type: knative-workflow, image: e:1}]\n"
        "states:\n- {id: a, type: action, action: {function: echo}}\n",
    )
    assert main(["run", flow, "--store", "memory://", "--function", "echo=ftp://x"]) == 2
    assert capsys.readouterr().err == (
        "direktiv-sdk: error: cannot call function 'echo' through 'ftp://x': a URL target needs "
        "http:// or https:// and a host\n"
    )


def test_strict_also_refuses_the_subflows_a_run_calls(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _flow(tmp_path, "states:\n- {id: c, type: noop, transform: 'jq(.a'}\n", name="child.yaml")
    parent = _flow(
        tmp_path,
        "functions:\n- {id: child, type: subflow, workflow: /child.yaml}\n"
        "states:\n- {id: a, type: action, action: {function: child}}\n",
    )
    assert main(["run", parent, "--store", url]) == 1  # Direktiv runs it; the child fails
    lenient = json.loads(capsys.readouterr().err)["error"]
    assert lenient["code"] == "direktiv.jq.badCommand"
    assert main(["run", parent, "--store", url, "--strict"]) == 1
    strict = json.loads(capsys.readouterr().err)["error"]
    assert "child.yaml" in strict["message"]
    assert "J101" in strict["message"] or "missing" in strict["message"]
