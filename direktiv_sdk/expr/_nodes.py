"""The evaluation tree of a compiled template: constants, ``jq(...)``, ``js(...)``, joins, maps.

:mod:`~direktiv_sdk.expr.jx` builds the tree when a template compiles; each node evaluates on
a :class:`Snapshot` of the instance data. jq programs not known to be cheap run in the worker
pool (:mod:`~direktiv_sdk.expr._jq_pool`), bounded by the running state's deadline.
"""

from __future__ import annotations

import re
from typing import Any, Final

from direktiv_sdk.errors import CatchableError
from direktiv_sdk.expr._clock import instance_now, seconds_left
from direktiv_sdk.expr._jq import JqCache
from direktiv_sdk.expr._jq_pool import WorkerCrashedError, WorkerLimitError, WorkerTimeoutError
from direktiv_sdk.expr._js import SOFT_CODE, SOFT_MESSAGE, JsEngine, ScriptError
from direktiv_sdk.expr.gojson import JSON, dumps

__all__ = [
    "GO_SPACE",
    "IN_PROCESS_LIMIT",
    "Concat",
    "Const",
    "EvalError",
    "Fail",
    "Jq",
    "Js",
    "List",
    "Map",
    "Node",
    "Snapshot",
]

# Go's strings.TrimSpace set (unicode.IsSpace). Not str.strip(): that also strips \x1c-\x1f.
GO_SPACE: Final = (
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009"
    "\u200a\u2028\u2029\u202f\u205f\u3000"
)
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


class EvalError(Exception):
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


class Node:
    __slots__ = ()

    def evaluate(self, snapshot: Snapshot, cache: JqCache) -> JSON:
        raise NotImplementedError


class Const(Node):
    __slots__ = ("value",)

    def __init__(self, value: JSON) -> None:
        self.value = value

    def evaluate(self, snapshot: Snapshot, cache: JqCache) -> JSON:
        return self.value


class Jq(Node):
    """One ``jq(<body>)`` expression."""

    __slots__ = ("body", "clocked", "path_only", "program")

    def __init__(self, body: str) -> None:
        self.body = body
        # gojq runs an empty program as `.`; libjq refuses it ("Top-level program not given").
        self.program = body if body.strip(GO_SPACE) else "."
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
        left: float | None = None
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
                left = seconds_left()
                found = cache.pool.evaluate(compiled.source, text, limit=left)
                first, more = (_NOTHING, False) if found is None else found
                second = True if more else _NOTHING
        except WorkerTimeoutError as exc:
            if left is not None and left < cache.pool.timeout:
                raise CatchableError(SOFT_CODE, SOFT_MESSAGE) from None  # the state's deadline
            raise EvalError(f"error executing jq query {self.body}: {exc}") from exc
        except (ValueError, WorkerLimitError, WorkerCrashedError) as exc:
            raise EvalError(f"error executing jq query {self.body}: {exc}") from exc
        if first is _NOTHING or first is None:
            raise EvalError(f"error in jq query {self.body}: no results")
        if second is not _NOTHING:
            raise EvalError("jq query produced multiple outputs")
        return _from_jq(first, floats=self.path_only)  # type: ignore[no-any-return]


class Js(Node):
    """One ``js(<body>)`` expression (run on V8, see :mod:`~direktiv_sdk.expr._js`)."""

    __slots__ = ("body", "engine")

    def __init__(self, body: str, engine: JsEngine) -> None:
        self.body = body
        self.engine = engine

    def evaluate(self, snapshot: Snapshot, cache: JqCache) -> JSON:
        try:
            return self.engine.evaluate(self.body, snapshot.text)
        except ScriptError as exc:
            raise EvalError(exc.detail) from None


class Fail(Node):
    """A problem Direktiv meets only when it evaluates the string (lenient compile)."""

    __slots__ = ("detail",)

    def __init__(self, detail: str) -> None:
        self.detail = detail

    def evaluate(self, snapshot: Snapshot, cache: JqCache) -> JSON:
        raise EvalError(self.detail)


class Concat(Node):
    """Two or more segments joined into one string."""

    __slots__ = ("segments",)

    def __init__(self, segments: tuple[str | Node, ...]) -> None:
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


class Map(Node):
    __slots__ = ("items",)

    def __init__(self, items: tuple[tuple[str, Node], ...]) -> None:
        self.items = items  # sorted by key: the reference evaluates in that order

    def evaluate(self, snapshot: Snapshot, cache: JqCache) -> JSON:
        out: dict[str, JSON] = {}
        for key, node in self.items:
            try:
                out[key] = node.evaluate(snapshot, cache)
            except EvalError as exc:
                exc.detail = f"error in '{key}': {exc.detail}"
                raise
        return out


class List(Node):
    __slots__ = ("nodes",)

    def __init__(self, nodes: tuple[Node, ...]) -> None:
        self.nodes = nodes

    def evaluate(self, snapshot: Snapshot, cache: JqCache) -> JSON:
        out: list[JSON] = []
        for index, node in enumerate(self.nodes):
            try:
                out.append(node.evaluate(snapshot, cache))
            except EvalError as exc:
                exc.detail = f"error in element {index}: {exc.detail}"
                raise
        return out
