"""Hostile jq: no environment, no modules, runaway programs stopped, crashes contained."""

from __future__ import annotations

from pathlib import Path

import pytest

from direktiv_sdk.errors import CatchableError, TemplateSyntaxError
from direktiv_sdk.expr import JqCache, compile_template
from direktiv_sdk.expr._jq_pool import JqPool

_POOL = JqPool(timeout=2.0, memory_limit=256 << 20)
"""A pool with short limits, so each probe ends in seconds (the defaults: 10 s, 1 GiB)."""

_MEMORY_POOL = JqPool(timeout=60.0, memory_limit=256 << 20)
"""The memory probe must hit the memory limit first (its time is bounded by it)."""


@pytest.fixture(scope="module")
def cache() -> JqCache:
    return JqCache(pool=_POOL)


@pytest.mark.parametrize(
    "expression",
    [
        "jq({e: env.SECRET, h: $ENV.SECRET})",  # cheap: runs in-process
        "jq([range(1)] | {e: env.SECRET, h: $ENV.SECRET})",  # runs in the worker
        "jq(def f: {e: env.SECRET, h: $ENV.SECRET}; f)",
    ],
)
def test_env_and_dollar_env_are_empty_objects(
    expression: str, cache: JqCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SECRET", "s3cr3t")
    assert compile_template(expression, cache=cache).evaluate({}) == {"e": None, "h": None}
    assert compile_template("jq([env, $ENV])", cache=cache).evaluate({}) == [{}, {}]


@pytest.mark.parametrize(
    "program", ['import "data" as $d; $d', 'include "lib"; f', 'import "lib" as l; l::f']
)
def test_modules_cannot_be_loaded(
    program: str, cache: JqCache, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "data.json").write_text('{"secret": 1}')
    (tmp_path / "lib.jq").write_text("def f: 1;")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(TemplateSyntaxError, match=r"modules cannot be loaded \('(import|include)'"):
        compile_template(f"jq({program})", cache=cache)


def test_search_path_is_empty(cache: JqCache) -> None:
    assert compile_template("jq(get_search_list)", cache=cache).evaluate({}) == []


@pytest.mark.parametrize("program", ["def f: f; f", "last(range(1e12))", "last(repeat(1))"])
def test_runaway_program_is_stopped_at_the_timeout(program: str, cache: JqCache) -> None:
    template = compile_template(f"jq({program})", cache=cache)
    with pytest.raises(CatchableError) as caught:
        template.evaluate({})
    assert caught.value.code == "direktiv.jq.badCommand"
    assert caught.value.message == (
        f"failed to evaluate jq/js: error executing jq query {program}: context deadline exceeded"
    )


def test_program_that_exhausts_memory_is_an_error_not_a_crash() -> None:
    cache = JqCache(pool=_MEMORY_POOL)
    template = compile_template("jq([range(1e12)])", cache=cache)
    with pytest.raises(
        CatchableError, match=r"error executing jq query \[range\(1e12\)\]: out of memory$"
    ):
        template.evaluate({})
    # The pool goes on with a fresh worker.
    assert compile_template("jq([range(3)])", cache=cache).evaluate({}) == [0, 1, 2]


def test_result_nested_too_deeply_is_an_error_not_a_crash(cache: JqCache) -> None:
    template = compile_template("jq(reduce range(10000) as $i (1; [.]) | {x: .})", cache=cache)
    with pytest.raises(CatchableError, match=r"nested deeper than 512 levels"):
        template.evaluate({})


def test_runaway_program_ends_at_the_states_deadline() -> None:
    from direktiv_sdk import run_workflow

    flow = (
        "timeouts:\n  interrupt: PT1S\nstates:\n- id: a\n  type: noop\n"
        "  transform: 'jq(def f: f; f)'\n"
    )
    result = run_workflow(flow, store="memory://")
    assert (result.status, result.error_code) == ("failed", "direktiv.cancels.timeout.soft")
    assert result.error_message == "unable to apply transform: operation timed out"


def test_interrupt_kills_the_evaluations_under_way() -> None:
    import threading

    from direktiv_sdk.expr._jq_pool import WorkerCrashedError

    pool = JqPool(timeout=60.0, memory_limit=256 << 20)
    errors: list[BaseException] = []

    def evaluate() -> None:
        try:
            pool.evaluate("def f: f; f", "null")
        except BaseException as exc:  # checked below, in the test's thread
            errors.append(exc)

    thread = threading.Thread(target=evaluate, daemon=True)
    thread.start()
    for _ in range(600):  # wait until the evaluation holds a worker (bounded: 60 s)
        if pool._busy:
            break
        thread.join(0.1)
    pool.interrupt()
    thread.join(30)
    assert not thread.is_alive()
    assert len(errors) == 1
    assert isinstance(errors[0], WorkerCrashedError)
    assert str(errors[0]) == "the jq worker process was killed by SIGKILL"
    pool.close()
