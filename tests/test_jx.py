"""Structured jx templates (spec §2) against real libjq."""

from __future__ import annotations

import re
import sys
import threading
from pathlib import Path

import pytest

from direktiv_sdk.errors import CatchableError, DirektivError, TemplateSyntaxError
from direktiv_sdk.expr._jq import compile_error_text
from direktiv_sdk.expr.gojson import JSON, JSONObject, dumps, format_v
from direktiv_sdk.expr.jx import (
    DEFAULT_CACHE,
    JqCache,
    Snapshot,
    compile_template,
    truth,
)

# The data of the spec's §2.4 examples table, with numbers as floats (they came from JSON).
DATA: JSONObject = {"a": [1.0, 2.0, 3.0], "s": "hello", "n": 5.0, "o": {"k": "<v>"}}


def evaluate(template: JSON, data: JSON = DATA) -> JSON:
    return compile_template(template).evaluate(data)


def bad_command(template: JSON, data: JSON = DATA) -> str:
    """Evaluate, expect direktiv.jq.badCommand, and return the detail after the prefix."""
    with pytest.raises(CatchableError) as caught:
        evaluate(template, data)
    assert caught.value.code == "direktiv.jq.badCommand"
    prefix = "failed to evaluate jq/js: "
    assert caught.value.message.startswith(prefix)
    assert str(caught.value) == f"direktiv.jq.badCommand: {caught.value.message}"
    return caught.value.message.removeprefix(prefix)


def load_error(template: JSON) -> TemplateSyntaxError:
    with pytest.raises(TemplateSyntaxError) as caught:
        compile_template(template)
    assert str(caught.value) == caught.value.detail
    return caught.value


# --------------------------------------------------------------------------- §2.4 strings


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("jq(.a)", [1, 2, 3]),
        ("a: jq(.a)", "a: [1,2,3]"),
        ("a: jq(.s)", "a: hello"),
        ("jq(.n)jq(.n)", "55"),
        ("x jq(.o)", 'x {"k":"\\u003cv\\u003e"}'),
        ('"jq(.s)"', '"hello"'),
        ("   ", ""),
        ("", ""),
        # more of §2.4's rules
        ("plain text", "plain text"),
        ("ajq(.n)", "a5"),
        ("jjq(.n)", "j5"),
        ("jq(.n) and jq(.s)!", "5 and hello!"),
        ("jq(.a))", "[1,2,3])"),
        ("jq((.n + 1) * 2)", 12),
        ('jq("(" + ")")', "()"),
        ("jq(.o)", {"k": "<v>"}),
        ("jq(.s)", "hello"),
        ("jq(.n)", 5),
        ("jq(.n / 2)", 2.5),
        ("jq(true)", True),
        ("jq(false)", False),
        ("jq(0)", 0),
        ('jq("")', ""),
        ("jq([])", []),
        ("v: jq(true) jq(1e-7) jq(1e300)", "v: true 1e-7 1e+300"),
        ("jq()", DATA),
        ("jq(  )", DATA),
        ("jq", "jq"),
        ("jq )", "jq )"),
        ("js", "js"),
    ],
)
def test_string_templates(template: str, expected: JSON) -> None:
    assert evaluate(template) == expected


def test_single_expression_keeps_its_type_and_python_number_model() -> None:
    # A path returns data, whose numbers gojq sees as float64 (§2.2); libjq alone gives an int.
    assert type(evaluate("jq(.n)")) is float
    assert evaluate("jq(.a)") == [1.0, 2.0, 3.0]
    assert [type(x) for x in evaluate("jq(.a)")] == [float, float, float]  # type: ignore[union-attr]
    assert type(evaluate("jq(.n + 1)")) is int  # libjq: computed whole numbers come back as ints
    assert type(evaluate("jq(.a | length)")) is int
    assert type(evaluate("jq(.n / 2)")) is float
    assert evaluate("jq(pow(2; 53))") == 2**53
    assert type(evaluate("jq(pow(2; 53))")) is int
    big = evaluate("jq(pow(2; 53) + 2)")
    assert big == 2.0**53 + 2
    assert type(big) is float
    huge = evaluate("jq([1e300, {a: -1e300}])")
    assert huge == [1e300, {"a": -1e300}]
    assert isinstance(huge, list)
    assert type(huge[0]) is float
    # Huge ints inside nested objects and lists come back as floats too; small ones stay ints.
    assert repr(evaluate("jq({a: [1e20, {b: [1e17, 3, -1e300]}], c: 5})")) == (
        "{'a': [1e+20, {'b': [1e+17, 3, -1e+300]}], 'c': 5}"
    )


