"""Go's ``fmt.Sprintf`` for JSON values: how the ``error`` state formats its message.

The error state uses its evaluated message as a Go format string with the evaluated ``args``
(§8.2), so a ``%`` in a message without args yields Go's ``%!...`` markers (``100%`` →
``100%!(NOVERB)``). Values are Go's view of JSON: ``str`` = string, ``float`` = float64,
``int`` = int (jq integer results), ``bool``, ``None`` = nil, ``list`` = ``[]interface {}``,
``dict`` = ``map[string]interface {}``. Supported: every verb Go accepts for those types, flags
``+ - # 0`` and space, width, precision, ``*`` and explicit argument indexes ``%[n]d``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from direktiv_sdk.expr.gojson import JSON

__all__ = ["go_type", "sprintf"]

_TYPES: Final = {
    str: "string",
    bool: "bool",
    float: "float64",
    int: "int",
    list: "[]interface {}",
    dict: "map[string]interface {}",
}


def go_type(value: JSON) -> str:
    """Return the Go type name ``%T`` prints for ``value``."""
    if value is None:
        return "<nil>"
    return _TYPES[type(value)]


class _Spec:
    __slots__ = ("minus", "plus", "prec", "sharp", "space", "width", "zero")

    def __init__(self) -> None:
        self.plus = self.minus = self.sharp = self.space = self.zero = False
        self.width: int | None = None
        self.prec: int | None = None


def _pad(text: str, spec: _Spec, *, zeros: bool = False) -> str:
    if spec.width is None or len(text) >= spec.width:
        return text
    fill = spec.width - len(text)
    if spec.minus:
        return text + " " * fill
    if zeros and spec.zero:
        sign = text[:1] if text[:1] in "+- " else ""
        return sign + "0" * fill + text[len(sign) :]
    return " " * fill + text


def _quote(text: str) -> str:
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch in "\a\b\f\n\r\t\v":
            out.append("\\" + "abfnrtv"["\a\b\f\n\r\t\v".index(ch)])
        elif ch == "\ufffd" or ch.isprintable() or ch == " ":
            out.append(ch)
        elif code < 0x80:
            out.append(f"\\x{code:02x}")
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


def _fmt_string(value: str, verb: str, spec: _Spec) -> str | None:
    if spec.prec is not None:
        value = value[: spec.prec]
    if verb in "vs":
        if verb == "v" and spec.sharp:
            return _pad(_quote(value), spec)
        return _pad(value, spec, zeros=True)
    if verb == "q":
        if spec.sharp and "`" not in value and all(c.isprintable() or c == "\t" for c in value):
            return _pad(f"`{value}`", spec)
        return _pad(_quote(value), spec)
    if verb in "xX":
        data = value.encode("utf-8", "surrogatepass")
        digits = "0123456789abcdef" if verb == "x" else "0123456789ABCDEF"
        prefix = ("0x" if verb == "x" else "0X") if spec.sharp else ""
        parts = [prefix + digits[b >> 4] + digits[b & 15] for b in data]
        text = (" " if spec.space else "").join(parts)
        if not spec.space and spec.sharp and parts:
            text = prefix + "".join(p[len(prefix) :] for p in parts)
        return _pad(text, spec)
    return None


def _fmt_int(value: int, verb: str, spec: _Spec) -> str | None:
    if verb == "c":
        return _pad(chr(value) if 0 <= value <= 0x10FFFF else "\ufffd", spec)
    if verb == "q":
        return _pad(
            "'" + _quote(chr(value) if 0 <= value <= 0x10FFFF else "\ufffd")[1:-1] + "'", spec
        )
    if verb == "U":
        text = f"U+{value:04X}" if value >= 0 else f"U+{value & (2**64 - 1):04X}"
        if spec.sharp and 0 <= value <= 0x10FFFF and chr(value).isprintable():
            text += f" '{chr(value)}'"
        return _pad(text, spec)
    bases = {"v": 10, "d": 10, "b": 2, "o": 8, "O": 8, "x": 16, "X": 16}
    if verb not in bases:
        return None
    base = bases[verb]
    digits = format(abs(value), {10: "d", 2: "b", 8: "o", 16: "x"}[base])
    if verb == "X":
        digits = digits.upper()
    if spec.prec is not None:
        digits = "" if spec.prec == 0 and value == 0 else digits.rjust(spec.prec, "0")
    prefix = ""
    if verb == "O":
        prefix = "0o"
    elif spec.sharp:
        prefix = {2: "0b", 8: "0", 16: "0x" if verb == "x" else "0X"}.get(base, "")
        if base == 8 and digits.startswith("0"):
            prefix = ""
    sign = "-" if value < 0 else "+" if spec.plus else " " if spec.space else ""
    body = prefix + digits
    if spec.zero and not spec.minus and spec.prec is None and spec.width is not None:
        body = body.rjust(spec.width - len(sign), "0")
    return _pad(sign + body, spec)


def _shortest(value: float) -> tuple[str, int]:
    """Return the shortest round-trip digits of ``|value|`` and the decimal point position."""
    text = repr(abs(value))
    mantissa, _, exponent = text.partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = (whole + fraction).lstrip("0") or "0"
    point = len(whole) + (int(exponent) if exponent else 0)
    if whole == "0":
        point -= len(fraction) - len(fraction.lstrip("0"))
    digits = digits.rstrip("0") or "0"
    return digits, point


def _fmt_float(value: float, verb: str, spec: _Spec) -> str | None:
    if verb == "v":
        verb = "g"
    if verb not in "bgGxXfFeE":
        return None
    if math.isinf(value) or math.isnan(value):
        text = "NaN" if math.isnan(value) else ("+Inf" if value > 0 else "-Inf")
        if value > 0 and not spec.plus:
            text = " Inf" if spec.space else "Inf"
        return _pad(text, spec)
    negative = math.copysign(1.0, value) < 0
    magnitude = abs(value)
    if verb == "b":
        mantissa, exponent = math.frexp(magnitude)
        body = f"{int(mantissa * 2**53)}p{exponent - 53:+d}" if magnitude else "0p-1074"
    elif verb in "xX":
        body = _hex_float(magnitude, spec.prec)
        if verb == "X":
            body = body.upper()
    elif verb in "fF":
        body = format(magnitude, f".{6 if spec.prec is None else spec.prec}f")
    elif verb in "eE":
        body = format(magnitude, f".{6 if spec.prec is None else spec.prec}e")
    elif spec.prec is None:
        digits, point = _shortest(magnitude)
        exp = point - 1
        if magnitude and (exp < -4 or exp >= 6):
            body = digits[0] + ("." + digits[1:] if len(digits) > 1 else "") + f"e{exp:+03d}"
        else:
            body = "0" if magnitude == 0 else _plain(digits, point)
    else:
        body = format(magnitude, f".{spec.prec or 1}g")
        if "e" in body:
            mant, _, exp_text = body.partition("e")
            body = f"{mant}e{int(exp_text):+03d}"
    if verb in {"G", "E"}:
        body = body.upper()
    if spec.sharp and verb not in "bxX" and "." not in body:
        split = body.lower().find("e")
        body = body + "." if split < 0 else body[:split] + "." + body[split:]
    sign = "-" if negative else "+" if spec.plus else " " if spec.space else ""
    text = sign + body
    if spec.zero and not spec.minus and spec.width is not None:
        text = sign + body.rjust(spec.width - len(sign), "0")
    return _pad(text, spec)


def _plain(digits: str, point: int) -> str:
    if point <= 0:
        return "0." + "0" * -point + digits
    if point >= len(digits):
        return digits + "0" * (point - len(digits))
    return digits[:point] + "." + digits[point:]


def _hex_float(magnitude: float, prec: int | None) -> str:
    if magnitude == 0:
        return "0x0" + ("." + "0" * prec if prec else "") + "p+00"
    mantissa, _, exponent = magnitude.hex()[2:].partition("p")
    whole, _, fraction = mantissa.partition(".")
    exp = int(exponent)
    if whole == "0":  # subnormal: normalise to 1.xxx like Go
        bits = int(fraction, 16)
        shift = bits.bit_length() - 1
        exp -= 52 - shift
        fraction = format((bits - (1 << shift)) << (52 - shift), "013x")
    fraction = fraction.rstrip("0")
    if prec is not None:
        fraction = (
            (fraction + "0" * prec)[:prec] if prec >= len(fraction) else _round_hex(fraction, prec)
        )
    return "0x1" + ("." + fraction if fraction else "") + f"p{exp:+03d}"


def _round_hex(fraction: str, prec: int) -> str:
    value = int(fraction, 16)
    drop = 4 * (len(fraction) - prec)
    rounded = (value + (1 << (drop - 1))) >> drop
    return format(rounded, f"0{prec}x")[-prec:] if prec else ""


def _format(value: JSON, verb: str, spec: _Spec, depth: int) -> str:
    if verb == "T":
        return _pad(go_type(value), spec)
    if value is None:
        if verb == "v" or depth > 0:
            return _pad("<nil>", spec)
        return f"%!{verb}(<nil>)"
    if isinstance(value, list):
        if verb == "p":
            return _bad(verb, value)
        inner = " ".join(_format(item, verb, spec, depth + 1) for item in value)
        return f"[{inner}]"
    if isinstance(value, dict):
        if verb == "p":
            return _bad(verb, value)
        inner = " ".join(
            f"{_format(key, verb, spec, depth + 1)}:{_format(value[key], verb, spec, depth + 1)}"
            for key in sorted(value)
        )
        return f"map[{inner}]"
    if isinstance(value, bool):
        text = ("true" if value else "false") if verb in "tv" else None
        return _bad(verb, value) if text is None else _pad(text, spec)
    if isinstance(value, str):
        result = _fmt_string(value, verb, spec)
    elif isinstance(value, int):
        result = _fmt_int(value, verb, spec)
    else:
        result = _fmt_float(value, verb, spec)
    return _bad(verb, value) if result is None else result


def _bad(verb: str, value: JSON) -> str:
    return f"%!{verb}({go_type(value)}={_format(value, 'v', _Spec(), 0)})"


def sprintf(template: str, args: Sequence[JSON]) -> str:
    """Return ``fmt.Sprintf(template, args...)`` as Go would print it."""
    out: list[str] = []
    arg = 0
    reordered = False
    i, end = 0, len(template)
    while i < end:
        j = template.find("%", i)
        if j < 0:
            out.append(template[i:])
            break
        out.append(template[i:j])
        i = j + 1
        spec = _Spec()
        while i < end and template[i] in "+-# 0":
            flag = template[i]
            spec.plus |= flag == "+"
            spec.minus |= flag == "-"
            spec.sharp |= flag == "#"
            spec.space |= flag == " "
            spec.zero |= flag == "0"
            i += 1
        arg, i, reordered, bad_index = _index(template, i, arg, len(args), reordered)
        if i < end and template[i] == "*":
            i += 1
            width = args[arg] if not bad_index and arg < len(args) else None
            arg += 1
            if isinstance(width, int) and not isinstance(width, bool):
                spec.width, spec.minus = abs(width), spec.minus or width < 0
            else:
                out.append("%!(BADWIDTH)")
        else:
            i, spec.width = _number(template, i)
        if i < end and template[i] == ".":
            i += 1
            arg, i, reordered, bad_prec_index = _index(template, i, arg, len(args), reordered)
            bad_index |= bad_prec_index
            if i < end and template[i] == "*":
                i += 1
                prec = args[arg] if not bad_index and arg < len(args) else None
                arg += 1
                if isinstance(prec, int) and not isinstance(prec, bool) and prec >= 0:
                    spec.prec = prec
                else:
                    out.append("%!(BADPREC)")
            else:
                i, spec.prec = _number(template, i)
                spec.prec = spec.prec or 0
        if not reordered or not bad_index:
            arg, i, reordered, more_bad = _index(template, i, arg, len(args), reordered)
            bad_index |= more_bad
        if i >= end:
            out.append("%!(NOVERB)")
            break
        verb = template[i]
        i += 1
        if verb == "%":
            out.append("%")
        elif bad_index:
            out.append(f"%!{verb}(BADINDEX)")
        elif arg >= len(args):
            out.append(f"%!{verb}(MISSING)")
        else:
            out.append(_format(args[arg], verb, spec, 0))
            arg += 1
    if not reordered and arg < len(args):
        extra = ", ".join(
            "<nil>" if a is None else f"{go_type(a)}={_format(a, 'v', _Spec(), 0)}"
            for a in args[arg:]
        )
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)


def _number(text: str, i: int) -> tuple[int, int | None]:
    start = i
    while i < len(text) and text[i].isdigit() and text[i].isascii():
        i += 1
    return i, (int(text[start:i]) if i > start else None)


def _index(text: str, i: int, arg: int, count: int, reordered: bool) -> tuple[int, int, bool, bool]:
    """Parse an optional ``[n]``; return (arg, position, reordered, bad index)."""
    if i >= len(text) or text[i] != "[":
        return arg, i, reordered, False
    close = text.find("]", i)
    if close < 0:
        return arg, i + 1, True, True
    number = text[i + 1 : close]
    if not number.isdigit() or not 0 < int(number) <= count:
        return arg, close + 1, True, True
    return int(number) - 1, close + 1, True, False
