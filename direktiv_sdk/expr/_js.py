"""``js(...)`` expressions on V8 (mini-racer), with the semantics of Direktiv v0.10's goja runner.

Direktiv wraps the body as ``function fn(data) {\\n <body> \\n}``, calls it with the instance data
(an object; ``{}`` when the data is not one) and exports the result: ``undefined``/``null`` is
"no results", numbers with an integral value are Go ints, others floats. ``atob``/``btoa`` are
the only extra globals. Scripts stop after 10 seconds, or earlier at the running state's
deadline; the isolate has a hard memory cap.

One V8 isolate (a :class:`JsEngine`) serves the process: starting one costs ~40 ms, a call
~0.2 ms. Scripts are compiled once per body text. V8 is optional: ``pip install
'direktiv-sdk[js]'``.
"""

from __future__ import annotations

import atexit
import json
import re
import threading
from typing import TYPE_CHECKING, Final

from direktiv_sdk.errors import CatchableError
from direktiv_sdk.expr._clock import instance_now, seconds_left

if TYPE_CHECKING:
    from py_mini_racer import MiniRacer

    from direktiv_sdk.expr.gojson import JSON

__all__ = [
    "DEFAULT_JS_ENGINE",
    "JS_INSTALL_HINT",
    "JS_TIME_LIMIT",
    "JsEngine",
    "ScriptError",
    "js_available",
]

JS_INSTALL_HINT: Final = "pip install 'direktiv-sdk[js]'"
JS_TIME_LIMIT: Final = 10.0
"""Seconds a script may run (Direktiv interrupts goja after 10 s)."""
DEFAULT_MEMORY_LIMIT: Final = 256 * 2**20
"""Bytes of V8 heap scripts may use together before the running one is stopped."""
SOFT_CODE: Final = "direktiv.cancels.timeout.soft"
SOFT_MESSAGE: Final = "operation timed out"
_INT_LIMIT: Final = 2**53
"""Whole numbers up to this come back as ints; V8 prints larger ones only to float precision."""
_SYNTAX: Final = re.compile(r"^<anonymous>:(\d+): (SyntaxError: .*)$")


