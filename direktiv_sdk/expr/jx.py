"""Structured jx templates: Direktiv's ``jq(...)`` language inside YAML values (spec §2).

A template is any YAML value. Maps and lists are walked (keys are never evaluated); every string
is trimmed and split into literal text and ``jq(...)`` expressions. A string that is exactly one
expression yields the expression's value with its own type; several segments join into one
string (strings verbatim, other values as Go-JSON). ``js(...)`` bodies run on V8
(:mod:`~direktiv_sdk.expr._js`). :func:`compile_template` parses and compiles when the flow
loads; with ``strict=False`` a problem Direktiv only meets when it evaluates the string (a
``jq(`` without its ``)``, a jq syntax error) is kept in :attr:`Template.problems` and raised
when, and only if, the string is evaluated.

Evaluation follows the reference's ``jqOne`` / ``jqObject`` / ``jqString`` wrappers: errors become
``CatchableError("direktiv.jq.badCommand", "failed to evaluate jq/js: ...")``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Final

from direktiv_sdk.errors import CatchableError, TemplateSyntaxError
from direktiv_sdk.expr._clock import instance_now
from direktiv_sdk.expr._jq import DEFAULT_CACHE, JqCache, compile_error_text
from direktiv_sdk.expr._jq_pool import WorkerCrashedError, WorkerLimitError
from direktiv_sdk.expr._js import (
    DEFAULT_JS_ENGINE,
    JS_INSTALL_HINT,
    JsEngine,
    ScriptError,
    js_available,
)
from direktiv_sdk.expr.gojson import JSON, JSONObject, dumps, format_v

__all__ = [
    "BAD_COMMAND",
    "DEFAULT_CACHE",
    "NOT_OBJECT",
    "JqCache",
    "Snapshot",
    "Template",
    "TemplateProblem",
    "compile_template",
    "js_available",
    "truth",
]

BAD_COMMAND: Final = "direktiv.jq.badCommand"
"""The catchable code of every evaluation error."""

NOT_OBJECT: Final = "direktiv.jq.notObject"
"""The catchable code of :meth:`Template.evaluate_object` on a non-object result."""

_NOT_OBJECT_MESSAGE: Final = "the `jq` or `js` command produced a non-object output"
_BAD_COMMAND_PREFIX: Final = "failed to evaluate jq/js: "

# Go's strings.TrimSpace set (unicode.IsSpace). Not str.strip(): that also strips \x1c-\x1f.
_GO_SPACE: Final = (
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009"
    "\u200a\u2028\u2029\u202f\u205f\u3000"
)
_OPEN = re.compile(r"j[qs]\(")
_PARENS = re.compile(r"[()]")
_INT_LIMIT: Final = 2**53
"""jq ints beyond this are float64 values libjq happened to find integral: keep them floats."""

_PATH_PROGRAM: Final = re.compile(
    r"""\s*\.(?:[A-Za-z_][A-Za-z0-9_]*)?"""
    r"""(?:\.[A-Za-z_][A-Za-z0-9_]*|\[\s*-?[0-9]+\s*\]|\[\s*"[A-Za-z0-9_ .\-]*"\s*\])*\s*"""
)
"""A jq program that only walks down the data (``.``, ``.a.b``, ``.a[0]``, ``.["a b"]``)."""

_NOTHING: Final = object()
_USES_NOW: Final = re.compile(r"(?<![\w$])now(?!\w)")
"""A jq program that calls ``now``: it reads the instance clock instead of wall time."""

MISSING_BRACKET: Final = "J101"
JQ_SYNTAX: Final = "J102"
JS_SYNTAX: Final = "J103"


@dataclass(frozen=True, slots=True)
class TemplateProblem:
    """A problem a lenient compile deferred to run time: a lint ``code`` and the load message."""

    code: str
    message: str


IN_PROCESS_LIMIT: Final = 64 << 20
"""A cheap program runs in-process while its growth bound times its input stays below this."""


class Snapshot:
    """Immutable view of the instance data for a round of evaluations; caches the jq input text.

    Do not mutate ``data`` after creating the snapshot: the Go-JSON text jq reads is computed on
    first use and kept.
    """

    __slots__ = ("_text", "data")

    def __init__(self, data: JSON) -> None:
        """Wrap ``data`` (any JSON; jq sees a non-object as ``{}``, as the reference does)."""
        self.data = data
        self._text: str | None = None

    @property
    def text(self) -> str:
        """Return the Go-JSON text jq reads: sorted keys, ``1.0`` written as ``1``."""
        text = self._text
        if text is None:
            text = dumps(self.data) if isinstance(self.data, dict) else "{}"
            self._text = text
        return text

    def __repr__(self) -> str:
        """Return ``Snapshot(<data>)``."""
        return f"Snapshot({self.data!r})"


class _EvalError(Exception):
    """An evaluation failure whose ``detail`` grows position prefixes on the way up."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def _from_jq(value: Any, *, floats: bool = False) -> Any:
    """Fix jq's numbers in a result, in place (jq results are fresh objects).

    Huge ints become floats again (libjq found a float64 integral); with ``floats``, every int
    does (a result read from the data, whose numbers gojq sees as float64).
    """
    kind = type(value)
    if kind is int:
        return float(value) if floats or not -_INT_LIMIT <= value <= _INT_LIMIT else value
    if kind is dict or kind is list:
        # Replacing a dict's value while iterating is fine: the keys do not change.
        for slot, item in value.items() if kind is dict else enumerate(value):
            item_kind = type(item)
            # Leaves inline: a call per number or string would be most of the cost.
            if item_kind is int:
                if floats or not -_INT_LIMIT <= item <= _INT_LIMIT:
                    value[slot] = float(item)
            elif item_kind is dict or item_kind is list:
                _from_jq(item, floats=floats)
    return value