def test_data_numbers_stay_go_float64_for_go_v_formatting() -> None:
    data: JSONObject = {"n": 1234567.0, "m": 1e6, "l": [1e6, 2.0], "small": 123456.0}
    # Interpolation is Go-JSON, where float64 and int print alike (section 0.1) ...
    assert evaluate("v=jq(.n) jq(.m) jq(.l)", data) == "v=1234567 1000000 [1000000,2]"
    # ... but Go-%v (text/plain setters, error arguments) prints data numbers as float64.
    shown = [format_v(evaluate(t, data)) for t in ("jq(.n)", "jq(.l)", "jq(.small)", 'jq(.["m"])')]
    assert shown == ["1.234567e+06", "[1e+06 2]", "123456", "1e+06"]
    assert format_v(evaluate("jq(1234567)", data)) == "1234567"  # a literal is a Go int in gojq


@pytest.mark.parametrize(
    "space",
    [
        *(" ", "\t", "\n", "\v", "\f", "\r", "\x85", "\xa0", "\u1680", "\u2000", "\u2005"),
        *("\u200a", "\u2028", "\u2029", "\u202f", "\u205f", "\u3000"),
    ],
)
def test_go_trim_space_set_is_trimmed(space: str) -> None:
    assert evaluate(f"{space}{space}jq(.a){space}") == [1, 2, 3]
    assert evaluate(f"{space}hi{space}") == "hi"


@pytest.mark.parametrize("not_space", ["\x1c", "\x1d", "\x1e", "\x1f", "\u200b", "\ufeff"])
def test_characters_outside_go_trim_space_stay(not_space: str) -> None:
    assert evaluate(f"{not_space}jq(.n)") == f"{not_space}5"
    assert evaluate(f"jq(.n){not_space}") == f"5{not_space}"


def test_block_scalar_loses_its_final_newline() -> None:
    assert evaluate("hello\nworld\n") == "hello\nworld"
    assert evaluate("jq(.a) \n") == [1, 2, 3]


def test_sub_expressions_see_sorted_keys() -> None:
    data: JSONObject = {"z": 1.0, "b": {"y": 1.0, "x": 2.0}, "a": 3.0}
    assert evaluate("jq(keys_unsorted)", data) == ["a", "b", "z"]
    assert evaluate("jq(.b | to_entries | map(.key))", data) == ["x", "y"]
    assert evaluate("jq(tojson)", data) == '{"a":3,"b":{"x":2,"y":1},"z":1}'
    assert evaluate('jq("\\(.b)")', data) == '{"x":2,"y":1}'


def test_data_numbers_reach_jq_in_go_form() -> None:
    assert evaluate('jq("\\(.n)")', {"n": 1.0}) == "1"
    assert evaluate("jq(.n | tostring)", {"n": 1e16}) == "10000000000000000"
    assert evaluate("jq(.n | tojson)", {"n": 1.5}) == "1.5"


@pytest.mark.parametrize("data", [None, [1.0, 2.0], "text", 5.0, True])
def test_non_object_data_is_seen_as_an_empty_object(data: JSON) -> None:
    assert evaluate("jq(.)", data) == {}
    assert evaluate("jq(length)", data) == 0


def _documented_examples() -> list[tuple[str, str]]:
    text = (Path(__file__).parent.parent / "docs" / "expressions.md").read_text("utf-8")
    table = text.split("<!-- examples:start -->")[1].split("<!-- examples:end -->")[0]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    examples = [tuple(cell.strip() for cell in row.strip("|").split(" | ")) for row in rows]
    return [(template.strip("`"), result) for template, result in examples]


