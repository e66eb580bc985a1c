"""Go-JSON (spec §0.1) and Go-%v (spec §0.2), checked against the outputs Go 1.21 gives."""

from __future__ import annotations

import json
import math
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from direktiv_sdk.expr.gojson import JSON, dumps, dumps_indent, format_number, format_v, loads

BELOW_1E21 = math.nextafter(1e21, 0)
BELOW_1E_6 = math.nextafter(1e-6, 0)

# --------------------------------------------------------------------------- numbers


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1.0, "1"),
        (1.5, "1.5"),
        (-1.5, "-1.5"),
        (0.1, "0.1"),
        (100.0, "100"),
        (123.456, "123.456"),
        (1000000.0, "1000000"),
        (1e-7, "1e-7"),
        (-1.5e-7, "-1.5e-7"),
        (1e-10, "1e-10"),
        (1e-6, "0.000001"),
        (BELOW_1E_6, "9.999999999999997e-7"),
        (0.00001, "0.00001"),
        (0.000015, "0.000015"),
        (0.0001, "0.0001"),
        (1e16, "10000000000000000"),
        (1e20, "100000000000000000000"),
        (1.2345678901234567e20, "123456789012345670000"),
        (BELOW_1E21, "999999999999999900000"),
        (1e21, "1e+21"),
        (-1e21, "-1e+21"),
        (1.5e300, "1.5e+300"),
        (2.0**53, "9007199254740992"),
        (2.0**53 + 2, "9007199254740994"),
        (-(2.0**53) + 1, "-9007199254740991"),
        (5e-324, "5e-324"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
        (0.0, "0"),
        (-0.0, "-0"),
        (0, "0"),
        (-5, "-5"),
        (10**30, "1000000000000000000000000000000"),
        (2**63, "9223372036854775808"),
    ],
)
def test_numbers_print_as_go_json(value: int | float, expected: str) -> None:
    assert format_number(value) == expected
    assert dumps(value) == expected
    assert dumps([value]) == f"[{expected}]"
    assert dumps({"n": value, "s": "x"}) == f'{{"n":{expected},"s":"x"}}'


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_numbers_are_not_json(value: float) -> None:
    message = (
        f"cannot encode {value!r} as JSON: JSON has no NaN or Infinity, replace it with a finite "
        "number or null"
    )
    wrapped_values: list[JSON] = [value, [value], {"a": [1.0, value]}, [1e-7, value]]
    for wrapped in wrapped_values:
        with pytest.raises(ValueError, match=re.escape(message)):
            dumps(wrapped)
    with pytest.raises(ValueError, match=re.escape(message)):
        dumps_indent({"a": value})
    with pytest.raises(ValueError, match=re.escape(message)):
        format_number(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (123456.0, "123456"),
        (1234567.0, "1.234567e+06"),
        (1e6, "1e+06"),
        (999999.0, "999999"),
        (0.00001, "1e-05"),
        (0.0001, "0.0001"),
        (0.000123, "0.000123"),
        (1e-7, "1e-07"),
        (5.0, "5"),
        (1.5, "1.5"),
        (-2.5, "-2.5"),
        (1e21, "1e+21"),
        (1.5e300, "1.5e+300"),
        (123456.7, "123456.7"),
        (0.0, "0"),
        (-0.0, "-0"),
        (math.nan, "NaN"),
        (math.inf, "+Inf"),
        (-math.inf, "-Inf"),
        (1234567, "1234567"),
        (10**20, "100000000000000000000"),
        (None, "<nil>"),
        (True, "true"),
        (False, "false"),
        ("text with  spaces", "text with  spaces"),
        ("<&>", "<&>"),
        ([], "[]"),
        ({}, "map[]"),
        ([1.0, 2.0, 3.0], "[1 2 3]"),
        (["a", None, True], "[a <nil> true]"),
        ({"b": "x", "a": 1.0}, "map[a:1 b:x]"),
        (
            {"a": [None, {"k": []}], "b": {"c": 1234567.0}},
            "map[a:[<nil> map[k:[]]] b:map[c:1.234567e+06]]",
        ),
    ],
)
def test_format_v_is_go_sprint(value: JSON, expected: str) -> None:
    assert format_v(value) == expected


def test_format_v_rejects_non_json() -> None:
    message = "cannot format {1} of type set: use None, bool, int, float, str, list or dict"
    with pytest.raises(TypeError, match=re.escape(message)):
        format_v({1})  # type: ignore[arg-type]


