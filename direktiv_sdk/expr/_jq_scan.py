"""A light jq tokenizer: find module directives and tell programs known to be cheap.

A program is *cheap* when its running time and memory are bounded by a small multiple of its
input, so it can run in-process: no recursion (``def``), no loops (``reduce``, ``foreach``,
``range``, ``repeat``, ``while``, ``until``, ``recurse``, ``..``), no iteration (``.[]``), no
generator outside ``[...]``, no data-dependent index (``.[.n] = 1`` would allocate ``.n``
slots), no ``*`` (string repetition, deep merge) and only builtins from a list of ones that
are linear (or ``n log n``) in their input. Everything else runs in the supervised worker
process (:mod:`direktiv_sdk.expr._jq_pool`). The scan is conservative: a construct it does not
know makes a program not cheap, never the other way round.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

__all__ = ["Scan", "scan"]

_TOKEN: Final = re.compile(
    r"""
    (?P<space>\s+|\#[^\n]*)
  | (?P<string>"(?:[^"\\]|\\[^(])*(?:\\\(|")?)
  | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<field>\.[A-Za-z_][A-Za-z0-9_]*)
  | (?P<var>\$(?:__loc__|[A-Za-z_][A-Za-z0-9_]*(?:::[A-Za-z_][A-Za-z0-9_]*)*))
  | (?P<format>@[A-Za-z0-9_]+)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*(?:::[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<op>\?//|\.\.|\|=|\+=|-=|\*=|/=|%=|//=|==|!=|<=|>=|//|[.\[\]{}(),:;|+\-*/%<>=?])
    """,
    re.VERBOSE,
)

MODULE_WORDS: Final = frozenset({"import", "include", "modulemeta", "get_search_list"})
"""Words that load or inspect modules; Direktiv's gojq has no module loader."""

_CHEAP_CALLS: Final = frozenset(
    {
        "abs", "add", "all", "any", "arrays", "ascii_downcase", "ascii_upcase", "booleans",
        "ceil", "empty", "endswith", "env", "error", "false", "floor", "from_entries",
        "fromjson", "has", "in", "isinfinite", "isnan", "isnormal", "iterables", "join",
        "keys", "keys_unsorted", "length", "ltrimstr", "map", "map_values", "max", "min",
        "not", "null", "nulls", "numbers", "objects", "reverse", "round", "rtrimstr",
        "scalars", "select", "sort", "sqrt", "startswith", "strings", "to_entries", "tojson",
        "tonumber", "tostring", "true", "type", "unique", "utf8bytelength", "values",
        "with_entries", "getpath", "now", "todate", "fromdate", "todateiso8601",
        "fromdateiso8601", "ascii", "trim", "ltrim", "rtrim", "sort_by", "group_by",
        "unique_by", "min_by", "max_by", "toarray", "tostream_", "if", "then", "elif",
        "else", "end", "and", "or", "try", "catch", "as",
    }
)  # fmt: skip
"""Builtins and keywords allowed in a cheap program (``tostream_`` is no builtin: a guard)."""

_SERIALISING: Final = frozenset({"tostring", "tojson", "@json", "@text", "@sh", "@html", "@uri"})
"""Builtins whose output may be a few times larger than their input."""

_CHEAP_FORMATS: Final = frozenset(
    {"@json", "@text", "@sh", "@html", "@uri", "@base64", "@csv", "@tsv"}
)

_ASSIGN: Final = frozenset({"=", "|=", "+=", "-=", "/=", "%=", "//="})
_MAX_INDEX: Final = 1 << 16
"""The largest literal index a cheap program may assign to (``.[65536] = 1``: 1 MiB)."""

_TERM_END: Final = frozenset({"field", "string", "number", "var", "ident", "format"})


@dataclass(frozen=True, slots=True)
class Scan:
    """What :func:`scan` found in a program."""

    modules: str | None
    """The first module word (``import``, ``include``, ...) the program uses, if any."""
    growth: int | None
    """For a cheap program, a bound on output size / input size; ``None`` if not cheap."""


class _NotCheapError(Exception):
    """The program uses something the cheap subset does not have."""


def _tokens(program: str) -> list[tuple[str, str]]:
    """Return ``(kind, text)`` tokens; string interpolations become ``(`` ... ``)`` tokens."""
    out: list[tuple[str, str]] = []
    position = 0
    string_depths: list[int] = []  # paren depth at which each open interpolation resumes
    depth = 0
    while position < len(program):
        if string_depths and depth == string_depths[-1] and program[position] == ")":
            # The end of an interpolation: the string goes on.
            string_depths.pop()
            out.append(("op", ")"))
            position += 1
            rest = re.compile(r'(?:[^"\\]|\\[^(])*(?:\\\(|")').match(program, position)
            if rest is None:
                raise _NotCheapError
            position = rest.end()
            if rest.group().endswith("\\("):
                out.append(("op", "("))
                string_depths.append(depth)
            continue
        match = _TOKEN.match(program, position)
        if match is None:
            raise _NotCheapError
        kind = match.lastgroup or ""
        text = match.group()
        position = match.end()
        if kind == "space":
            continue
        if kind == "string":
            if not text.endswith('"') or (text.endswith('\\"') and not _closed(text)):
                if text.endswith("\\("):
                    out.append(("string", text))
                    out.append(("op", "("))
                    string_depths.append(depth)
                    continue
                raise _NotCheapError
            out.append(("string", text))
            continue
        if text == "(":
            depth += 1
        elif text == ")":
            depth -= 1
        out.append((kind, text))
    if string_depths:
        raise _NotCheapError
    return out


def _closed(text: str) -> bool:
    return re.fullmatch(r'"(?:[^"\\]|\\.)*"', text) is not None


def _growth(tokens: list[tuple[str, str]]) -> int:
    """Return the output-size bound of the cheap program ``tokens``; raise if it is not cheap."""
    brackets: list[str] = []
    references = 1
    stages = 1
    serialising = 0
    previous: tuple[str, str] = ("op", "|")
    for index, (kind, text) in enumerate(tokens):
        following = tokens[index + 1] if index + 1 < len(tokens) else ("op", "")
        if kind == "ident":
            in_key = (
                brackets[-1:] == ["{"]
                and previous[1] in ("{", ",")
                and following[1] in (":", ",", "}")
            )
            if not in_key:
                if text not in _CHEAP_CALLS:
                    raise _NotCheapError
                if text in _SERIALISING:
                    serialising += 1
                if following[1] == "(":
                    stages += 1
        elif kind == "format":
            if text not in _CHEAP_FORMATS:
                raise _NotCheapError
            serialising += 1
        elif kind == "var":
            if text == "$__loc__":
                raise _NotCheapError
            references += 1
        elif kind == "field":
            if previous[0] not in _TERM_END and previous[1] not in (")", "]", "?"):
                references += 1
        elif text in ("..", "?//", "*", "*="):
            raise _NotCheapError
        elif text == ".":
            references += 1
        elif text == "|" or text in _ASSIGN:
            stages += 1
        elif text in ("(", "{"):
            brackets.append(text)
        elif text == "[":
            postfix = previous[0] in _TERM_END or previous[1] in (")", "]", "?", ".")
            if postfix:
                _check_index(tokens, index)
                brackets.append("[index")
            elif following[1] == "]":
                pass  # the empty array literal
            else:
                brackets.append("[")
        elif text in (")", "}", "]"):
            if not brackets:
                raise _NotCheapError
            brackets.pop()
        elif text == ",":
            if not brackets or brackets[-1] not in ("[", "{"):
                raise _NotCheapError  # a generator whose outputs are not collected
        elif text == ";" and (not brackets or brackets[-1] != "("):
            raise _NotCheapError
        previous = (kind, text)
    bound: int = references**stages * 6**serialising
    return bound


def _check_index(tokens: list[tuple[str, str]], start: int) -> None:
    """Refuse ``.[...]`` unless it holds only literals (and a small number): no ``.[]``."""
    index = start + 1
    seen = False
    while index < len(tokens) and tokens[index][1] != "]":
        kind, text = tokens[index]
        if kind == "number":
            if float(text) > _MAX_INDEX:
                raise _NotCheapError
        elif kind != "string" and text not in (":", "-"):
            raise _NotCheapError
        seen = True
        index += 1
    if not seen:
        raise _NotCheapError  # `.[]`: iteration


def scan(program: str) -> Scan:
    """Scan the jq ``program``: its module words and, if it is cheap, its growth bound."""
    try:
        tokens = _tokens(program)
    except _NotCheapError:
        words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", program))
        found = sorted(words & MODULE_WORDS)
        return Scan(found[0] if found else None, None)
    modules = next(
        (text for kind, text in tokens if kind == "ident" and text in MODULE_WORDS), None
    )
    try:
        growth = _growth(tokens)
    except _NotCheapError:
        growth = None
    return Scan(modules, growth)