DOCUMENTED = _documented_examples()


def test_documented_examples_are_found() -> None:
    assert len(DOCUMENTED) >= 10


@pytest.mark.parametrize(("template", "result"), DOCUMENTED)
def test_documented_examples(template: str, result: str) -> None:
    docs_data: JSONObject = {"a": [1.0, 2.0, 3.0], "s": "hello", "n": 5.0, "o": {"k": "<v>"}}
    if result.startswith("error: "):
        assert bad_command(template, docs_data) == result.removeprefix("error: ").strip("`")
    else:
        assert dumps(evaluate(template, docs_data)) == result.strip("`")


# --------------------------------------------------------------------------- §2.3 structures


def test_maps_and_lists_are_walked() -> None:
    data: JSONObject = {"a": 1.0, "b": 2.0}
    template: JSON = {"x": "jq(.a)", "y": [1.0, "jq(.b)"], "z": None, "w": {"jq(.a)": "k"}}
    assert evaluate(template, data) == {"x": 1, "y": [1.0, 2], "z": None, "w": {"jq(.a)": "k"}}


def test_literal_values_pass_through() -> None:
    template: JSON = {"n": None, "t": True, "f": 1.5, "i": 3, "l": [None, False, []], "m": {}}
    assert evaluate(template) == template
    assert evaluate(None) is None
    assert evaluate([None]) == [None]


def test_results_are_fresh_objects() -> None:
    template = compile_template({"a": [1.0, {"b": "x"}]})
    first = template.evaluate(DATA)
    assert isinstance(first, dict)
    first["a"] = "changed"
    assert template.evaluate(DATA) == {"a": [1.0, {"b": "x"}]}
    assert template.source == {"a": [1.0, {"b": "x"}]}


def test_map_values_are_evaluated_in_sorted_key_order() -> None:
    # The first failing key in sorted order is the one reported.
    detail = bad_command({"b": "jq(.missing)", "a": 'jq(error("first"))'})
    assert detail == "error in 'a': error executing jq query error(\"first\"): first"
    result = evaluate({"b": "jq(.n)", "a": "jq(.s)", "c": 1.0})
    assert isinstance(result, dict)
    assert list(result) == ["a", "b", "c"]


def test_runtime_errors_carry_nested_prefixes() -> None:
    template: JSON = {"outer": [1.0, {"inner": ["ok", "jq(.missing)"]}]}
    assert bad_command(template) == (
        "error in 'outer': error in element 1: error in 'inner': error in element 1: "
        "error in jq query .missing: no results"
    )


# --------------------------------------------------------------------------- §2.5 result rules


@pytest.mark.parametrize(
    ("template", "detail"),
    [
        ("jq(.missing)", "error in jq query .missing: no results"),
        ("jq(null)", "error in jq query null: no results"),
        ("jq(empty)", "error in jq query empty: no results"),
        ("jq(nan)", "error in jq query nan: no results"),
        ("jq(null, 1)", "error in jq query null, 1: no results"),
        ("jq(1, null)", "jq query produced multiple outputs"),
        ("jq(1, 2)", "jq query produced multiple outputs"),
        ("jq(.a[])", "jq query produced multiple outputs"),
        ("x jq(null) y", "error in jq query null: no results"),
        ("x jq(1, 2) y", "jq query produced multiple outputs"),
        ('jq(null, error("late"))', 'error executing jq query null, error("late"): late'),
        ('jq(1, error("late"))', 'error executing jq query 1, error("late"): late'),
        ("jq(.a.b)", 'error executing jq query .a.b: Cannot index array with string ("b")'),
        ('jq(error("boom"))', 'error executing jq query error("boom"): boom'),
        (
            "jq(.s + 1)",
            'error executing jq query .s + 1: string ("hello") and number (1) cannot be added',
        ),
        ("ok jq(.n) then jq(.missing)", "error in jq query .missing: no results"),
    ],
)
def test_result_rules(template: str, detail: str) -> None:
    assert bad_command(template) == detail


