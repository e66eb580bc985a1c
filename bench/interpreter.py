"""Interpreter speed: counter-flow instances per second, cached jq vs compiling on every evaluation.

Run with ``make bench`` or ``.venv/bin/python -m bench.interpreter [--seconds N]``. Prints, in one
run and on the memory store:

* instances/s of the user's counter flow (getter, ``jq(.var.x += 1)`` transform, setter) with
  jq programs compiled once (the default cache), and with ``JqCache(0)`` (compiled on every
  evaluation: the naive way); target ratio >= 50x;
* the same flow with no ``clock`` (a :class:`SystemClock`) beside the :class:`VirtualClock` run:
  a flow that never waits runs without a namespace session either way, so the target is within
  10 %;
* the counter flow run from its YAML text (``run_workflow(text)`` in a loop, as tests call it)
  beside the loaded workflow: loaded flows are cached, so the target is at most 1.5x;
* the cost of one state relative to one bare cached jq evaluation of ``.var.x`` (target < 5x).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import jq

from direktiv_sdk.engine import InstanceResult, Workflow, load_workflow, run_workflow
from direktiv_sdk.engine.clock import VirtualClock
from direktiv_sdk.engine.tracing import TraceWriter
from direktiv_sdk.expr.gojson import JSON
from direktiv_sdk.expr.jx import JqCache, Snapshot, compile_template
from direktiv_sdk.store import Owner, VariableStore
from direktiv_sdk.store.registry import open_store

ROOT = Path(__file__).resolve().parent.parent
COUNTER = ROOT / "examples" / "counter.yaml"


def _rate(fn: Callable[[], object], seconds: float) -> tuple[float, int]:
    """Return (median seconds per call over 5 rounds, calls per round)."""
    fn()
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds / 10:
        fn()
        n += 1
    n = max(n, 1)
    rounds = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        rounds.append((time.perf_counter() - start) / n)
    return statistics.median(rounds), n


def _paired(
    a: Callable[[], object], b: Callable[[], object], seconds: float
) -> tuple[float, float]:
    """Return the median seconds per call of ``a`` and ``b``, measured in alternating rounds.

    Alternating keeps a shared machine's changing load out of their ratio.
    """
    a()
    b()
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds / 20:
        a()
        b()
        n += 1
    n = max(n, 1)
    rounds: tuple[list[float], list[float]] = ([], [])
    for _ in range(5):
        for fn, times in zip((a, b), rounds, strict=True):
            start = time.perf_counter()
            for _ in range(n):
                fn()
            times.append((time.perf_counter() - start) / n)
    return statistics.median(rounds[0]), statistics.median(rounds[1])


def main() -> None:
    """Print the benchmark table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    args = parser.parse_args()

    store = open_store("memory://")
    clock = VirtualClock()
    cached = load_workflow(COUNTER)
    naive = load_workflow(COUNTER, cache=JqCache(0))

    def run(flow: Workflow) -> Callable[[], InstanceResult]:
        def once() -> InstanceResult:
            return flow.run(store=store, path="/counter.yaml", root=COUNTER.parent, clock=clock)

        return once

    def on_system_clock() -> InstanceResult:
        return cached.run(store=store, path="/counter.yaml", root=COUNTER.parent)

    result = run(cached)()
    assert result.status == "complete", result
    assert on_system_clock().status == "complete"
    fast, t_system = _paired(run(cached), on_system_clock, args.seconds)
    slow, _ = _rate(run(naive), args.seconds)
    print(f"counter flow, memory store ({COUNTER.relative_to(ROOT)})")
    print(f"  cached jq (default)   {1 / fast:10.0f} instances/s   {fast * 1e6:9.1f} µs/instance")
    print(f"  JqCache(0) (naive)    {1 / slow:10.0f} instances/s   {slow * 1e6:9.1f} µs/instance")
    print(f"  ratio                 {slow / fast:10.1f}x   (target >= 50x)")
    print(
        f"  counter, SystemClock  {1 / t_system:10.0f} instances/s   "
        f"{t_system * 1e6:9.1f} µs/instance"
    )
    print(f"  SystemClock / virtual {t_system / fast:10.2f}x  (target 0.9-1.1x)")

    text = COUNTER.read_text()

    def from_text() -> InstanceResult:
        return run_workflow(
            text, store=store, path="/counter.yaml", root=COUNTER.parent, clock=clock
        )

    assert from_text().status == "complete"
    t_text, _ = _rate(from_text, args.seconds)
    print(
        f"  from YAML text        {1 / t_text:10.0f} instances/s   {t_text * 1e6:9.1f} µs/instance"
    )
    print(f"  text / loaded         {t_text / fast:10.2f}x  (target <= 1.5x)")

    with open(os.devnull, "w", encoding="utf-8") as devnull:
        writer = TraceWriter(devnull, "json")

        def traced() -> InstanceResult:
            return cached.run(
                store=store,
                path="/counter.yaml",
                root=COUNTER.parent,
                clock=clock,
                observer=writer,
            )

        assert traced().status == "complete"
        t_traced, _ = _rate(traced, args.seconds)
    print(
        f"  live JSON trace       {1 / t_traced:10.0f} instances/s   "
        f"{t_traced * 1e6:9.1f} µs/instance"
    )
    print(f"  traced / untraced     {t_traced / fast:10.2f}x  (tracing off costs nothing)")

    _breakdown(store, fast, args.seconds)

    program = jq.compile(".var.x += 1")
    text = '{"var":{"x":41}}'
    bare, _ = _rate(lambda: program.input_text(text).first(), args.seconds)
    short, long_ = _chain(1), _chain(STATES + 1)
    data: JSON = {"var": {"x": 41}}
    t_short, _ = _rate(lambda: short.run(input=data, store=store, clock=clock), args.seconds)
    t_long, _ = _rate(lambda: long_.run(input=data, store=store, clock=clock), args.seconds)
    per_state = (t_long - t_short) / STATES
    print(
        f"one state: a noop with transform 'jq(.var.x += 1)' (marginal cost over {STATES} states)"
    )
    print(f"  bare jq: compiled .var.x += 1 on the same text  {bare * 1e6:8.2f} µs")
    print(f"  one state                                       {per_state * 1e6:8.2f} µs")
    print(
        f"  ratio                                           {per_state / bare:8.1f}x (target < 5x)"
    )