class _Node:
    __slots__ = ()

    def evaluate(self, snapshot: Snapshot, cache: JqCache) -> JSON:
        raise NotImplementedError


class _Const(_Node):
    __slots__ = ("value",)

    def __init__(self, value: JSON) -> None:
        self.value = value

    def evaluate(self, snapshot: Snapshot, cache: JqCache) -> JSON:
        return self.value


class _Jq(_Node):
    """One ``jq(<body>)`` expression."""

    __slots__ = ("body", "clocked", "path_only", "program")

    def __init__(self, body: str) -> None:
        self.body = body
        # gojq runs an empty program as `.`; libjq refuses it ("Top-level program not given").
        self.program = body if body.strip(_GO_SPACE) else "."
        # A path such as `.a.b[0]` returns a piece of the data, whose numbers gojq sees as
        # float64 (the data is Go-JSON decoded for every run, §2.2). libjq hands back whole
        # numbers as ints, which Go-%v would print as ints (`1234567`, not `1.234567e+06`).
        self.path_only = _PATH_PROGRAM.fullmatch(self.program) is not None
        # libjq's `now` is wall time; a program that uses it gets the instance clock's time
        # with its input instead (so a virtual clock's PT5M wait is 300 s apart).
        self.clocked = _USES_NOW.search(self.program) is not None

    def run_text(self) -> str:
        """Return the program libjq runs (the clocked wrapper when it reads ``now``)."""
        if not self.clocked:
            return self.program
        return f".[0] as $__dx_now | .[1] | def now: $__dx_now; ({self.program}\n)"

    def evaluate(self, snapshot: Snapshot, cache: JqCache) -> JSON:
        text = snapshot.text
        if self.clocked:
            compiled = cache.lookup(self.run_text())
            text = f"[{instance_now()!r},{text}]"
        else:
            compiled = cache.lookup(self.program)
        try:
            if compiled.growth is not None and compiled.growth * len(text) <= IN_PROCESS_LIMIT:
                results = iter(compiled.program.input_text(text))
                first = next(results, _NOTHING)
                # Pull a second result before judging the first: the reference collects every
                # output, so `jq(null, error("x"))` is an execution error, not "no results".
                # Stop there, so `jq(repeat(1))` ends.
                second = next(results, _NOTHING) if first is not _NOTHING else _NOTHING
            else:
                # Not known to be cheap: a worker process bounds its time and memory.
                found = cache.pool.evaluate(compiled.source, text)
                first, more = (_NOTHING, False) if found is None else found
                second = True if more else _NOTHING
        except (ValueError, WorkerLimitError, WorkerCrashedError) as exc:
            raise _EvalError(f"error executing jq query {self.body}: {exc}") from exc
        if first is _NOTHING or first is None:
            raise _EvalError(f"error in jq query {self.body}: no results")
        if second is not _NOTHING:
            raise _EvalError("jq query produced multiple outputs")
        return _from_jq(first, floats=self.path_only)  # type: ignore[no-any-return]


