"""Go-JSON and Go-%v: the two ways Direktiv's Go engine turns values into text.

Number model used by the whole project: a Python ``float`` is a Go ``float64`` (every number that
came from JSON or YAML), a Python ``int`` is a Go ``int`` (integer results of jq arithmetic).

* :func:`dumps` / :func:`dumps_indent` reproduce Go 1.21's ``encoding/json`` ``Marshal`` /
  ``MarshalIndent(v, "", "  ")``: compact, keys sorted by byte order, HTML-safe escapes, integral
  floats without ``.0``, plain decimals for ``1e-6 <= |x| < 1e21`` and exponent form otherwise.
* :func:`loads` is Go's strict decoder into ``interface{}``: every number becomes a float, no
  NaN/Infinity, no trailing data, invalid UTF-8 and lone surrogates become U+FFFD.
* :func:`format_v` is Go's ``fmt`` ``%v`` (``fmt.Sprint``): ``<nil>``, ``[1 2]``, ``map[a:1]``,
  shortest ``%g`` floats (``1.234567e+06``).

:func:`dumps` takes the C encoder of :mod:`json` whenever every float prints the same in Python and
Go (after turning integral floats below 2**53 into ints); a pure-Python encoder handles the rest.
"""

from __future__ import annotations

import codecs
import json
import math
import re
from collections.abc import Callable, Iterable
from json.encoder import encode_basestring
from typing import Any, Final, TypeAlias

from direktiv_sdk.errors import NestingTooDeepError

__all__ = [
    "JSON",
    "MAX_DEPTH",
    "JSONObject",
    "check_depth",
    "dumps",
    "dumps_indent",
    "format_number",
    "format_v",
    "loads",
]

JSON: TypeAlias = bool | int | float | str | list["JSON"] | dict[str, "JSON"] | None
"""A JSON value: ``float`` is Go's float64, ``int`` is Go's int."""

JSONObject: TypeAlias = dict[str, JSON]
"""A JSON object (Go ``map[string]interface{}``)."""

_EXACT = float(2**53)
"""Integral floats below this print the same as ``int(x)``; above it the digits differ."""

# Escapes Python's encoder writes differently from Go 1.21 (which has no \b or \f short forms and
# escapes HTML characters); a lone surrogate cannot be UTF-8, so it becomes the escaped U+FFFD
# Go writes for invalid UTF-8. `\\\\` is matched only to step over escaped backslashes.
_FIX_PATTERN = re.compile("\\\\[\\\\bf]|[<>&\u2028\u2029\ud800-\udfff]")
_FIXES = {
    "\\\\": "\\\\",
    "\\b": "\\u0008",
    "\\f": "\\u000c",
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}


def _fix_escape(match: re.Match[str]) -> str:
    return _FIXES.get(match.group(), "\\ufffd")


_NEEDS_FIX = re.compile("[\\\\<>&\u2028\u2029\ud800-\udfff]")


def _go_escapes(text: str) -> str:
    # Cheap checks first: most texts need no fix, and four `in` scans beat one regex pass.
    if text.isascii():
        if "\\" not in text and "<" not in text and ">" not in text and "&" not in text:
            return text
    elif _NEEDS_FIX.search(text) is None:
        return text
    return _FIX_PATTERN.sub(_fix_escape, text)


def _make_c_encoder() -> Callable[[object, int], Iterable[str]]:
    """Return the C encoder's chunk iterator (compact, sorted keys): ``"".join(f(value, 0))``."""
    c_make_encoder = getattr(json.encoder, "c_make_encoder", None)
    if c_make_encoder is None:  # pragma: no cover - CPython always has the C accelerator
        encoder = json.JSONEncoder(
            ensure_ascii=False, separators=(",", ":"), sort_keys=True, allow_nan=False
        )
        return lambda value, _level: encoder.iterencode(value)
    return c_make_encoder(  # type: ignore[no-any-return]
        None, _unsupported, encode_basestring, None, ":", ",", True, False, False
    )


def _unsupported(value: object) -> object:
    raise TypeError(
        f"cannot encode {value!r} of type {type(value).__name__} as JSON: "
        "use None, bool, int, float, str, list or dict"
    )


def _non_finite(value: float) -> ValueError:
    return ValueError(
        f"cannot encode {value!r} as JSON: JSON has no NaN or Infinity, replace it with a finite "
        "number or null"
    )


class _GoFloatNeededError(Exception):
    """A float prints differently in Python and Go: take the pure-Python encoder."""