# --------------------------------------------------------------------------- strings and layout


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("<a href=x>&amp;</a>", r'"\u003ca href=x\u003e\u0026amp;\u003c/a\u003e"'),
        ("line\u2028para\u2029", r'"line\u2028para\u2029"'),
        ("\n\r\t", r'"\n\r\t"'),
        ("\b\f", r'"\u0008\u000c"'),
        ("\x00\x01\x1f", r'"\u0000\u0001\u001f"'),
        ("\x7f", '"\x7f"'),
        ('quote " backslash \\', r'"quote \" backslash \\"'),
        ("\\b\\f\\n", r'"\\b\\f\\n"'),
        ("\\\b", r'"\\\u0008"'),
        ("/", '"/"'),
        ("é ü 日本 😀", '"é ü 日本 😀"'),
        ("\ud800 lone", r'"\ufffd lone"'),
        ("\udc00\ud83d", r'"\ufffd\ufffd"'),
        ("", '""'),
    ],
)
def test_strings_use_go_escapes(value: str, expected: str) -> None:
    assert dumps(value) == expected
    assert dumps([value, 1e-7]) == f"[{expected},1e-7]"  # the pure-Python path escapes the same


def test_keys_are_sorted_by_byte_order() -> None:
    value: dict[str, JSON] = {
        "😀": 1.0,
        "\uffff": 2.0,
        "é": 3.0,
        "z": 4.0,
        "a": 5.0,
        "Z": 6.0,
        "": 7.0,
        "a<": 8.0,
    }
    expected = '{"":7,"Z":6,"a":5,"a\\u003c":8,"z":4,"é":3,"\uffff":2,"😀":1}'
    assert dumps(value) == expected
    assert dumps({**value, "tiny": 1e-7}).replace(',"tiny":1e-7', "") == expected


def test_nested_values_use_both_encoders_alike() -> None:
    value: dict[str, JSON] = {"b": [1.0, {"y": None, "x": True}], "a": {"s": "<>", "e": []}}
    value["c"] = {}
    expected = '{"a":{"e":[],"s":"\\u003c\\u003e"},"b":[1,{"x":true,"y":null}],"c":{}}'
    assert dumps(value) == expected
    slow = dumps({"z": 1e-7, **value})  # one float Python prints differently forces the pure path
    assert slow == expected[:-1] + ',"z":1e-7}'


def test_dumps_indent_is_go_marshal_indent() -> None:
    value: JSON = {"b": [1.0, 2.5, {}], "a": {"x": [], "y": "<"}, "c": 1e-7}
    assert dumps_indent(value) == (
        "{\n"
        '  "a": {\n'
        '    "x": [],\n'
        '    "y": "\\u003c"\n'
        "  },\n"
        '  "b": [\n'
        "    1,\n"
        "    2.5,\n"
        "    {}\n"
        "  ],\n"
        '  "c": 1e-7\n'
        "}"
    )
    assert dumps_indent([]) == "[]"
    assert dumps_indent({}) == "{}"
    assert dumps_indent("x") == '"x"'
    assert dumps_indent(None) == "null"


@pytest.mark.parametrize("encode", [dumps, dumps_indent])
def test_non_json_values_are_type_errors(encode: object) -> None:
    assert callable(encode)
    message = "cannot encode {1} of type set as JSON: use None, bool, int, float, str, list or dict"
    with pytest.raises(TypeError, match=re.escape(message)):
        encode({"a": {1}})
    with pytest.raises(TypeError, match=re.escape(message)):
        encode([1e-7, {1}])
    key_message = "cannot encode object key 1 as JSON: object keys must be str"
    with pytest.raises(TypeError, match=re.escape(key_message)):
        encode({1: "x"})
    with pytest.raises(TypeError, match=re.escape(key_message)):
        encode({"a": 1e-7, 1: "x"})


def test_tuples_encode_as_arrays() -> None:
    assert dumps((1.0, "a")) == '[1,"a"]'  # type: ignore[arg-type]
    assert dumps((1e-7,)) == "[1e-7]"  # type: ignore[arg-type]


# --------------------------------------------------------------------------- decoding


def test_loads_makes_every_number_a_float() -> None:
    value = loads(b'{"a": 1, "b": [2, -0, 1.5e3, 12345678901234567890], "c": {"d": 0}}')
    assert value == {"a": 1.0, "b": [2.0, -0.0, 1500.0, 1.2345678901234567e19], "c": {"d": 0.0}}
    assert isinstance(value, dict)
    b = value["b"]
    assert isinstance(b, list)
    assert all(type(number) is float for number in b)
    assert math.copysign(1.0, b[1]) == -1.0  # type: ignore[arg-type]
    assert type(loads("7")) is float


