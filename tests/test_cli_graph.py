"""``direktiv-sdk graph``: the flow as Mermaid and DOT, checked by parsing the edges."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

CLI = str(Path(sys.executable).with_name("direktiv-sdk"))

FLOW = """\
direktiv_api: workflow/v1
functions:
- id: f
  type: knative-workflow
  image: example/f
states:
- id: check
  type: switch
  conditions:
  - condition: 'jq(.x > 5)'
    transition: big
  - condition: 'jq(.x == "a\\"b")'
    transition: small
  defaultTransition: fail
- id: big
  type: action
  action:
    function: f
  catch:
  - error: "direktiv.*"
    transition: fail
  transition: small
- id: small
  type: noop
- id: fail
  type: error
  error: bad
  message: bad
"""

_DOT_EDGE = re.compile(r'^\s*"([^"]+)" -> "([^"]+)"(?: \[(.*)\])?;$')
_DOT_NODE = re.compile(r'^\s*"([^"]+)" \[(.*)\];$')
_MERMAID_NODE = re.compile(r'^\s*(\w+)\["(.*?)<br/><i>(\w+)</i>"\]$')
_MERMAID_EDGE = re.compile(r"^\s*(\w+) (-->|-\.->)(?:\|(.*?)\|)? (\w+)$")


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture
def flow(tmp_path: Path) -> str:
    path = tmp_path / "flow.yaml"
    path.write_text(FLOW, encoding="utf-8")
    return str(path)


def _dot(text: str) -> tuple[dict[str, str], list[tuple[str, str, str]]]:
    nodes: dict[str, str] = {}
    edges: list[tuple[str, str, str]] = []
    for line in text.splitlines():
        if match := _DOT_EDGE.match(line):
            edges.append((match[1], match[2], match[3] or ""))
        elif match := _DOT_NODE.match(line):
            nodes[match[1]] = match[2]
    return nodes, edges


def test_dot_has_every_state_and_transition(flow: str) -> None:
    done = _run("graph", flow, "--format", "dot")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("digraph flow {")
    nodes, edges = _dot(done.stdout)
    assert set(nodes) == {"__start__", "check", "big", "small", "fail"}
    assert 'label="big\\n(action)"' in nodes["big"]
    pairs = [(a, b) for a, b, _ in edges]
    assert pairs == [
        ("__start__", "check"),
        ("check", "big"),
        ("check", "small"),
        ("check", "fail"),
        ("big", "small"),
        ("big", "fail"),
    ]
    attrs = {(a, b): rest for a, b, rest in edges}
    assert 'label=".x > 5"' in attrs["check", "big"]
    assert 'label=".x == \\"a\\\\\\"b\\""' in attrs["check", "small"]
    assert "style=dotted" in attrs["check", "fail"]
    assert "style=dashed" in attrs["big", "fail"]  # the catch edge
    assert "dashed" not in attrs["big", "small"]


def test_mermaid_is_the_default(flow: str) -> None:
    done = _run("graph", flow)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "flowchart TD"
    names: dict[str, tuple[str, str]] = {}
    edges: list[tuple[str, str, str, str]] = []
    for line in lines:
        if match := _MERMAID_NODE.match(line):
            names[match[1]] = (match[2], match[3])
        elif match := _MERMAID_EDGE.match(line):
            edges.append((match[1], match[2], match[3] or "", match[4]))
    by_id = {v[0]: k for k, v in names.items()}
    assert set(names.values()) == {
        ("check", "switch"),
        ("big", "action"),
        ("small", "noop"),
        ("fail", "error"),
    }
    readable = [
        (names.get(a, ("start",))[0], arrow, label, names[b][0]) for a, arrow, label, b in edges
    ]
    assert readable == [
        ("start", "-->", "", "check"),
        ("check", "-->", ".x #62; 5", "big"),
        ("check", "-->", ".x == #34;a\\#34;b#34;", "small"),
        ("check", "-->", "default", "fail"),
        ("big", "-->", "", "small"),
        ("big", "-.->", "direktiv.*", "fail"),
    ]
    assert f"class {by_id['fail']} error" in [line.strip() for line in lines]


def test_trace_file_highlights_the_path_taken(flow: str, tmp_path: Path) -> None:
    trace = tmp_path / "run.jsonl"
    run = _run(
        "run",
        flow,
        "--store",
        "memory://",
        "--input",
        '{"x": 1}',
        "--trace-format",
        "json",
        "--trace-file",
        str(trace),
        "--function",
        "f=http://127.0.0.1:9",  # mapped, never called on this path
    )
    assert run.returncode == 1  # the error state
    done = _run("graph", flow, "--format", "dot", "--trace-file", str(trace))
    assert done.returncode == 0, done.stderr
    nodes, edges = _dot(done.stdout)
    highlighted = {(a, b) for a, b, rest in edges if "penwidth=3" in rest}
    assert highlighted == {("__start__", "check"), ("check", "fail")}
    assert "fillcolor" in nodes["check"]
    assert "fillcolor" in nodes["fail"]
    assert "fillcolor" not in nodes["big"]


def test_bad_trace_file_is_a_usage_error(flow: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text("not json\n", encoding="utf-8")
    done = _run("graph", flow, "--trace-file", str(bad))
    assert done.returncode == 2
    assert "bad.jsonl:1: not a JSON trace record" in done.stderr


def test_a_flow_that_does_not_load_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("states:\n- id: a\n  type: noop\n  transition: nowhere\n", encoding="utf-8")
    done = _run("graph", str(path))
    assert done.returncode == 2
    assert "transition 'nowhere' does not exist" in done.stderr


def test_the_docs_page_shows_what_the_command_prints(tmp_path: Path) -> None:
    page = (Path(__file__).resolve().parent.parent / "docs" / "graph.md").read_text()
    flow_text = re.search(r"```yaml\n# order.yaml\n(.*?)```", page, re.S)
    dot_text = re.search(r"```\n(digraph flow \{.*?\n\}\n)```", page, re.S)
    assert flow_text is not None
    assert dot_text is not None
    flow = tmp_path / "order.yaml"
    flow.write_text(flow_text[1], encoding="utf-8")
    assert _run("graph", str(flow), "--format", "dot").stdout == dot_text[1]
