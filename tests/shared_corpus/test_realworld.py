"""871 real flows written by others, against Direktiv v0.10's own verdicts (``make test-corpus``).

``../shared/corpus/realworld/index.json`` gives each flow's source and what v0.10.0's
``pkg/model`` said about it (``expect``), and for some the outcome of a run (``runs``). Not
part of ``make test``: a fresh clone has no ``../shared``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Final

import pytest

from direktiv_sdk import gojson
from direktiv_sdk.engine.clock import SystemClock, VirtualClock
from direktiv_sdk.engine.interpreter import load_workflow, run_workflow
from direktiv_sdk.errors import WorkflowLoadError
from direktiv_sdk.flow._findings import RULES
from direktiv_sdk.flow.lint import lint_flow

ROOT: Final = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "realworld"
if not (ROOT / "index.json").is_file():
    raise RuntimeError(f"the shared corpus is missing: {ROOT} (make test-corpus needs ../shared)")
INDEX: Final[dict[str, dict[str, Any]]] = json.loads((ROOT / "index.json").read_text())
VALID: Final = sorted(name for name, entry in INDEX.items() if entry["expect"] == "valid")
INVALID: Final = sorted(name for name, entry in INDEX.items() if entry["expect"] != "valid")
RUNS: Final = sorted(
    (name, index) for name, entry in INDEX.items() for index in range(len(entry.get("runs", ())))
)
_LOCATED: Final = re.compile(r"^.+\.ya?ml:\d+: ")
_FINDING: Final = re.compile(r"^.+\.ya?ml:\d+:\d+: [A-Z]\d{3} ")


def test_the_index_is_whole() -> None:
    assert len(INDEX) == 871
    assert len(VALID) > 500
    assert len(INVALID) > 300
    assert len(RUNS) > 100


@pytest.mark.parametrize("name", VALID)
def test_what_direktiv_loads_loads(name: str) -> None:
    load_workflow(ROOT / name)


@pytest.mark.parametrize("name", INVALID)
def test_what_direktiv_refuses_is_refused_with_a_location(name: str) -> None:
    with pytest.raises(WorkflowLoadError) as caught:
        load_workflow(ROOT / name)
    assert _LOCATED.match(str(caught.value)), str(caught.value)


def test_lint_runs_on_every_flow() -> None:
    for name, entry in INDEX.items():
        findings = lint_flow(ROOT / name)
        for finding in findings:
            assert finding.code in RULES
            assert _FINDING.match(str(finding)), str(finding)
        if entry["expect"] != "valid":
            assert any(f.code.startswith("D") for f in findings), name


@pytest.mark.parametrize(("name", "index"), RUNS)
def test_recorded_runs(name: str, index: int) -> None:
    run = INDEX[name]["runs"][index]
    expect = run["expect"]
    given = run["input_raw"].encode() if "input_raw" in run else run["input"]
    clock = SystemClock() if run.get("clock") == "system" else VirtualClock()
    result = run_workflow(ROOT / name, input=given, store="memory://", clock=clock)
    assert result.status == expect["status"], (result.error_code, result.error_message)
    if "output" in expect:
        assert gojson.dumps(result.output) == gojson.dumps(expect["output"])
    if "error_code" in expect:
        assert result.error_code == expect["error_code"], result.error_message
    if "path" in expect:
        assert [step.state for step in result.trace] == expect["path"]
    if "error_message" in expect:
        assert result.error_message == expect["error_message"]