class ScriptError(Exception):
    """A script failed; ``detail`` is the text after ``failed to evaluate jq/js: ``."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def js_available() -> bool:
    """Return whether the ``[js]`` extra (mini-racer) is installed."""
    try:
        import py_mini_racer  # noqa: F401, PLC0415 (an optional extra, looked up on demand)
    except ImportError:
        return False
    return True


def _ints(value: JSON) -> JSON:
    """Turn whole numbers beyond ±2**53 into floats (their JSON text is only float-exact)."""
    if type(value) is int and not -_INT_LIMIT <= value <= _INT_LIMIT:
        return float(value)
    if type(value) is dict:
        return {key: _ints(item) for key, item in value.items()}
    if type(value) is list:
        return [_ints(item) for item in value]
    return value


class JsEngine:
    """One V8 isolate running ``js(...)`` bodies, one at a time (thread-safe).

    Args:
        memory_limit: bytes of heap after which a script is stopped (the isolate is then
            replaced, so one hostile script cannot starve the next).
        time_limit: seconds a script may run when the state's deadline is further away.
    """

    def __init__(
        self, *, memory_limit: int = DEFAULT_MEMORY_LIMIT, time_limit: float = JS_TIME_LIMIT
    ) -> None:
        """Create the engine; V8 starts on the first evaluation."""
        self.memory_limit = memory_limit
        self.time_limit = time_limit
        self._lock = threading.Lock()
        self._racer: MiniRacer | None = None
        self._ids: dict[str, int] = {}
        self._syntax: dict[str, str] = {}

    def _start(self) -> MiniRacer:
        racer = self._racer
        if racer is None:
            from py_mini_racer import MiniRacer  # noqa: PLC0415 (the optional extra)

            racer = MiniRacer()
            racer.set_hard_memory_limit(self.memory_limit)
            # Imported here: importlib.resources costs every CLI start, js() or not.
            from importlib import resources  # noqa: PLC0415

            racer.eval(resources.files(__package__).joinpath("_js_prelude.js").read_text())
            self._racer = racer
            self._ids.clear()
        return racer

    def _compile(self, racer: MiniRacer, body: str) -> int:
        from py_mini_racer import JSParseException  # noqa: PLC0415

        known = self._ids.get(body)
        if known is not None:
            return known
        problem = self._syntax.get(body)
        if problem is None:
            number = len(self._ids)
            try:
                # Same two-line wrapper as Direktiv, so line:column in messages agree.
                racer.eval(f"__dx.define({number}, function fn(data) {{\n {body} \n}})")
            except JSParseException as exc:
                problem = self._syntax[body] = _syntax_text(str(exc))
            else:
                self._ids[body] = number
                return number
        raise ScriptError(f"error loading js query {body}: {problem}")

    def syntax_error(self, body: str) -> str | None:
        """Return V8's syntax error for ``body`` (``SyntaxError: ... at L:C``), or None."""
        with self._lock:
            try:
                self._compile(self._start(), body)
            except ScriptError:
                return self._syntax[body]
        return None

    def evaluate(self, body: str, data_text: str) -> JSON:
        """Run ``body`` on the JSON object ``data_text``; return the result as JSON.

        Raises:
            ScriptError: the script does not compile, throws, returns nothing, or runs past
                the 10 s limit or out of memory (message as Direktiv's, see docs/expressions.md).
            CatchableError: ``direktiv.cancels.timeout.soft``: the running state's deadline
                came first.
        """
        from py_mini_racer import JSOOMException, JSTimeoutException  # noqa: PLC0415

        left = seconds_left()
        limit = self.time_limit if left is None else min(self.time_limit, left)
        now_ms = instance_now() * 1000.0
        with self._lock:
            racer = self._start()
            number = self._compile(racer, body)
            call = f"__dx.run({number},{json.dumps(data_text)},{now_ms!r})"
            try:
                out = racer.eval(call, timeout_sec=max(limit, 0.001))
            except JSTimeoutException:
                racer.eval("__dx.reset()")
                if left is not None and left < self.time_limit:
                    raise CatchableError(SOFT_CODE, SOFT_MESSAGE) from None
                raise ScriptError(f"error running js query {body}: timeout") from None
            except JSOOMException:
                self._close()
                raise ScriptError(
                    f"error running js query {body}: out of memory (scripts may use "
                    f"{self.memory_limit // 2**20} MiB)"
                ) from None
        assert isinstance(out, str)
        kind, text = out[0], out[1:]
        if kind == "V":
            return _ints(json.loads(text))
        if kind == "N":
            raise ScriptError(f"error in js query {body}: no results")
        raise ScriptError(f"error running js query {body}: {text}")

    def _close(self) -> None:
        racer, self._racer = self._racer, None
        self._ids.clear()
        if racer is not None:
            racer.close()

    def close(self) -> None:
        """Stop the isolate (the next evaluation starts a new one)."""
        with self._lock:
            self._close()

    def __repr__(self) -> str:
        """Return a summary: started or not, scripts compiled, limits."""
        state = "started" if self._racer is not None else "idle"
        return (
            f"JsEngine({state}, scripts={len(self._ids)}, memory_limit={self.memory_limit}, "
            f"time_limit={self.time_limit})"
        )


def _syntax_text(message: str) -> str:
    """Turn mini-racer's parse error (``<anonymous>:3: SyntaxError: x``, source, caret) into
    ``SyntaxError: x at 3:1``."""
    lines = message.splitlines()
    match = _SYNTAX.match(lines[0]) if lines else None
    if match is None:
        return " ".join(message.split())
    column = lines[2].find("^") + 1 if len(lines) > 2 and "^" in lines[2] else 0
    place = f"{match.group(1)}:{column}" if column else match.group(1)
    return f"{match.group(2)} at {place}"


DEFAULT_JS_ENGINE: Final = JsEngine()
"""The engine templates use; V8 starts the first time a ``js(...)`` runs."""

# mini-racer may hang freeing a context from a finalizer at interpreter shutdown (seen with
# 0.14.1 in about half the runs); closing it while the interpreter is still whole does not.
atexit.register(DEFAULT_JS_ENGINE.close)