def _canonical(value: Any) -> Any:
    """Return ``value`` with integral floats below 2**53 as ints, or raise _GoFloatNeededError."""
    kind = type(value)
    if kind is dict:
        out = {}
        for key, item in value.items():
            if type(key) is not str:
                raise _bad_key(key)
            item_kind = type(item)
            # Inline the common leaves: this walk is most of the cost of dumps().
            if item_kind is str or item is None or item_kind is bool or item_kind is int:
                out[key] = item
            elif item_kind is float:
                out[key] = _canonical_float(item)
            else:
                out[key] = _canonical(item)
        return out
    if kind is float:
        return _canonical_float(value)
    if kind is list or kind is tuple:
        return [item if type(item) is str or item is None else _canonical(item) for item in value]
    return value


def _canonical_float(value: float) -> float | int:
    if value.is_integer():
        if -_EXACT < value < _EXACT and (value or math.copysign(1.0, value) > 0):
            return int(value)
        if 1e21 <= abs(value) < math.inf:
            return value
        raise _GoFloatNeededError
    if 1e-4 <= abs(value) < math.inf:
        return value  # non-integral floats are < 2**52: repr is plain decimal, as in Go
    if math.isfinite(value):
        raise _GoFloatNeededError
    raise _non_finite(value)


def _bad_key(key: object) -> TypeError:
    return TypeError(f"cannot encode object key {key!r} as JSON: object keys must be str")


_c_encode = _make_c_encoder()


def dumps(value: JSON) -> str:
    """Encode ``value`` as Go's ``json.Marshal`` would (compact, sorted keys, HTML-safe).

    Raises:
        ValueError: ``value`` holds NaN or an infinity.
        TypeError: ``value`` holds something that is not JSON.
    """
    try:
        canonical = _canonical(value)
    except _GoFloatNeededError:
        parts: list[str] = []
        _encode(value, parts, None, "")
        return _go_escapes("".join(parts))
    return _go_escapes("".join(_c_encode(canonical, 0)))


def dumps_indent(value: JSON) -> str:
    """Encode ``value`` as Go's ``json.MarshalIndent(value, "", "  ")`` would."""
    parts: list[str] = []
    _encode(value, parts, "  ", "\n")
    return _go_escapes("".join(parts))


def _encode(value: object, parts: list[str], indent: str | None, newline: str) -> None:
    """Append the Go-JSON of ``value`` to ``parts``; ``newline`` carries the current indent."""
    if value is None:
        parts.append("null")
    elif value is True:
        parts.append("true")
    elif value is False:
        parts.append("false")
    elif isinstance(value, str):
        parts.append(encode_basestring(value))
    elif isinstance(value, int):
        parts.append(int.__repr__(value))
    elif isinstance(value, float):
        parts.append(format_number(value))
    elif isinstance(value, dict):
        if not value:
            parts.append("{}")
            return
        for key in value:
            if type(key) is not str:
                raise _bad_key(key)
        inner = newline + indent if indent is not None else ""
        separator = ": " if indent is not None else ":"
        parts.append("{")
        for index, key in enumerate(sorted(value)):
            parts.append(f",{inner}" if index else inner)
            parts.append(encode_basestring(key))
            parts.append(separator)
            _encode(value[key], parts, indent, inner)
        parts.append(newline + "}" if indent is not None else "}")
    elif isinstance(value, list | tuple):
        if not value:
            parts.append("[]")
            return
        inner = newline + indent if indent is not None else ""
        parts.append("[")
        for index, item in enumerate(value):
            parts.append(f",{inner}" if index else inner)
            _encode(item, parts, indent, inner)
        parts.append(newline + "]" if indent is not None else "]")
    else:
        _unsupported(value)


def _digits(x: float) -> tuple[str, int]:
    """Return the shortest round-trip digits of ``x > 0`` and the decimal point position.

    ``x == 0.d1d2d3... * 10**point``; the digits carry no trailing zeros.
    """
    text = repr(x)
    mantissa, _, exponent = text.partition("e")
    whole, _, fraction = mantissa.partition(".")
    if exponent:
        point = int(exponent) + len(whole)
        digits = whole + fraction
    elif whole == "0":
        significant = fraction.lstrip("0")
        point = len(significant) - len(fraction)
        digits = significant
    else:
        point = len(whole)
        digits = whole + fraction
    return digits.rstrip("0"), point


def _plain(digits: str, point: int) -> str:
    if point <= 0:
        return "0." + "0" * -point + digits
    if point >= len(digits):
        return digits + "0" * (point - len(digits))
    return f"{digits[:point]}.{digits[point:]}"


