"""``pytest --direktiv-coverage``: tested with pytester, with and without pytest-xdist."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pycobertura import Cobertura

pytest_plugins = ["pytester"]

FLOW = """\
states:
- id: check
  type: switch
  conditions:
  - condition: 'jq(.x > 5)'
    transition: big
  - condition: 'jq(.x > 2)'
    transition: middle
  defaultTransition: small
- id: big
  type: error
  error: too.big
  message: too big
  catch:
  - error: never
    transition: small
- id: middle
  type: noop
- id: small
  type: noop
"""

TESTS = """\
import pytest

@pytest.mark.parametrize("x", {values})
def test_flow(direktiv_run, x):
    result = direktiv_run("flow.yaml", input={{"x": x}})
    assert result.status in ("complete", "failed")
"""


def _suite(pytester: pytest.Pytester, values: list[int]) -> None:
    pytester.makefile(".yaml", flow=FLOW)
    pytester.makepyfile(test_flows=TESTS.format(values=values))


def _data(pytester: pytest.Pytester) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        (pytester.path / "direktiv-coverage.json").read_text(encoding="utf-8")
    )
    return data


def test_off_by_default(pytester: pytest.Pytester) -> None:
    _suite(pytester, [1])
    result = pytester.runpytest_subprocess("-p", "no:randomly")
    result.assert_outcomes(passed=1)
    assert not (pytester.path / "direktiv-coverage.json").exists()
    assert "workflow coverage" not in result.stdout.str()


def test_table_json_and_cobertura(pytester: pytest.Pytester) -> None:
    _suite(pytester, [1, 9])
    result = pytester.runpytest_subprocess("-p", "no:randomly", "--direktiv-coverage")
    result.assert_outcomes(passed=2)
    result.stdout.re_match_lines(
        [
            r".*direktiv workflow coverage.*",
            r"flow\s+states\s+transitions\s+switch\s+catches\s+error states\s+cover",
            r"flow\.yaml\s+3/4\s+2/4\s+2/3\s+0/1\s+1/1\s+\d+%",
        ]
    )
    flows = _data(pytester)["flows"]
    assert list(flows) == ["flow.yaml"]
    flow = flows["flow.yaml"]
    assert flow["instances"] == 2
    assert {k: v["hits"] for k, v in flow["states"].items()} == {
        "check": 2,
        "big": 1,
        "middle": 0,
        "small": 1,
    }
    taken = {(e["source"], e["target"], e["kind"]): e["hits"] for e in flow["edges"]}
    assert taken == {
        ("check", "big", "condition"): 1,
        ("check", "middle", "condition"): 0,
        ("check", "small", "default"): 1,
        ("big", "small", "catch"): 0,
    }
    report = Cobertura(str(pytester.path / "direktiv-coverage.xml"))
    assert report.files() == ["flow.yaml"]
    # states start on lines 2, 10, 17, 19: `middle` was never entered, the switch took 2 of 3
    assert report.line_statuses("flow.yaml") == [
        (2, "partial"), (10, "hit"), (17, "miss"), (19, "hit")
    ]  # fmt: skip
    assert report.total_statements("flow.yaml") == 4
    assert report.line_rate("flow.yaml") == pytest.approx(0.75)


def test_xdist_workers_are_combined(pytester: pytest.Pytester) -> None:
    _suite(pytester, [1, 3, 9, 10])
    result = pytester.runpytest_subprocess(
        "-p", "no:randomly", "-n", "2", "--dist", "each", "--direktiv-coverage"
    )
    result.assert_outcomes(passed=8)
    flow = _data(pytester)["flows"]["flow.yaml"]
    assert flow["instances"] == 8
    assert {k: v["hits"] for k, v in flow["states"].items()} == {
        "check": 8,
        "big": 4,
        "middle": 2,
        "small": 2,
    }
    result.stdout.re_match_lines([r"flow\.yaml\s+4/4\s+3/4\s+3/3\s+0/1\s+1/1\s+\d+%"])
