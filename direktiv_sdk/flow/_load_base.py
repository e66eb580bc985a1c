"""The loader's shared helpers: compile templates, durations, regexes and catch lists."""

from __future__ import annotations

import re
from typing import Final

from direktiv_sdk.errors import TemplateSyntaxError
from direktiv_sdk.expr._js import DEFAULT_JS_ENGINE
from direktiv_sdk.expr.jx import JqCache, Template, compile_template
from direktiv_sdk.flow._checks import LiteralChecks
from direktiv_sdk.flow._decode import Fields, LoadContext
from direktiv_sdk.flow._duration import Duration, parse_duration
from direktiv_sdk.flow._yaml import (
    MappingNode,
    Node,
    ScalarNode,
    SequenceNode,
    line_of,
    scalar_value,
)
from direktiv_sdk.flow.model import Catch, ErrorPattern, compile_pattern
from direktiv_sdk.store import KEY_PATTERN

__all__ = ["NAME_RE", "BuilderBase", "name_ok"]

NAME_RE: Final = re.compile(KEY_PATTERN)


def name_ok(value: object) -> bool:
    """Return whether ``value`` is a valid state/function id or variable name."""
    return isinstance(value, str) and "\n" not in value and NAME_RE.match(value) is not None


class BuilderBase:
    """Compiles every template once, at load, and decodes the small shared parts."""

    def __init__(self, ctx: LoadContext, cache: JqCache | None) -> None:
        self.ctx = ctx
        self.cache = cache
        self.checks = LiteralChecks()

    # ------------------------------------------------------------------ templates

    def template(self, f: Fields, name: str, *, what: str | None = None) -> Template:
        """Compile the template in field ``name`` (null when absent)."""
        return self.compile(f, f.node_of(name), what or name)

    def compile(self, f: Fields, node: Node | None, what: str) -> Template:
        """Compile the template at ``node``; a syntax error names the failing line.

        Problems Direktiv meets only when it evaluates the string are load errors in strict
        mode and findings otherwise (the template then fails when, and if, it runs).
        """
        value = f.ctx.json(node, f.state, f.prefix)
        try:
            template = compile_template(value, cache=self.cache, strict=self.ctx.strict)
        except TemplateSyntaxError as exc:
            failing = self._failing_node(node)
            line = None if failing is None else line_of(failing)
            f.fail(f"{what}: {exc.detail}", line, exc.rule)
        for problem in template.problems:
            self.ctx.report(
                problem.code,
                f"{f.prefix}{what}: {problem.message}",
                self._failing_node(node),
                f.state,
            )
        if not self.ctx.strict:
            for body in template.scripts:
                error = DEFAULT_JS_ENGINE.syntax_error(body)
                if error is not None:
                    self.ctx.report(
                        "J103",
                        f"{f.prefix}{what}: invalid js query {body!r}: {error}",
                        self._failing_node(node, body),
                        f.state,
                    )
        return template

    def _failing_node(self, node: Node | None, script: str | None = None) -> Node | None:
        """Return the first string in ``node`` failing a strict compile (or holding ``script``)."""
        if node is None:
            return None
        stack = [node]
        while stack:
            current = stack.pop()
            if isinstance(current, ScalarNode):
                value = scalar_value(current)
                if isinstance(value, str):
                    if script is not None:
                        if script in value:
                            return current
                        continue
                    try:
                        compile_template(value, cache=self.cache)
                    except TemplateSyntaxError:
                        return current
            elif isinstance(current, MappingNode):
                stack.extend(reversed([value for _, value in current.value]))
            elif isinstance(current, SequenceNode):
                stack.extend(reversed(current.value))
        return node

    def transform(self, f: Fields, name: str = "transform") -> Template | None:
        """Compile a transform; ``None`` when it leaves the data alone (null, ``""``, ``"."``)."""
        raw = f.json(name)
        if raw is None or raw in ("", "."):
            return None
        template = self.template(f, name)
        problem = self.checks.non_object(template, raw)
        if problem:
            f.report("V201", f"{name} {problem}", name)
        return template

    # ------------------------------------------------------------------ small parts

    def duration(self, f: Fields, name: str, *, required: bool = False) -> Duration | None:
        """Return the ISO-8601 duration in ``name`` (``None`` when absent)."""
        text = f.string(name)
        if not text:
            if required:
                f.fail(f"{name} required", f.line_of(name))
            return None
        parsed = parse_duration(text)
        if parsed is None:
            f.fail(
                f"{name} is not a ISO8601 string: {text!r} (write e.g. PT30S, PT5M, P1DT2H)",
                f.line_of(name),
                "D005",
            )
        return parsed

    def pattern(self, f: Fields, text: str, what: str, line: int | None) -> ErrorPattern:
        """Compile an error-code regex (RE2, as Direktiv's Go) or fail naming ``what``."""
        compiled = compile_pattern(text)
        if compiled is None:
            f.fail(f"{what} {text!r} is not a valid regular expression", line, "D004")
        return compiled

    def catches(self, f: Fields) -> tuple[Catch, ...]:
        """Decode the ``catch`` list."""
        result = []
        for k, node in enumerate(f.items("catch")):
            c = Fields(
                self.ctx, node, ("error", "transition"), state=f.state, prefix=f"catch[{k}]: "
            )
            error = c.string("error")
            if not error:
                c.fail("error required")
            line = c.line_of("error")
            pattern = self.pattern(c, error, "error pattern", line)
            result.append(
                Catch(
                    error=error,
                    transition=c.string("transition"),
                    line=c.line_of("transition") or 0,
                    pattern=pattern,
                )
            )
        return tuple(result)
