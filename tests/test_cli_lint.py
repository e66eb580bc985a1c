"""``direktiv-sdk lint``: findings, formats, exit codes (and ``run --strict``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from direktiv_sdk.cli import main
from direktiv_sdk.flow.lint import RULES, lint_flow

BAD = """\
functions:
- {id: f, type: knative-workflow, image: i}
states:
- id: a
  type: noop
  log: 'jq(.a'
- id: orphan
  type: noop
  transform: 'jq(.x | )'
"""


def test_text_findings_and_exit_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    flow = tmp_path / "bad.yaml"
    flow.write_text(BAD)
    assert main(["lint", str(tmp_path)]) == 1
    out = capsys.readouterr()
    assert out.out.splitlines() == [
        f"{flow}:2:1: S302 function 'f' is never called by an action",
        f"{flow}:6:8: J101 state 'a': log: jq/js script missing bracket: 'jq(.a' has a 'jq(' "
        "without its closing ')'; add the ')'",
        f"{flow}:7:1: S301 state 'orphan': no transition reaches this state",
        f"{flow}:9:14: J102 state 'orphan': transform: invalid jq query '.x | ': syntax error, "
        "unexpected end of file at line 1, column 5; fix the jq expression",
    ]
    assert out.err == "2 error(s), 2 warning(s)\n"


def test_json_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    flow = tmp_path / "bad.yaml"
    flow.write_text(BAD)
    assert main(["lint", "--format", "json", str(flow)]) == 1
    rows = json.loads(capsys.readouterr().out)
    assert [(r["code"], r["severity"], r["line"], r["state"]) for r in rows] == [
        ("S302", "warning", 2, None),
        ("J101", "error", 6, "a"),
        ("S301", "warning", 7, "orphan"),
        ("J102", "error", 9, "orphan"),
    ]


def test_warnings_only_exit_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    flow = tmp_path / "w.yaml"
    flow.write_text("states:\n- {id: a, type: noop}\n- {id: b, type: noop}\n")
    assert main(["lint", str(flow)]) == 0
    assert "S301" in capsys.readouterr().out


def test_a_flow_direktiv_refuses_is_one_finding() -> None:
    [finding] = lint_flow("states:\n- {id: a, type: noop, transition: c}\n")
    assert (finding.code, finding.line, finding.state) == ("D002", 2, "a")
    assert finding.message == "transition 'c' does not exist"


def test_missing_path_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["lint", str(tmp_path / "nope.yaml")])
    assert caught.value.code == 2


def test_run_strict_turns_lint_errors_into_load_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flow = tmp_path / "f.yaml"
    flow.write_text("states:\n- {id: a, type: noop}\n- {id: b, type: noop, transform: done}\n")
    store = f"file://{tmp_path / 'store'}"
    assert main(["run", str(flow), "--store", store]) == 0  # 'b' never runs: Direktiv completes
    assert capsys.readouterr().out == "{}\n"
    assert main(["run", str(flow), "--store", store, "--strict"]) == 2
    assert "3: state 'b': transform \"done\" is not an object" in capsys.readouterr().err


def test_every_rule_is_documented() -> None:
    page = (Path(__file__).parent.parent / "docs" / "lint.md").read_text()
    for code, (severity, _) in RULES.items():
        assert f"### {code}" in page, code
        assert severity in page
