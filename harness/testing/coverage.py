"""Workflow coverage: which states, transitions, switch branches and catches the tests ran.

A :class:`CoverageData` holds, per flow file, every state (with its YAML line) and every
possible transition (from :func:`~direktiv_sdk.flow.graph.flow_edges`) with hit counts.
:class:`CoverageRecorder` is a run observer that adds each finished instance to it. Data is plain
JSON (:meth:`CoverageData.to_json`), so pytest-xdist workers send theirs to the controller,
which merges them (:meth:`CoverageData.merge`). Reports: :func:`summary_rows` (the terminal
table), the JSON file and :func:`cobertura_xml` (states as lines, branches as conditions).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Final, TypedDict
from xml.etree import ElementTree as ET

from direktiv_sdk._compat import override
from direktiv_sdk.engine.observe import ObservedInstance, RunObserver
from direktiv_sdk.engine.results import InstanceResult
from direktiv_sdk.flow.graph import flow_edges
from direktiv_sdk.flow.model import Workflow

__all__ = [
    "CoverageData",
    "CoverageRecorder",
    "cobertura_xml",
    "flow_row",
    "format_table",
    "summary_rows",
]

FORMAT: Final = 1


class StateData(TypedDict):
    """One state of a covered flow."""

    type: str
    line: int
    hits: int


class EdgeData(TypedDict):
    """One possible transition and how often it was taken."""

    source: str
    target: str
    kind: str
    """``transition``, ``condition``, ``default`` or ``catch``."""
    label: str
    hits: int


class FlowData(TypedDict):
    """The coverage of one flow file."""

    states: dict[str, StateData]
    edges: list[EdgeData]
    instances: int


def _flow_key(workflow: Workflow, path: str, root: str) -> str:
    if workflow.file:
        absolute = os.path.abspath(workflow.file)
        try:
            relative = os.path.relpath(absolute, root)
        except ValueError:  # another drive (Windows)
            return absolute
        return absolute if relative.startswith("..") else relative.replace(os.sep, "/")
    return f"<text>{path}"


def _new_flow(workflow: Workflow) -> FlowData:
    return {
        "states": {
            state.id: {"type": state.type, "line": state.line, "hits": 0}
            for state in workflow.states
        },
        "edges": [
            {
                "source": edge.source,
                "target": edge.target,
                "kind": edge.kind,
                "label": edge.label,
                "hits": 0,
            }
            for edge in flow_edges(workflow)
        ],
        "instances": 0,
    }


class CoverageData:
    """Coverage of flow files, keyed by their path relative to ``root``."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = os.path.abspath(root)
        self.flows: dict[str, FlowData] = {}

    def add(self, workflow: Workflow, result: InstanceResult) -> None:
        """Count the states and transitions of one finished instance of ``workflow``."""
        key = _flow_key(workflow, result.path, self.root)
        flow = self.flows.get(key)
        if flow is None:
            flow = self.flows[key] = _new_flow(workflow)
        flow["instances"] += 1
        edges = flow["edges"]
        for step in result.trace:
            state = flow["states"].get(step.state)
            if state is not None:
                state["hits"] += 1
            if not step.next:
                continue
            index = _edge_index(edges, step.state, step.next, step.branch)
            if index is not None:
                edges[index]["hits"] += 1

    def merge(self, data: Mapping[str, object]) -> None:
        """Add the counts of :meth:`to_json` output (e.g. a pytest-xdist worker's) to these."""
        flows = data.get("flows")
        if data.get("format") != FORMAT or not isinstance(flows, dict):
            raise ValueError("not direktiv-sdk workflow coverage data (format 1)")
        for key, other in flows.items():
            mine = self.flows.get(key)
            if mine is None:
                self.flows[key] = _copy(other)
                continue
            mine["instances"] += other["instances"]
            for state_id, state in other["states"].items():
                if state_id in mine["states"]:
                    mine["states"][state_id]["hits"] += state["hits"]
            for mine_edge, other_edge in zip(mine["edges"], other["edges"], strict=False):
                mine_edge["hits"] += other_edge["hits"]

    def to_json(self) -> dict[str, object]:
        """Return the data as a JSON object (what ``direktiv-coverage.json`` holds)."""
        return {"format": FORMAT, "root": self.root, "flows": self.flows}


def _copy(flow: FlowData) -> FlowData:
    return {
        "states": {k: dict(v) for k, v in flow["states"].items()},  # type: ignore[misc]
        "edges": [dict(e) for e in flow["edges"]],  # type: ignore[misc]
        "instances": flow["instances"],
    }


def _edge_index(edges: list[EdgeData], source: str, target: str, branch: str) -> int | None:
    """Return the edge a step took: its ``branch`` (``condition:1``, ``catch:0``...) decides."""
    kind, _, number = branch.partition(":")
    kind = kind or "transition"
    seen = -1
    for index, edge in enumerate(edges):
        if edge["source"] != source or edge["kind"] != kind:
            continue
        seen += 1
        if (not number or int(number) == seen) and edge["target"] == target:
            return index
    return None


class CoverageRecorder(RunObserver):
    """A run observer that adds every finished instance to a :class:`CoverageData`."""

    def __init__(self, data: CoverageData) -> None:
        self.data = data
        self._lock = threading.Lock()

    @override
    def instance_finished(
        self, info: ObservedInstance, workflow: Workflow, result: InstanceResult
    ) -> None:
        with self._lock:  # subflows end in their own threads
            self.data.add(workflow, result)


# ---------------------------------------------------------------------- reports


