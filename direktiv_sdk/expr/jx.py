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
from typing import Final

from direktiv_sdk.errors import CatchableError, TemplateSyntaxError
from direktiv_sdk.expr._jq import DEFAULT_CACHE, JqCache, compile_error_text
from direktiv_sdk.expr._js import (
    DEFAULT_JS_ENGINE,
    JS_INSTALL_HINT,
    JsEngine,
    js_available,
)
from direktiv_sdk.expr._nodes import (
    GO_SPACE,
    Concat,
    Const,
    EvalError,
    Fail,
    Jq,
    Js,
    List,
    Map,
    Node,
    Snapshot,
)
from direktiv_sdk.expr.gojson import JSON, JSONObject, format_v

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

_OPEN = re.compile(r"j[qs]\(")
_PARENS = re.compile(r"[()]")
MISSING_BRACKET: Final = "J101"
JQ_SYNTAX: Final = "J102"
JS_SYNTAX: Final = "J103"


@dataclass(frozen=True, slots=True)
class TemplateProblem:
    """A problem a lenient compile deferred to run time: a lint ``code`` and the load message."""

    code: str
    message: str


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
        node: Node,
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
        except EvalError as exc:
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
    ) -> Node:
        """Raise ``message`` now (strict) or keep it and fail with ``run_detail`` when run."""
        if self.strict:
            raise TemplateSyntaxError(message, source, rule=code) from cause
        self.problems.append(TemplateProblem(code, message))
        return Fail(run_detail)

    def compile(self, value: object, where: str) -> Node:
        if value is None or isinstance(value, bool | int):
            return Const(value)
        if isinstance(value, float):
            if not math.isfinite(value):
                raise TemplateSyntaxError(
                    f"{where}invalid number {value!r}: JSON has no NaN or Infinity, use a finite "
                    "number",
                    repr(value),
                )
            return Const(value)
        if isinstance(value, str):
            return self.string(value, where)
        if isinstance(value, dict):
            for key in value:
                if not isinstance(key, str):
                    raise TemplateSyntaxError(
                        f"{where}invalid map key {key!r}: template map keys must be strings",
                        repr(key),
                    )
            return Map(
                tuple(
                    (key, self.compile(value[key], f"{where}error in '{key}': "))
                    for key in sorted(value)
                )
            )
        if isinstance(value, list | tuple):
            return List(
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

    def string(self, raw: str, where: str) -> Node:
        text = raw.strip(GO_SPACE)
        segments: list[str | Node] = []
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
            return Const("")
        if len(segments) == 1:
            only = segments[0]
            return Const(only) if isinstance(only, str) else only
        return Concat(tuple(segments))

    def jq(self, body: str, where: str) -> Node:
        expression = Jq(body)
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

    def script(self, body: str, shown: str, where: str) -> Node:
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
        return Js(body, self.js)


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