STATES = 40


def _breakdown(store: VariableStore, instance: float, seconds: float) -> None:
    """Print where one cached counter instance spends its time."""
    transform = compile_template("jq(.var.x += 1)")
    value = compile_template("jq(.var.x)")
    inc, get = jq.compile(".var.x += 1"), jq.compile(".var.x")
    before: JSON = {"var": {"x": 41.0}}
    after: JSON = {"var": {"x": 42}}
    text_before, text_after = '{"var":{"x":41}}', '{"var":{"x":42}}'

    def raw() -> None:
        inc.input_text(text_before).first()
        get.input_text(text_after).first()

    def templates() -> None:
        transform.evaluate_object(Snapshot(before))
        value.evaluate(Snapshot(after))

    ref = Owner.for_workflow("default", "/bench.yaml").ref("x")

    def store_calls() -> None:
        store.get(ref)
        store.set(ref, b"42", mime_type="application/json")

    t_raw, _ = _rate(raw, seconds)
    t_tpl, _ = _rate(templates, seconds)
    t_store, _ = _rate(store_calls, seconds)
    rest = instance - t_tpl - t_store
    print("where one cached counter instance goes")
    print(f"  the two jq programs, raw (libjq)         {t_raw * 1e6:8.1f} µs")
    print(f"  the two templates (jx: + Go-JSON input)  {t_tpl * 1e6:8.1f} µs")
    print(f"  store get + set (memory store)           {t_store * 1e6:8.1f} µs")
    print(f"  interpreter (states, trace, result)      {rest * 1e6:8.1f} µs")


def _chain(count: int) -> Workflow:
    lines = ["states:"]
    for i in range(count):
        nxt = f"\n  transition: s{i + 1}" if i + 1 < count else ""
        lines.append(f"- id: s{i}\n  type: noop\n  transform: 'jq(.var.x += 1)'{nxt}")
    return load_workflow("\n".join(lines) + "\n", path=f"chain{count}.yaml")


if __name__ == "__main__":
    main()
