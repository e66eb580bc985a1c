"""js(...) on V8: v0.10 pkg/jqer semantics, limits, isolation between scripts."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from direktiv_sdk.errors import CatchableError
from direktiv_sdk.expr._clock import reset_clock, reset_deadline, use_clock, use_deadline
from direktiv_sdk.expr._js import JsEngine, ScriptError
from direktiv_sdk.expr.gojson import JSON, dumps
from direktiv_sdk.expr.jx import compile_template

DATA = '{"a":[1,2,3],"n":5,"o":{"k":"<v>"},"s":"hello"}'


@pytest.fixture
def engine() -> Iterator[JsEngine]:
    js = JsEngine(time_limit=0.5, memory_limit=48 * 2**20)
    yield js
    js.close()


def detail(js: JsEngine, body: str) -> str:
    with pytest.raises(ScriptError) as caught:
        js.evaluate(body, DATA)
    return caught.value.detail


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("return data.a", [1, 2, 3]),
        ("return Object.keys(data)", ["a", "n", "o", "s"]),
        ("return data.n / 2", 2.5),
        ("return data.n * 2", 10),
        ('return btoa("demo")', "ZGVtbw=="),
        ('return btoa("é€😀")', "w6nigqzwn5iA"),
        ('return atob("w6nigqzwn5iA")', "é€😀"),
        ('return atob("/w==")', "\ufffd"),  # Go's string(bytes): invalid UTF-8 is U+FFFD
        ('return atob("abc")', "illegal base64 data at input byte 0"),
        ("return [undefined, () => 1]", [None, None]),
        ("return {b: 1, a: 'x'}", {"a": "x", "b": 1}),
        ("return typeof console + typeof setTimeout", "undefinedundefined"),
        ("return 2 ** 60", 1.152921504606847e18),
    ],
)
def test_results(engine: JsEngine, body: str, expected: JSON) -> None:
    result = engine.evaluate(body, DATA)
    assert result == expected
    assert type(result) is type(expected)


def test_errors_carry_direktivs_prefixes(engine: JsEngine) -> None:
    assert detail(engine, "return null") == "error in js query return null: no results"
    assert detail(engine, "return NaN") == (
        "error running js query return NaN: json: unsupported value: NaN"
    )
    assert detail(engine, 'throw new Error("boom")') == (
        'error running js query throw new Error("boom"): Error: boom at fn (<eval>:2:8)'
    )
    assert detail(engine, "throw 5") == "error running js query throw 5: 5"
    assert detail(engine, "return (1") == (
        "error loading js query return (1: SyntaxError: Unexpected token '}' at 3:1"
    )
    assert engine.syntax_error("return (1") == "SyntaxError: Unexpected token '}' at 3:1"
    assert engine.syntax_error("return 1") is None


def test_each_script_starts_with_clean_globals(engine: JsEngine) -> None:
    assert engine.evaluate("leak = 1; globalThis.other = 2; return leak", DATA) == 1
    assert engine.evaluate("return typeof leak + typeof other", DATA) == "undefinedundefined"


def test_an_endless_script_stops_at_the_time_limit(engine: JsEngine) -> None:
    started = time.perf_counter()
    assert detail(engine, "while (true) {}") == "error running js query while (true) {}: timeout"
    assert time.perf_counter() - started < 5
    assert engine.evaluate("return 1", DATA) == 1  # the isolate is still usable


def test_the_state_deadline_stops_a_script_first(engine: JsEngine) -> None:
    token = use_deadline(time.time() + 0.1)
    try:
        with pytest.raises(CatchableError) as caught:
            engine.evaluate("for (;;) {}", DATA)
    finally:
        reset_deadline(token)
    assert (caught.value.code, caught.value.message) == (
        "direktiv.cancels.timeout.soft",
        "operation timed out",
    )


def test_the_memory_cap_stops_a_script_and_replaces_the_isolate() -> None:
    # A long time limit: the memory cap must come first, also on a loaded machine.
    engine = JsEngine(time_limit=60.0, memory_limit=48 * 2**20)
    try:
        body = "const a = []; while (true) { a.push('x'.repeat(64) + Math.random()) }"
        assert detail(engine, body) == (
            f"error running js query {body}: out of memory (scripts may use 48 MiB)"
        )
        assert engine.evaluate("return [1, 2].length", DATA) == 2
    finally:
        engine.close()


def test_date_follows_the_instance_clock(engine: JsEngine) -> None:
    token = use_clock(lambda: 1_700_000_000.5)
    try:
        assert engine.evaluate("return Date.now()", DATA) == 1_700_000_000_500
        assert engine.evaluate("return new Date().toISOString()", DATA) == (
            "2023-11-14T22:13:20.500Z"
        )
        assert engine.evaluate("return new Date(0).getTime()", DATA) == 0
        assert engine.evaluate("return new Date() instanceof Date", DATA) is True
    finally:
        reset_clock(token)


def test_threads_share_one_engine(engine: JsEngine) -> None:
    errors: list[BaseException] = []

    def work(offset: int) -> None:
        try:
            for i in range(20):
                assert engine.evaluate(f"return data.n + {offset + i}", DATA) == 5 + offset + i
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k * 100,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors


def test_templates_mix_jq_and_js() -> None:
    template = compile_template("n=jq(.n) js(return data.n + 1) js(return [data.s])")
    assert template.scripts == ("return data.n + 1", "return [data.s]")
    assert template.evaluate({"n": 1.0, "s": "x"}) == 'n=1 2 ["x"]'
    assert dumps(compile_template({"k": "js(return data)"}).evaluate([1])) == '{"k":{}}'


def test_a_strict_compile_checks_js_syntax() -> None:
    with pytest.raises(ValueError, match=r"invalid js query 'return 1 \+': SyntaxError"):
        compile_template("js(return 1 +)", strict=True)
    assert compile_template("js(return 1 +)", strict=False).scripts == ("return 1 +",)
