"""Microbenchmark of the jx template layer: raw libjq vs Template.evaluate, cache vs no cache.

Run with ``.venv/bin/python -m bench.jx``. Prints microseconds per call (best of several runs)
and the ratios the project tracks:

* Template.evaluate of ``jq(.var.x)`` / ``jq(.var.x += 1)`` on a Snapshot vs the raw compiled
  ``jq`` program on the pre-encoded text (target: within ~1.5x);
* the same template with ``JqCache(0)`` (compile on every evaluation) vs cached;
* Go-JSON ``dumps`` (C-encoder fast path and pure-Python path) and ``loads`` vs :mod:`json`;
* a cached ``js(return data.var.x)`` evaluation vs a bare mini-racer call doing the same work
  (parse the data, call the function, stringify the result; target: within 1.5x).
"""

from __future__ import annotations

import json
import timeit
from collections.abc import Callable
from functools import partial

import jq

from direktiv_sdk.expr.gojson import JSON, dumps, loads
from direktiv_sdk.expr.jx import JqCache, Snapshot, compile_template

DATA: dict[str, JSON] = {
    "var": {"x": 41.0},
    "input": {"name": "counter", "tags": ["a", "b", "c"], "nested": {"k": 1.5, "n": None}},
    "return": {"status": "ok", "items": [1.0, 2.0, 3.0, 4.0]},
}


def best_us(function: Callable[[], object], *, budget: float = 0.4, repeat: int = 5) -> float:
    """Return the best time per call in microseconds, spending about ``budget`` s per run."""
    timer = timeit.Timer(function)
    number, elapsed = timer.autorange()
    number = max(1, int(number * budget / max(elapsed, 1e-9)))
    return min(timer.repeat(repeat=repeat, number=number)) / number * 1e6


def first_result(program: jq._Program, text: str) -> object:
    """Run a compiled program the cheapest way the ``jq`` package offers."""
    return program.input_text(text).first()


def main() -> None:
    """Print the benchmark table."""
    snapshot = Snapshot(DATA)
    text = snapshot.text
    print(f"{'case':<44} {'us/call':>10} {'ratio':>8}")
    for program_text in (".var.x", ".var.x += 1"):
        program = jq.compile(program_text)
        raw = best_us(partial(first_result, program, text))
        cached = compile_template(f"jq({program_text})", cache=JqCache())
        naive = compile_template(f"jq({program_text})", cache=JqCache(0))
        cached_us = best_us(partial(cached.evaluate, snapshot))
        naive_us = best_us(partial(naive.evaluate, snapshot), budget=0.2, repeat=3)
        fresh_us = best_us(partial(cached.evaluate, DATA))
        print(f"{'raw jq ' + program_text:<44} {raw:>10.2f} {1.0:>8.2f}")
        print(
            f"{'Template.evaluate(Snapshot) ' + program_text:<44} {cached_us:>10.2f} "
            f"{cached_us / raw:>8.2f}"
        )
        print(
            f"{'Template.evaluate(dict) ' + program_text:<44} {fresh_us:>10.2f} "
            f"{fresh_us / raw:>8.2f}"
        )
        print(
            f"{'JqCache(0) evaluate ' + program_text:<44} {naive_us:>10.2f} "
            f"{naive_us / cached_us:>8.1f}x cached"
        )

    slow_data: JSON = {**DATA, "tiny": 1e-7}
    encoded = dumps(DATA)
    baseline = best_us(
        lambda: json.dumps(DATA, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    )
    rows = [
        ("json.dumps(sort_keys) (reference)", baseline),
        ("gojson.dumps (C-encoder fast path)", best_us(lambda: dumps(DATA))),
        ("gojson.dumps (pure-Python path, 1 tiny float)", best_us(lambda: dumps(slow_data))),
        ("json.loads (reference)", best_us(lambda: json.loads(encoded))),
        ("gojson.loads", best_us(lambda: loads(encoded))),
    ]
    for name, value in rows:
        print(f"{name:<44} {value:>10.2f} {value / baseline:>8.2f}")
    js_rows(snapshot)


def js_rows(snapshot: Snapshot) -> None:
    """Print a cached js() evaluation beside a bare V8 call (mini-racer) doing the same work."""
    from py_mini_racer import MiniRacer  # the optional [js] extra: imported when measured

    racer = MiniRacer()
    racer.eval("var fn = function fn(data) {\n return data.var.x \n}")
    call = f"JSON.stringify(fn(JSON.parse({json.dumps(snapshot.text)})))"
    bare = best_us(partial(racer.eval, call), repeat=7)
    template = compile_template("js(return data.var.x)")
    ours = best_us(partial(template.evaluate, snapshot), repeat=7)
    racer.close()
    print(f"{'bare mini-racer eval (parse, call, stringify)':<44} {bare:>10.2f} {1.0:>8.2f}")
    print(f"{'Template.evaluate js(return data.var.x)':<44} {ours:>10.2f} {ours / bare:>8.2f}")


if __name__ == "__main__":
    main()