def test_infinite_outputs_stop_after_the_second() -> None:
    outcome: list[str] = []

    def run() -> None:
        outcome.append(bad_command("jq(repeat(1))"))

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout=30)
    assert not worker.is_alive(), "jq(repeat(1)) did not stop after its second output"
    assert outcome == ["jq query produced multiple outputs"]


def test_counter_increment_from_null() -> None:
    assert evaluate("jq(.var.x += 1)", {"var": {"x": None}}) == {"var": {"x": 1}}
    assert evaluate("jq(.var.x += 1)", {"var": {"x": 1.0}}) == {"var": {"x": 2}}


def test_snapshot_reuses_its_text() -> None:
    snapshot = Snapshot({"b": 1.0, "a": "<"})
    assert snapshot.text == '{"a":"\\u003c","b":1}'
    assert snapshot.text is snapshot.text
    assert Snapshot([1.0]).text == "{}"
    assert Snapshot(None).text == "{}"
    template = compile_template({"x": "jq(.a)", "y": "jq(.b)"})
    assert template.evaluate(snapshot) == {"x": "<", "y": 1}
    assert repr(snapshot) == "Snapshot({'b': 1.0, 'a': '<'})"


# --------------------------------------------------------------------------- wrappers


def test_null_template_is_not_evaluated() -> None:
    template = compile_template(None)
    assert template.is_null
    assert template.programs == ()
    assert template.evaluate(DATA) is None
    assert template.evaluate_string(DATA) == "<nil>"
    assert not compile_template("").is_null
    assert not compile_template(False).is_null


def test_evaluate_object() -> None:
    assert compile_template("jq(.o)").evaluate_object(DATA) == {"k": "<v>"}
    assert compile_template({"x": "jq(.n)"}).evaluate_object(DATA) == {"x": 5}
    templates: list[JSON] = ["jq(.a)", "jq(.s)", None, "text", [1.0]]
    for template in templates:
        with pytest.raises(CatchableError) as caught:
            compile_template(template).evaluate_object(DATA)
        assert caught.value.code == "direktiv.jq.notObject"
        assert caught.value.message == "the `jq` or `js` command produced a non-object output"
    with pytest.raises(CatchableError) as bad:
        compile_template("jq(.missing)").evaluate_object(DATA)
    assert bad.value.code == "direktiv.jq.badCommand"


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("jq(.s)", "hello"),
        ("jq(.a)", "[1 2 3]"),
        ("jq(.o)", "map[k:<v>]"),
        ("jq(.n)", "5"),
        (1234567.0, "1.234567e+06"),
        ("jq(1234567)", "1234567"),
        (True, "true"),
        ("  text  ", "text"),
    ],
)
def test_evaluate_string_uses_go_v(template: JSON, expected: str) -> None:
    assert compile_template(template).evaluate_string(DATA) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, True),
        (False, False),
        (None, False),
        (0, False),
        (0.0, False),
        (-0.0, False),
        (1, True),
        (-1, True),
        (0.5, True),
        (float("nan"), True),
        ("", False),
        ("false", True),
        ("0", True),
        ([], False),
        ([None], True),
        ({}, False),
        ({"a": None}, True),
    ],
)
def test_truth(value: JSON, expected: bool) -> None:
    assert truth(value) is expected


def test_truth_of_template_results() -> None:
    assert truth(evaluate("jq(.n > 1)"))
    assert not truth(evaluate("jq(.n > 10)"))
    assert not truth(evaluate("jq(.n - 5)"))
    assert truth(evaluate("jq(1)"))


# --------------------------------------------------------------------------- load-time errors


@pytest.mark.parametrize(
    "template",
    ["jq(", "jq(.a", 'jq("(")', "x jq(.a) jq(.b", "jq((.a)", "js(", "text jq(.a | (1)"],
)
def test_missing_bracket(template: str) -> None:
    error = load_error(template)
    opener = "js(" if template.startswith("js(") else "jq("
    assert error.detail == (
        f"jq/js script missing bracket: {template!r} has a '{opener}' without its closing ')'; "
        "add the ')'"
    )
    assert error.expression == template


