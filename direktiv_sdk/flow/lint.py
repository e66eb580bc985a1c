"""``direktiv-sdk lint``: every check of the strict loader, and a few more, as findings.

A flow Direktiv refuses gives one finding (the load error, with its code); a flow that loads
gives what the loader deferred to run time (:attr:`Workflow.findings`) plus the structural
warnings: states no transition reaches and functions no action calls. Codes and severities
are in :data:`~direktiv_sdk.flow._findings.RULES` (docs/lint.md lists them with examples).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from direktiv_sdk.errors import WorkflowLoadError
from direktiv_sdk.flow._findings import RULES, Finding, Severity
from direktiv_sdk.flow.loader import _actions, _transitions, load_workflow
from direktiv_sdk.flow.model import Workflow

__all__ = ["RULES", "Finding", "Severity", "flow_files", "lint_flow", "lint_paths"]

_SUFFIXES = (".yaml", ".yml")


def flow_files(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Return the flow files in ``paths``: files as given, folders searched for *.yaml/*.yml."""
    found: list[Path] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            found.extend(
                sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in _SUFFIXES)
            )
        else:
            found.append(path)
    return found


def lint_flow(source: str | os.PathLike[str], *, path: str | None = None) -> list[Finding]:
    """Return the findings of one flow (a file path or YAML text), in file order."""
    try:
        workflow = load_workflow(source, path=path)
    except WorkflowLoadError as exc:
        return [
            Finding(
                exc.file or "<workflow>",
                exc.line or 1,
                exc.column or 1,
                exc.rule,
                exc.detail,
                exc.state,
            )
        ]
    name = path or workflow.file or "<workflow>"
    findings = [*workflow.findings, *_unreachable(workflow, name), *_unused(workflow, name)]
    return sorted(findings, key=lambda f: (f.line, f.column, f.code))


def lint_paths(paths: Iterable[str | os.PathLike[str]]) -> list[Finding]:
    """Return the findings of every flow under ``paths`` (files and folders)."""
    findings: list[Finding] = []
    for file in flow_files(paths):
        findings.extend(lint_flow(file))
    return findings


def _unreachable(workflow: Workflow, name: str) -> list[Finding]:
    seen = {workflow.start_state.id}
    todo = [workflow.start_state]
    while todo:
        state = todo.pop()
        for _, target, _ in _transitions(state):
            if target not in seen and target in workflow.state_map:
                seen.add(target)
                todo.append(workflow.state_map[target])
    return [
        Finding(name, state.line, 1, "S301", "no transition reaches this state", state.id)
        for state in workflow.states
        if state.id not in seen
    ]


def _unused(workflow: Workflow, name: str) -> list[Finding]:
    called = {action.function for state in workflow.states for action in _actions(state)}
    return [
        Finding(name, fn.line, 1, "S302", f"function {fn.id!r} is never called by an action")
        for fn in workflow.functions
        if fn.id not in called
    ]
