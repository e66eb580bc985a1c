"""Hostile input to ``direktiv-sdk run``: clear errors, no tracebacks, Ctrl-C and SIGTERM end it.

Each run is a child process with an address-space limit and a timeout, so a regression fails
the test instead of taking the machine down.
"""

from __future__ import annotations

import json
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

MEMORY = 2 << 30
"""The child's address-space limit."""

TIMEOUT = 60.0

_CLI = (sys.executable, "-c", "import sys; from direktiv_sdk.cli import main; sys.exit(main())")


def _limit() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))


def _cli(*args: str) -> list[str]:
    return [*_CLI, "run", *args]


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _cli(*args),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        preexec_fn=_limit,
        check=False,
    )


def _flow(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "flow.yaml"
    path.write_text(text)
    return path


def _interrupt(tmp_path: Path, flow: str, sig: signal.Signals) -> subprocess.CompletedProcess[str]:
    process = subprocess.Popen(
        _cli(str(_flow(tmp_path, flow))),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_limit,  # noqa: PLW1509
    )
    time.sleep(2.0)  # long enough to be inside the state: not a time bound on the SDK
    process.send_signal(sig)
    try:
        out, err = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        pytest.fail(f"{sig.name} did not end the run within {TIMEOUT}s")
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


_RUNAWAY = """
direktiv_api: workflow/v1
states:
- id: a
  type: noop
  transform: 'jq(def f: f; f)'
"""

_DELAY = """
direktiv_api: workflow/v1
states:
- id: a
  type: delay
  duration: PT1H
"""


@pytest.mark.parametrize("flow", [_RUNAWAY, _DELAY], ids=["runaway-jq", "delay"])
def test_ctrl_c_ends_the_run_with_130_and_no_traceback(tmp_path: Path, flow: str) -> None:
    result = _interrupt(tmp_path, flow, signal.SIGINT)
    assert result.returncode == 130, result.stderr
    assert "Traceback" not in result.stderr
    assert "direktiv-sdk: SIGINT: cancelled the instance" in result.stderr
    assert json.loads(result.stderr.strip().splitlines()[-1]) == {
        "error": {"code": "direktiv.cancels.api", "message": "cancelled by api request"}
    }


def test_sigterm_ends_a_runaway_expression(tmp_path: Path) -> None:
    result = _interrupt(tmp_path, _RUNAWAY, signal.SIGTERM)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr


def test_input_file_dev_zero_is_refused_at_the_size_limit(tmp_path: Path) -> None:
    flow = _flow(tmp_path, "direktiv_api: workflow/v1\nstates:\n- id: a\n  type: noop\n")
    result = _run(tmp_path, str(flow), "--input-file", "/dev/zero")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "cannot read --input-file '/dev/zero': it is larger than 128 MiB" in result.stderr


def test_input_nested_too_deeply_is_a_clear_error(tmp_path: Path) -> None:
    flow = _flow(tmp_path, "direktiv_api: workflow/v1\nstates:\n- id: a\n  type: noop\n")
    data = tmp_path / "input.json"
    data.write_text('{"a":' * 1000 + "1" + "}" * 1000)
    result = _run(tmp_path, str(flow), "--input-file", str(data))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "is nested deeper than 512 levels" in result.stderr


def test_deep_variable_read_by_a_getter_is_a_clear_error(tmp_path: Path) -> None:
    flow = _flow(
        tmp_path,
        "direktiv_api: workflow/v1\nstates:\n- id: a\n  type: getter\n  variables:\n"
        "  - key: deep\n    scope: namespace\n",
    )
    store = tmp_path / "store"
    subprocess.run(
        [*_CLI, "vars", "set", "--store", f"file://{store}", "deep"],
        cwd=tmp_path,
        input="[" * 5000 + "]" * 5000,
        text=True,
        check=True,
        timeout=TIMEOUT,
    )
    result = _run(tmp_path, str(flow), "--store", f"file://{store}")
    assert "Traceback" not in result.stderr
    assert result.returncode == 1
    assert json.loads(result.stderr)["error"] == {
        "code": "direktiv.internal.error",
        "message": "cannot decode variable 'deep': the JSON value is nested deeper than 512 "
        "levels (at character 512); flatten it",
    }


def test_string_alias_bomb_is_refused_without_expanding_it(tmp_path: Path) -> None:
    big = "x" * (1 << 20)
    aliases = "\n".join(f"    k{i}: *s" for i in range(10_000))
    flow = _flow(
        tmp_path,
        f"direktiv_api: workflow/v1\nstates:\n- id: a\n  type: noop\n  transform:\n"
        f"    big: &s {big}\n{aliases}\n",
    )
    result = _run(tmp_path, str(flow))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "document contains excessive aliasing" in result.stderr