def test_missing_bracket_reports_the_trimmed_string() -> None:
    error = load_error("  jq(.a  \n")
    assert error.expression == "jq(.a"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (". +", "syntax error, unexpected end of file at line 1, column 3"),
        (".a | foo", "foo/0 is not defined at line 1, column 6"),
        (
            ".a | foo | bar(1)",
            "foo/0 is not defined at line 1, column 6; bar/1 is not defined at line 1, column 12",
        ),
        (
            '"',
            "syntax error, unexpected end of file, expecting QQSTRING_TEXT or "
            "QQSTRING_INTERP_START or QQSTRING_END at line 1, column 1",
        ),
        ("$x", "$x is not defined at line 1, column 1"),
    ],
)
def test_jq_syntax_errors_fail_at_load(body: str, reason: str) -> None:
    error = load_error(f"value: jq({body}) end")
    assert error.detail == f"invalid jq query {body!r}: {reason}; fix the jq expression"
    assert error.expression == body
    assert isinstance(error.__cause__, ValueError)


def test_js_without_the_extra_fails_with_the_install_hint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "py_mini_racer", None)  # import now raises ImportError
    for strict in (True, False):
        with pytest.raises(TemplateSyntaxError) as caught:
            compile_template("x js(return data.a) y", strict=strict)
        assert caught.value.detail == (
            "js() needs a JavaScript engine: 'js(return data.a)' runs on V8, which is not "
            "installed; install it with pip install 'direktiv-sdk[js]'"
        )
        assert caught.value.expression == "return data.a"
        assert caught.value.rule == "J104"


def test_load_errors_carry_nested_prefixes() -> None:
    error = load_error({"b": "ok", "a": [1.0, {"k": "jq(.[)"}]})
    assert error.detail == (
        "error in 'a': error in element 1: error in 'k': invalid jq query '.[': syntax error, "
        "unexpected end of file at line 1, column 2; fix the jq expression"
    )


@pytest.mark.parametrize(
    ("template", "detail", "expression"),
    [
        (
            float("nan"),
            "invalid number nan: JSON has no NaN or Infinity, use a finite number",
            "nan",
        ),
        (
            {"a": [float("inf")]},
            "error in 'a': error in element 0: invalid number inf: JSON has no NaN or "
            "Infinity, use a finite number",
            "inf",
        ),
        ({1: "x"}, "invalid map key 1: template map keys must be strings", "1"),
        (
            {"a": {1, 2}},
            "error in 'a': unexpected type: set ({1, 2}); a template holds only null, booleans, "
            "numbers, strings, lists and maps",
            "{1, 2}",
        ),
        (
            [b"x"],
            "error in element 0: unexpected type: bytes (b'x'); a template holds only null, "
            "booleans, numbers, strings, lists and maps",
            "b'x'",
        ),
    ],
)
def test_values_that_are_not_json_fail_at_load(
    template: object, detail: str, expression: str
) -> None:
    error = load_error(template)  # type: ignore[arg-type]
    assert error.detail == detail
    assert error.expression == expression


def test_template_syntax_error_is_a_value_error() -> None:
    error = load_error("jq(")
    assert isinstance(error, ValueError)
    assert isinstance(error, DirektivError)


def test_compile_error_text() -> None:
    raw = (
        "jq: error: syntax error, unexpected end of file at <top-level>, line 1, column 3:\n"
        "    . +\n      ^\njq: 1 compile error"
    )
    assert compile_error_text(raw) == "syntax error, unexpected end of file at line 1, column 3"
    assert compile_error_text("module not found:\n  a\n") == "module not found: a"


# --------------------------------------------------------------------------- programs and cache


def test_programs_lists_each_program_once_in_evaluation_order() -> None:
    template = compile_template({"b": "jq(.x) jq(.y)", "a": ["jq(.z)", "jq(.x)"], "c": "jq()"})
    assert template.programs == (".z", ".x", ".y", ".")
    assert compile_template("text").programs == ()
    assert repr(compile_template("jq(.a)")) == "Template('jq(.a)')"