class _Js(_Node):
    """One ``js(<body>)`` expression (run on V8, see :mod:`~direktiv_sdk.expr._js`)."""

    __slots__ = ("body", "engine")

    def __init__(self, body: str, engine: JsEngine) -> None:
        self.body = body
        self.engine = engine

    def evaluate(self, snapshot: Snapshot, cache: JqCache) -> JSON:
        try:
            return self.engine.evaluate(self.body, snapshot.text)
        except ScriptError as exc:
            raise _EvalError(exc.detail) from None


class _Fail(_Node):
    """A problem Direktiv meets only when it evaluates the string (lenient compile)."""

    __slots__ = ("detail",)

    def __init__(self, detail: str) -> None:
        self.detail = detail

    def evaluate(self, snapshot: Snapshot, cache: JqCache) -> JSON:
        raise _EvalError(self.detail)


class _Concat(_Node):
    """Two or more segments joined into one string."""

    __slots__ = ("segments",)

    def __init__(self, segments: tuple[str | _Node, ...]) -> None:
        self.segments = segments

    def evaluate(self, snapshot: Snapshot, cache: JqCache) -> JSON:
        parts: list[str] = []
        for segment in self.segments:
            if isinstance(segment, str):
                parts.append(segment)
            else:
                value = segment.evaluate(snapshot, cache)
                parts.append(value if type(value) is str else dumps(value))
        return "".join(parts)


class _Map(_Node):
    __slots__ = ("items",)

    def __init__(self, items: tuple[tuple[str, _Node], ...]) -> None:
        self.items = items  # sorted by key: the reference evaluates in that order

    def evaluate(self, snapshot: Snapshot, cache: JqCache) -> JSON:
        out: dict[str, JSON] = {}
        for key, node in self.items:
            try:
                out[key] = node.evaluate(snapshot, cache)
            except _EvalError as exc:
                exc.detail = f"error in '{key}': {exc.detail}"
                raise
        return out


class _List(_Node):
    __slots__ = ("nodes",)

    def __init__(self, nodes: tuple[_Node, ...]) -> None:
        self.nodes = nodes

    def evaluate(self, snapshot: Snapshot, cache: JqCache) -> JSON:
        out: list[JSON] = []
        for index, node in enumerate(self.nodes):
            try:
                out.append(node.evaluate(snapshot, cache))
            except _EvalError as exc:
                exc.detail = f"error in element {index}: {exc.detail}"
                raise
        return out