class Row(TypedDict):
    """One line of the terminal table."""

    flow: str
    states: tuple[int, int]
    transitions: tuple[int, int]
    branches: tuple[int, int]
    catches: tuple[int, int]
    errors: tuple[int, int]


def _count(items: Iterable[int]) -> tuple[int, int]:
    hits = list(items)
    return sum(1 for h in hits if h), len(hits)


def flow_row(name: str, flow: FlowData) -> Row:
    """Return the counts of one flow: (covered, total) per column."""
    states = flow["states"].values()
    edges = flow["edges"]
    return {
        "flow": name,
        "states": _count(s["hits"] for s in states),
        "transitions": _count(e["hits"] for e in edges),
        "branches": _count(e["hits"] for e in edges if e["kind"] in ("condition", "default")),
        "catches": _count(e["hits"] for e in edges if e["kind"] == "catch"),
        "errors": _count(s["hits"] for s in states if s["type"] == "error"),
    }


def summary_rows(data: CoverageData) -> list[Row]:
    """Return one row per flow file, sorted by name."""
    return [flow_row(name, data.flows[name]) for name in sorted(data.flows)]


_COLUMNS: Final = ("states", "transitions", "branches", "catches", "errors")


def format_table(rows: list[Row]) -> str:
    """Return the rows as the aligned text table pytest prints."""
    table: list[list[str]] = [
        ["flow", "states", "transitions", "switch", "catches", "error states", "cover"]
    ]
    for row in rows:
        covered = row["states"][0] + row["transitions"][0]
        total = row["states"][1] + row["transitions"][1]
        counts = [row[column] for column in _COLUMNS]
        table.append(
            [
                row["flow"],
                *(f"{done}/{of}" for done, of in counts),
                f"{100 * covered / total:.0f}%" if total else "-",
            ]
        )
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    out = []
    for line in table:
        cells = [line[0].ljust(widths[0])]
        cells.extend(cell.rjust(width) for cell, width in zip(line[1:], widths[1:], strict=True))
        out.append("  ".join(cells).rstrip())
    return "\n".join(out)


def _rate(covered: int, total: int) -> str:
    return f"{covered / total:.4f}" if total else "1"


def cobertura_xml(data: CoverageData, version: str) -> bytes:
    """Return the coverage as Cobertura XML: one class per flow file, one line per state.

    A state's hits are the times it was entered; a state with more than one way out (switch
    conditions and default, catches) is a branch line whose condition coverage counts the ways
    out that were taken.
    """
    total_lines = covered_lines = total_branches = covered_branches = 0
    packages: dict[str, list[ET.Element]] = {}
    for name in sorted(data.flows):
        if name.startswith("<text>"):
            continue  # a flow given as YAML text has no file to show lines of
        flow = data.flows[name]
        outs: dict[str, list[int]] = {}
        for edge in flow["edges"]:
            outs.setdefault(edge["source"], []).append(edge["hits"])
        lines = ET.Element("lines")
        c_lines = c_covered = c_branches = c_bcovered = 0
        for state_id, state in sorted(flow["states"].items(), key=lambda kv: kv[1]["line"]):
            attrs = {"number": str(state["line"]), "hits": str(state["hits"])}
            ways = outs.get(state_id, [])
            if len(ways) > 1:
                taken = sum(1 for h in ways if h)
                attrs["branch"] = "true"
                attrs["condition-coverage"] = f"{100 * taken // len(ways)}% ({taken}/{len(ways)})"
                c_branches += len(ways)
                c_bcovered += taken
            else:
                attrs["branch"] = "false"
            ET.SubElement(lines, "line", attrs)
            c_lines += 1
            c_covered += 1 if state["hits"] else 0
        cls = ET.Element(
            "class",
            {
                "name": name.rsplit("/", 1)[-1],
                "filename": name,
                "complexity": "0",
                "line-rate": _rate(c_covered, c_lines),
                "branch-rate": _rate(c_bcovered, c_branches),
            },
        )
        ET.SubElement(cls, "methods")
        cls.append(lines)
        folder = name.rsplit("/", 1)[0] if "/" in name else "."
        packages.setdefault(folder, []).append(cls)
        total_lines += c_lines
        covered_lines += c_covered
        total_branches += c_branches
        covered_branches += c_bcovered
    root = ET.Element(
        "coverage",
        {
            "line-rate": _rate(covered_lines, total_lines),
            "branch-rate": _rate(covered_branches, total_branches),
            "lines-covered": str(covered_lines),
            "lines-valid": str(total_lines),
            "branches-covered": str(covered_branches),
            "branches-valid": str(total_branches),
            "complexity": "0",
            "version": version,
            "timestamp": str(int(time.time() * 1000)),
        },
    )
    sources = ET.SubElement(root, "sources")
    ET.SubElement(sources, "source").text = data.root
    package_list = ET.SubElement(root, "packages")
    for package_name in sorted(packages):
        members = packages[package_name]
        p_lines = sum(1 for c in members for _ in c.iter("line"))
        p_covered = sum(1 for c in members for ln in c.iter("line") if ln.get("hits") != "0")
        package = ET.SubElement(
            package_list,
            "package",
            {
                "name": package_name,
                "line-rate": _rate(p_covered, p_lines),
                "branch-rate": "0",
                "complexity": "0",
            },
        )
        ET.SubElement(package, "classes").extend(members)
    ET.indent(root)
    body = ET.tostring(root, encoding="unicode")
    doctype = '<!DOCTYPE coverage SYSTEM "http://cobertura.sourceforge.net/xml/coverage-04.dtd">'
    return f'<?xml version="1.0" ?>\n{doctype}\n{body}\n'.encode()