def _exponent(digits: str, point: int, *, pad: bool) -> str:
    mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    exp = point - 1
    sign = "-" if exp < 0 else "+"
    # Go's %e writes at least two exponent digits; encoding/json turns e-07 back into e-7.
    width = 2 if pad or exp >= 0 else 1
    return f"{mantissa}e{sign}{abs(exp):0{width}d}"


def format_number(value: int | float) -> str:
    """Return the Go-JSON text of a number (``1``, ``1.5``, ``1e-7``, ``1e+21``).

    Raises:
        ValueError: ``value`` is NaN or an infinity.
    """
    if not isinstance(value, float):
        return int.__repr__(value)
    if not math.isfinite(value):
        raise _non_finite(value)
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    sign = "-" if value < 0 else ""
    magnitude = abs(value)
    digits, point = _digits(magnitude)
    if 1e-6 <= magnitude < 1e21:
        return sign + _plain(digits, point)
    return sign + _exponent(digits, point, pad=False)


def _format_float_v(value: float) -> str:
    """Return Go's ``%v`` of a float64: shortest ``%g``, exponent form below 1e-4 or from 1e6."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    sign = "-" if value < 0 else ""
    digits, point = _digits(abs(value))
    exp = point - 1
    if exp < -4 or exp >= 6:
        return sign + _exponent(digits, point, pad=True)
    return sign + _plain(digits, point)


def format_v(value: JSON) -> str:
    """Format ``value`` as Go's ``fmt.Sprint`` / ``%v`` would."""
    if value is None:
        return "<nil>"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        return _format_float_v(value)
    if isinstance(value, dict):
        items = " ".join(f"{key}:{format_v(value[key])}" for key in sorted(value))
        return f"map[{items}]"
    if isinstance(value, list | tuple):
        return "[" + " ".join(format_v(item) for item in value) + "]"
    raise TypeError(
        f"cannot format {value!r} of type {type(value).__name__}: "
        "use None, bool, int, float, str, list or dict"
    )


# --------------------------------------------------------------------------- decoding


def _replace_per_byte(error: UnicodeError) -> tuple[str, int]:
    # Go's decoder replaces every invalid byte by its own U+FFFD (utf8.DecodeRune consumes one
    # byte of a broken sequence); Python's "replace" would merge a truncated sequence into one.
    if not isinstance(error, UnicodeDecodeError):  # pragma: no cover - registered for decoding
        raise error
    return "\ufffd" * (error.end - error.start), error.end


_ERRORS = "direktiv-sdk-gojson-replace"
codecs.register_error(_ERRORS, _replace_per_byte)

_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89abcdefABCDEF]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _finite_number(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"JSON number {text} is out of the float64 range")
    return value


def _no_constant(name: str) -> float:
    raise ValueError(f"invalid JSON value {name!r}: JSON has no NaN or Infinity")


_decoder = json.JSONDecoder(
    parse_float=_finite_number, parse_int=_finite_number, parse_constant=_no_constant
)


def _replace_surrogates(value: JSON) -> JSON:
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {_SURROGATE.sub("\ufffd", k): _replace_surrogates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace_surrogates(item) for item in value]
    return value


MAX_DEPTH: Final = 512
"""How deep a decoded value may nest. Go's decoder allows 10000; Python's recursion (the C
decoder, jq's conversion, every walk over a value) does not, so deeper values are refused with
:class:`~direktiv_sdk.errors.NestingTooDeepError` instead of failing later with a
``RecursionError``."""

_NESTING: Final = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def check_depth(text: str, limit: int = MAX_DEPTH) -> None:
    """Raise :class:`NestingTooDeepError` if the JSON ``text`` nests deeper than ``limit``."""
    if text.count("[") + text.count("{") <= limit:
        return  # cannot be deeper: no scan needed (the common case)
    depth = 0
    for match in _NESTING.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > limit:
                raise NestingTooDeepError(limit, match.start())
        elif token in "]}":
            depth -= 1


def loads(data: bytes | str) -> JSON:
    """Decode JSON as Go's ``json.Unmarshal`` into ``interface{}`` would; numbers become floats.

    Raises:
        NestingTooDeepError: It nests deeper than :data:`MAX_DEPTH` (a ``ValueError``).
        ValueError: ``data`` is not exactly one JSON value (``json.JSONDecodeError`` for syntax).
    """
    text = data.decode("utf-8", _ERRORS) if isinstance(data, bytes | bytearray) else data
    check_depth(text)
    value: JSON = _decoder.decode(text)
    if _SURROGATE_ESCAPE.search(text):
        value = _replace_surrogates(value)
    return value