class Template:
    """A compiled jx template: the YAML value with every ``jq(...)`` parsed and compiled.

    Build one with :func:`compile_template`. Templates are immutable and thread-safe.
    """

    __slots__ = ("_cache", "_node", "_programs", "is_null", "problems", "scripts", "source")

    source: JSON
    """The raw YAML value."""
    is_null: bool
    """True for an absent/``null`` template: :meth:`evaluate` returns None without evaluating."""
    scripts: tuple[str, ...]
    """The ``js(...)`` bodies this template runs, in evaluation order."""
    problems: tuple[TemplateProblem, ...]
    """What a lenient compile found and deferred to run time (empty after a strict one)."""

    def __init__(
        self,
        source: JSON,
        node: _Node,
        programs: tuple[str, ...],
        cache: JqCache,
        *,
        scripts: tuple[str, ...] = (),
        problems: tuple[TemplateProblem, ...] = (),
    ) -> None:
        """Use :func:`compile_template` instead."""
        self.source = source
        self.is_null = source is None
        self._node = node
        self._programs = programs
        self._cache = cache
        self.scripts = scripts
        self.problems = problems

    @property
    def programs(self) -> tuple[str, ...]:
        """Return the jq program texts this template runs, in evaluation order."""
        return self._programs

    @property
    def is_literal(self) -> bool:
        """Return whether the value is known without evaluating (no expression, no problem)."""
        return not (self._programs or self.scripts or self.problems)

    def evaluate(self, data: Snapshot | JSON) -> JSON:
        """Evaluate against ``data`` (the reference's ``jqOne``).

        Raises:
            CatchableError: ``direktiv.jq.badCommand``, message ``failed to evaluate jq/js: ...``.
        """
        if self.is_null:
            return None
        snapshot = data if isinstance(data, Snapshot) else Snapshot(data)
        try:
            return self._node.evaluate(snapshot, self._cache)
        except _EvalError as exc:
            raise CatchableError(BAD_COMMAND, _BAD_COMMAND_PREFIX + exc.detail) from exc.__cause__

    def evaluate_object(self, data: Snapshot | JSON) -> JSONObject:
        """Evaluate and require an object (the reference's ``jqObject``).

        Raises:
            CatchableError: ``direktiv.jq.badCommand`` as :meth:`evaluate`, or
                ``direktiv.jq.notObject`` when the result (or a null template) is not an object.
        """
        value = self.evaluate(data)
        if type(value) is not dict:
            raise CatchableError(NOT_OBJECT, _NOT_OBJECT_MESSAGE)
        return value

    def evaluate_string(self, data: Snapshot | JSON) -> str:
        """Evaluate and format a non-string result with Go-%v (the reference's ``jqString``)."""
        value = self.evaluate(data)
        return value if type(value) is str else format_v(value)

    def __repr__(self) -> str:
        """Return ``Template(<source>)``."""
        return f"Template({self.source!r})"


def compile_template(
    value: JSON,
    *,
    cache: JqCache | None = None,
    strict: bool = True,
    js: JsEngine | None = None,
) -> Template:
    """Parse ``value`` and compile every jq program in it (through ``cache``).

    Args:
        value: the YAML value (null, bool, number, string, list or map with string keys).
        cache: where compiled programs live; :data:`DEFAULT_CACHE` when None.
        strict: raise for problems Direktiv only meets at run time (a ``jq(`` without its
            ``)``, a jq or js syntax error); with False they are kept in
            :attr:`Template.problems` and raised as ``direktiv.jq.badCommand`` when evaluated.
        js: the engine ``js(...)`` bodies run on (default: the shared one).

    Raises:
        TemplateSyntaxError: a value that is not JSON, a ``js(...)`` without the ``[js]``
            extra, or (strict) a problem above.
    """
    compiler = _Compiler(DEFAULT_CACHE if cache is None else cache, strict, js)
    node = compiler.compile(value, "")
    return Template(
        value,
        node,
        tuple(dict.fromkeys(compiler.programs)),
        compiler.cache,
        scripts=tuple(dict.fromkeys(compiler.scripts)),
        problems=tuple(compiler.problems),
    )


