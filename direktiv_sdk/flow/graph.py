"""Pictures of a flow: its states and transitions as Mermaid ``flowchart`` or Graphviz DOT.

:func:`flow_edges` reads the transitions out of a loaded :class:`~direktiv_sdk.flow.Workflow`
(the one place that knows which fields hold them; workflow coverage counts the same edges);
:func:`render_mermaid` and :func:`render_dot` draw them. A *taken* set of ``(source, target)``
pairs (:func:`taken_edges` reads them from a ``run --trace-format json`` trace) highlights the
path one run took.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Final, Literal

from direktiv_sdk.flow.model import State, SwitchState, Workflow

__all__ = ["FORMATS", "Edge", "flow_edges", "render", "render_dot", "render_mermaid", "taken_edges"]

FORMATS: Final = ("mermaid", "dot")
EdgeKind = Literal["transition", "condition", "default", "catch"]
_LABEL_LIMIT: Final = 60


@dataclass(frozen=True, slots=True)
class Edge:
    """One possible transition of a flow."""

    source: str
    target: str
    kind: EdgeKind
    label: str = ""
    """The switch condition or catch pattern; ``""`` for plain transitions."""


def flow_edges(workflow: Workflow) -> list[Edge]:
    """Return every transition of ``workflow``, in state and field order."""
    edges: list[Edge] = []
    for state in workflow.states:
        edges.extend(_state_edges(state))
    return edges


def _state_edges(state: State) -> Iterable[Edge]:
    if isinstance(state, SwitchState):
        for condition in state.conditions:
            if condition.transition:
                text = _template_text(condition.condition.source)
                yield Edge(state.id, condition.transition, "condition", text)
        if state.default_transition:
            yield Edge(state.id, state.default_transition, "default", "default")
    elif state.transition:
        yield Edge(state.id, state.transition, "transition")
    for catch in state.catch:
        if catch.transition:
            yield Edge(state.id, catch.transition, "catch", catch.error)


def _template_text(source: object) -> str:
    text = source if isinstance(source, str) else json.dumps(source, sort_keys=True)
    match = re.fullmatch(r"\s*jq\((.*)\)\s*", text, re.DOTALL)
    return " ".join((match.group(1) if match else text).split())


def taken_edges(records: Iterable[dict[str, object]]) -> set[tuple[str, str]]:
    """Return the ``(state, next)`` pairs of JSON trace records (``--trace-format json``)."""
    taken: set[tuple[str, str]] = set()
    for record in records:
        if record.get("event") != "state" or record.get("depth") != 0:
            continue  # instance start/end records, and the states of subflows
        state, target = record.get("state"), record.get("next")
        if isinstance(state, str) and isinstance(target, str) and target:
            taken.add((state, target))
    return taken


def _short(text: str) -> str:
    return text if len(text) <= _LABEL_LIMIT else text[: _LABEL_LIMIT - 1] + "…"


# ---------------------------------------------------------------------- Mermaid


def _mermaid_text(text: str) -> str:
    # Mermaid labels are quoted; quotes and markup characters are written as entities.
    return "".join(f"#{ord(c)};" if c in '"<>#&' else c for c in _short(text))


def render_mermaid(workflow: Workflow, taken: Collection[tuple[str, str]] = ()) -> str:
    """Return ``workflow`` as a Mermaid ``flowchart TD``."""
    ids = {state.id: f"s{index}" for index, state in enumerate(workflow.states)}
    lines = ["flowchart TD", "    start_((start))"]
    start = workflow.start_state.id
    for state in workflow.states:
        lines.append(f'    {ids[state.id]}["{_mermaid_text(state.id)}<br/><i>{state.type}</i>"]')
    lines.append(f"    start_ --> {ids[start]}")
    styled: list[int] = [0] if taken else []  # link 0: start --> the first state
    catch: list[int] = []
    entered = {start} | {target for _, target in taken} if taken else set()
    for number, edge in enumerate(flow_edges(workflow), start=1):
        arrow = "-.->" if edge.kind == "catch" else "-->"
        label = f"|{_mermaid_text(edge.label)}|" if edge.label else ""
        lines.append(f"    {ids[edge.source]} {arrow}{label} {ids[edge.target]}")
        if edge.kind == "catch":
            catch.append(number)
        if (edge.source, edge.target) in taken:
            styled.append(number)
    lines.append("    classDef error stroke:#c0392b,color:#c0392b")
    for state in workflow.states:
        if state.type == "error":
            lines.append(f"    class {ids[state.id]} error")
    if catch:
        lines.append(f"    linkStyle {','.join(str(n) for n in catch)} stroke:#c0392b")
    if taken:
        lines.append("    classDef taken fill:#d5f5e3,stroke:#1e8449,stroke-width:2px")
        for state in workflow.states:
            if state.id in entered:
                lines.append(f"    class {ids[state.id]} taken")
        if styled:
            numbers = ",".join(str(n) for n in styled)
            lines.append(f"    linkStyle {numbers} stroke:#1e8449,stroke-width:3px")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------- DOT


def _dot_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def render_dot(workflow: Workflow, taken: Collection[tuple[str, str]] = ()) -> str:
    """Return ``workflow`` as a Graphviz ``digraph``."""
    start = workflow.start_state.id
    entered = {start} | {target for _, target in taken} if taken else set()
    lines = [
        "digraph flow {",
        "    rankdir=TB;",
        "    node [shape=box, style=rounded, fontname=Helvetica];",
        '    "__start__" [shape=circle, label="start", width=0.4];',
    ]
    for state in workflow.states:
        label = _dot_string(state.id + "\n(" + state.type + ")")
        attrs = [f"label={label}"]
        if state.type == "error":
            attrs.append('color="#c0392b"')
        if state.id in entered:
            attrs.append('style="rounded,filled", fillcolor="#d5f5e3", penwidth=2')
        lines.append(f"    {_dot_string(state.id)} [{', '.join(attrs)}];")
    start_style = ' [penwidth=3, color="#1e8449"]' if taken else ""
    lines.append(f'    "__start__" -> {_dot_string(start)}{start_style};')
    for edge in flow_edges(workflow):
        attrs = []
        if edge.label:
            attrs.append(f"label={_dot_string(_short(edge.label))}")
        if edge.kind == "catch":
            attrs.append('style=dashed, color="#c0392b"')
        elif edge.kind == "default":
            attrs.append("style=dotted")
        if (edge.source, edge.target) in taken:
            attrs.append('penwidth=3, color="#1e8449"')
        suffix = f" [{', '.join(attrs)}]" if attrs else ""
        lines.append(f"    {_dot_string(edge.source)} -> {_dot_string(edge.target)}{suffix};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render(workflow: Workflow, fmt: str, taken: Collection[tuple[str, str]] = ()) -> str:
    """Return ``workflow`` drawn in ``fmt`` (``mermaid`` or ``dot``)."""
    if fmt == "dot":
        return render_dot(workflow, taken)
    if fmt == "mermaid":
        return render_mermaid(workflow, taken)
    raise ValueError(f"unknown graph format {fmt!r}; use one of {', '.join(FORMATS)}")