def test_loads_keeps_the_last_duplicate_key() -> None:
    assert loads('{"a": 1, "a": 2}') == {"a": 2.0}


def _stdlib_message(data: str) -> str:
    try:
        json.loads(data)
    except json.JSONDecodeError as error:
        return str(error)
    raise AssertionError(f"{data!r} is valid JSON")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("NaN", "invalid JSON value 'NaN': JSON has no NaN or Infinity"),
        ('{"a": Infinity}', "invalid JSON value 'Infinity': JSON has no NaN or Infinity"),
        ("[-Infinity]", "invalid JSON value '-Infinity': JSON has no NaN or Infinity"),
        ("1e400", "JSON number 1e400 is out of the float64 range"),
        ("-1" + "0" * 400, "JSON number -1" + "0" * 400 + " is out of the float64 range"),
        ("[1] [2]", "Extra data: line 1 column 5 (char 4)"),
        ('{"a": 1} x', "Extra data: line 1 column 10 (char 9)"),
        ("", "Expecting value: line 1 column 1 (char 0)"),
        ("\ufeff{}", "Expecting value: line 1 column 1 (char 0)"),
        (b"\xef\xbb\xbf{}", "Expecting value: line 1 column 1 (char 0)"),
        ('"a\nb"', "Invalid control character at: line 1 column 3 (char 2)"),
        ("{'a': 1}", "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
        # The standard library's own words, which Python 3.13 changed ("Illegal trailing comma").
        ("[1,]", _stdlib_message("[1,]")),
    ],
)
def test_loads_is_strict(data: str | bytes, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        loads(data)


def test_loads_accepts_surrounding_whitespace() -> None:
    assert loads(" \t\r\n[1]\n ") == [1.0]


def test_loads_replaces_invalid_utf8_byte_by_byte() -> None:
    # Go's decoder writes one U+FFFD per invalid byte, also inside a truncated sequence.
    assert loads(b'["a\xffb", "\xe2\x82A", "\xed\xa0\x80"]') == [
        "a\ufffdb",
        "\ufffd\ufffdA",
        "\ufffd\ufffd\ufffd",
    ]
    assert loads(b'{"\xc3": "\xc3\xa9"}') == {"\ufffd": "é"}


def test_loads_replaces_lone_surrogate_escapes() -> None:
    assert loads(r'["\ud800", "x\uDC00y", "\ud83d\ude00", "\ud800\u0041"]') == [
        "\ufffd",
        "x\ufffdy",
        "😀",
        "\ufffdA",
    ]
    assert loads(r'{"k\ud800": {"v": ["\udfff"]}}') == {"k\ufffd": {"v": ["\ufffd"]}}
    # An escaped backslash before "ud800" is plain text, not an escape.
    assert loads(r'["\\ud800"]') == ["\\ud800"]


# --------------------------------------------------------------------------- properties

_numbers = st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(2**53), 2**53)
_json: st.SearchStrategy[JSON] = st.recursive(
    st.none() | st.booleans() | _numbers | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=20,
)


def _as_floats(value: JSON) -> JSON:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, list):
        return [_as_floats(item) for item in value]
    return {key: _as_floats(item) for key, item in value.items()}


@given(_json)
def test_dumps_then_loads_gives_the_float_canonical_value(value: JSON) -> None:
    text = dumps(value)
    assert loads(text) == _as_floats(value)
    assert loads(text.encode()) == _as_floats(value)
    assert dumps(loads(text)) == text
    assert json.loads(text) == json.loads(dumps_indent(value))
    assert all(ch not in text for ch in "<>&\u2028\u2029")


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_float_text_is_shortest_round_trip_in_go_form(value: float) -> None:
    text = format_number(value)
    assert float(text) == value
    magnitude = abs(value)
    if magnitude == 0 or 1e-6 <= magnitude < 1e21:
        assert re.fullmatch(r"-?\d+(\.\d*[1-9])?", text), text
    else:
        assert re.fullmatch(r"-?\d(\.\d*[1-9])?e[-+]\d+", text), text
        assert not re.search(r"e-0", text)
    # same significant digits as Python's shortest repr
    digits = re.sub(r"e.*|[-.]", "", repr(value)).strip("0")
    assert re.sub(r"e.*|[-.]", "", text).strip("0") == digits