class _Compiler:
    """One compile: where programs live, how to treat deferred problems, what it found."""

    def __init__(self, cache: JqCache, strict: bool, js: JsEngine | None) -> None:
        self.cache = cache
        self.strict = strict
        self.js = DEFAULT_JS_ENGINE if js is None else js
        self.programs: list[str] = []
        self.scripts: list[str] = []
        self.problems: list[TemplateProblem] = []

    def defer(
        self,
        code: str,
        message: str,
        source: str,
        run_detail: str,
        cause: Exception | None = None,
    ) -> _Node:
        """Raise ``message`` now (strict) or keep it and fail with ``run_detail`` when run."""
        if self.strict:
            raise TemplateSyntaxError(message, source, rule=code) from cause
        self.problems.append(TemplateProblem(code, message))
        return _Fail(run_detail)

    def compile(self, value: object, where: str) -> _Node:
        if value is None or isinstance(value, bool | int):
            return _Const(value)
        if isinstance(value, float):
            if not math.isfinite(value):
                raise TemplateSyntaxError(
                    f"{where}invalid number {value!r}: JSON has no NaN or Infinity, use a finite "
                    "number",
                    repr(value),
                )
            return _Const(value)
        if isinstance(value, str):
            return self.string(value, where)
        if isinstance(value, dict):
            for key in value:
                if not isinstance(key, str):
                    raise TemplateSyntaxError(
                        f"{where}invalid map key {key!r}: template map keys must be strings",
                        repr(key),
                    )
            return _Map(
                tuple(
                    (key, self.compile(value[key], f"{where}error in '{key}': "))
                    for key in sorted(value)
                )
            )
        if isinstance(value, list | tuple):
            return _List(
                tuple(
                    self.compile(item, f"{where}error in element {index}: ")
                    for index, item in enumerate(value)
                )
            )
        raise TemplateSyntaxError(
            f"{where}unexpected type: {type(value).__name__} ({value!r}); a template holds only "
            "null, booleans, numbers, strings, lists and maps",
            repr(value),
        )

    def string(self, raw: str, where: str) -> _Node:
        text = raw.strip(_GO_SPACE)
        segments: list[str | _Node] = []
        position = 0
        while (match := _OPEN.search(text, position)) is not None:
            start = match.start()
            if start > position:
                segments.append(text[position:start])
            end = _closing_bracket(text, match.end())
            if end < 0:
                # The reference's lexer stops here: what came before still runs first.
                segments.append(
                    self.defer(
                        MISSING_BRACKET,
                        f"{where}jq/js script missing bracket: {text!r} has a "
                        f"'{match.group()}' without its closing ')'; add the ')'",
                        text,
                        "jq/js script missing bracket",
                    )
                )
                position = len(text)
                break
            body = text[match.end() : end]
            if match.group() == "js(":
                segments.append(self.script(body, text[start : end + 1], where))
            else:
                segments.append(self.jq(body, where))
            position = end + 1
        if position < len(text):
            segments.append(text[position:])
        if not segments:
            return _Const("")
        if len(segments) == 1:
            only = segments[0]
            return _Const(only) if isinstance(only, str) else only
        return _Concat(tuple(segments))

    def jq(self, body: str, where: str) -> _Node:
        expression = _Jq(body)
        try:
            self.cache.program(expression.program)
        except ValueError as exc:
            problem = compile_error_text(str(exc))
            return self.defer(
                JQ_SYNTAX,
                f"{where}invalid jq query {body!r}: {problem}; fix the jq expression",
                body,
                f"error executing jq query {body}: {problem}",
                exc,
            )
        self.programs.append(expression.program)
        return expression

    def script(self, body: str, shown: str, where: str) -> _Node:
        if not js_available():
            raise TemplateSyntaxError(
                f"{where}js() needs a JavaScript engine: {shown!r} runs on V8, which is not "
                f"installed; install it with {JS_INSTALL_HINT}",
                body,
                rule="J104",
            )
        if self.strict:
            problem = self.js.syntax_error(body)
            if problem is not None:
                raise TemplateSyntaxError(
                    f"{where}invalid js query {body!r}: {problem}; fix the JavaScript",
                    body,
                    rule=JS_SYNTAX,
                )
        self.scripts.append(body)
        return _Js(body, self.js)


def _closing_bracket(text: str, start: int) -> int:
    """Return the index of the ``)`` that closes the body starting at ``start``, or -1.

    Like the reference lexer, every parenthesis counts, even inside jq string literals.
    """
    depth = 0
    for match in _PARENS.finditer(text, start):
        if match.group() == "(":
            depth += 1
        else:
            depth -= 1
            if depth < 0:
                return match.start()
    return -1


def truth(value: JSON) -> bool:
    """Return the reference's truthiness (switch conditions, spec §2.8).

    True for ``true``, a non-zero int or float, and a non-empty string, list or map.
    """
    if value is True:
        return True
    if value is None or value is False:
        return False
    if isinstance(value, int | float):
        return value != 0
    return isinstance(value, str | list | dict) and len(value) > 0