def test_cache_counts_hits_and_misses() -> None:
    cache = JqCache()
    template = compile_template("jq(.n)", cache=cache)
    assert (cache.hits, cache.misses, len(cache)) == (0, 1, 1)
    assert template.evaluate(DATA) == 5
    assert template.evaluate(DATA) == 5
    assert (cache.hits, cache.misses) == (2, 1)
    compile_template({"a": "jq(.n)", "b": "jq(.s)"}, cache=cache)
    assert (cache.hits, cache.misses, len(cache)) == (3, 2, 2)
    assert repr(cache) == "JqCache(maxsize=1024, size=2, hits=3, misses=2)"
    cache.clear()
    assert (cache.hits, cache.misses, len(cache)) == (0, 0, 0)
    assert template.evaluate(DATA) == 5  # an evicted program is compiled again
    assert (cache.hits, cache.misses, len(cache)) == (0, 1, 1)


def test_zero_size_cache_compiles_on_every_evaluation() -> None:
    cache = JqCache(0)
    template = compile_template("jq(.n + 1)", cache=cache)
    for _ in range(3):
        assert template.evaluate(DATA) == 6
    assert (cache.hits, cache.misses, len(cache)) == (0, 4, 0)
    assert cache.program(".n") is not cache.program(".n")


def test_cache_is_a_bounded_lru() -> None:
    cache = JqCache(2)
    cache.program(".a")
    cache.program(".b")
    cache.program(".a")  # .a is now the most recent
    cache.program(".c")
    assert len(cache) == 2
    assert ".a" in cache
    assert ".b" not in cache
    assert ".c" in cache
    assert cache.program(".a") is cache.program(".a")


def test_compile_errors_are_not_cached() -> None:
    cache = JqCache()
    with pytest.raises(ValueError, match=re.escape("syntax error")):
        cache.program(". +")
    assert (cache.misses, len(cache)) == (1, 0)


@pytest.mark.parametrize("maxsize", [-1, 1.5, True, "10"])
def test_cache_size_must_be_a_natural_number(maxsize: object) -> None:
    message = f"invalid JqCache maxsize {maxsize!r}: use an int >= 0 (0 disables caching)"
    with pytest.raises(ValueError, match=re.escape(message)):
        JqCache(maxsize)  # type: ignore[arg-type]


def test_default_cache_is_used_without_a_cache() -> None:
    before = DEFAULT_CACHE.hits + DEFAULT_CACHE.misses
    compile_template("jq(.default_cache_probe)")
    assert DEFAULT_CACHE.hits + DEFAULT_CACHE.misses == before + 1
    assert ".default_cache_probe" in DEFAULT_CACHE


def _hammer(cache: JqCache, threads: int, rounds: int) -> None:
    """Evaluate five templates sharing ``cache`` from several threads; check every result."""
    templates = [compile_template(f"jq(.v * {k} + {k})", cache=cache) for k in range(5)]
    failures: list[str] = []
    barrier = threading.Barrier(threads, timeout=30)

    def work(thread: int) -> None:
        barrier.wait()
        for round_ in range(rounds):
            value = float(thread * 1000 + round_)
            snapshot = Snapshot({"v": value})
            for k, template in enumerate(templates):
                result = template.evaluate(snapshot)
                if result != value * k + k:
                    failures.append(f"thread {thread}: {result!r} != {value * k + k!r}")

    workers = [threading.Thread(target=work, args=(n,), daemon=True) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert not any(worker.is_alive() for worker in workers)
    assert failures == []
    assert cache.hits + cache.misses == 5 + threads * rounds * 5


def test_templates_evaluate_from_many_threads() -> None:
    cache = JqCache()
    _hammer(cache, threads=8, rounds=100)
    assert cache.misses == 5


def test_threads_race_on_eviction() -> None:
    cache = JqCache(2)  # smaller than the five programs: nearly every evaluation compiles
    _hammer(cache, threads=4, rounds=10)
    assert len(cache) == 2
