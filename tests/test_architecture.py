"""The layout keeps its promises: no import cycles, light package imports, the old paths work."""

from __future__ import annotations

import importlib
import subprocess
import sys

import grimp
import pytest

PACKAGES = ("direktiv_sdk", "backends", "harness")
TIMEOUT = 60


def _import_graph() -> dict[str, set[str]]:
    graph = grimp.build_graph(*PACKAGES, exclude_type_checking_imports=True)
    modules = set(graph.modules)
    return {m: set(graph.find_modules_directly_imported_by(m)) & modules for m in modules}


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Return the strongly connected components of more than one module (iterative Tarjan)."""
    modules = sorted(edges)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in modules:
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(edges[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return found


def test_the_cycle_finder_finds_cycles() -> None:
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e", "d"}}
    assert _cycles(edges) == [["a", "b", "c"]]


def test_no_module_imports_another_in_a_cycle() -> None:
    assert _cycles(_import_graph()) == []


@pytest.mark.parametrize(
    ("module", "heavy"),
    [
        ("direktiv_sdk", {"jq", "yaml", "jsonschema", "httpx", "fsspec"}),
        ("direktiv_sdk.engine.clock", {"jq", "yaml", "jsonschema"}),
        ("direktiv_sdk.expr.gojson", {"jq", "yaml"}),
        ("direktiv_sdk.flow.model", {"jq", "yaml", "jsonschema"}),
    ],
)
def test_importing_a_light_module_loads_nothing_heavy(module: str, heavy: set[str]) -> None:
    code = f"import sys, {module}; print(sorted({heavy!r} & set(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=TIMEOUT, check=True
    )
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("old", "new", "name"),
    [
        ("direktiv_sdk.clock", "direktiv_sdk.engine.clock", "VirtualClock"),
        ("direktiv_sdk.jx", "direktiv_sdk.expr.jx", "compile_template"),
        ("direktiv_sdk.gojson", "direktiv_sdk.expr.gojson", "dumps"),
        ("direktiv_sdk.functions", "direktiv_sdk.engine.functions", "FunctionFile"),
        ("harness.strategies", "harness.testing.strategies", "variable_keys"),
        ("harness.store_tests", "harness.testing.store_tests", "VariableStoreTests"),
        ("direktiv_sdk", "direktiv_sdk.engine.interpreter", "run_workflow"),
        ("harness", "harness.functions._call", "call_function"),
    ],
)
def test_documented_paths_name_the_same_objects(old: str, new: str, name: str) -> None:
    assert getattr(importlib.import_module(old), name) is getattr(
        importlib.import_module(new), name
    )


def test_an_unknown_lazy_name_is_an_attribute_error() -> None:
    engine = importlib.import_module("direktiv_sdk.engine")
    with pytest.raises(
        AttributeError, match=r"module 'direktiv_sdk\.engine' has no attribute 'nope'"
    ):
        _ = engine.nope


def test_every_state_type_has_logic_that_loads_on_first_use() -> None:
    from direktiv_sdk.engine.states import LOGIC, LOGIC_NAMES
    from direktiv_sdk.flow.model import STATE_TYPES

    assert sorted(LOGIC_NAMES) == sorted(STATE_TYPES)
    for state_type in STATE_TYPES:
        logic = LOGIC[state_type]
        assert callable(logic)
        assert logic.__module__.startswith("direktiv_sdk.engine.states.")
    with pytest.raises(KeyError):
        LOGIC["nosuchtype"]
