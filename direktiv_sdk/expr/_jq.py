"""The compiled-jq cache behind :mod:`direktiv_sdk.expr.jx` (libjq through the ``jq`` package).

Compiling a jq program costs as much as 50-200 evaluations (~1.5 ms against 10-30 µs), and a flow
evaluates the same few programs again and again, so programs are compiled once per text and kept
in a bounded LRU, each with what :mod:`._jq_scan` found in it (is it cheap enough to run
in-process?) and the worker pool that runs it otherwise (:mod:`._jq_pool`).

Every program runs behind :data:`PRELUDE`, as Direktiv's gojq sees it: ``env`` and ``$ENV`` are
``{}`` and no module can be loaded (module directives must open a program, so after the prelude
they are syntax errors; the search path is empty anyway).
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Protocol, cast

import jq

from direktiv_sdk.expr._jq_pool import JqPool
from direktiv_sdk.expr._jq_scan import scan

__all__ = ["DEFAULT_CACHE", "DEFAULT_POOL", "PRELUDE", "JqCache", "JqProgram", "compile_error_text"]

PRELUDE: Final = "def env: {}; def get_search_list: []; {} as $ENV |\n"
"""Put before every program: no environment, no module search path (gojq has neither)."""

_PRELUDE_LINES: Final = PRELUDE.count("\n")
_LINE: Final = re.compile(r"(line )(\d+)(, column)")

DEFAULT_POOL = JqPool()
"""The worker processes of programs that are not known to be cheap (started on first use)."""


class JqProgram(Protocol):
    """A compiled jq program (``jq.compile(text)``)."""

    def input_text(self, text: str) -> Iterable[object]:
        """Return the lazy results of running the program on the JSON ``text``."""
        ...


@dataclass(frozen=True, slots=True)
class CompiledJq:
    """One compiled program and how it may run."""

    program: JqProgram
    """The program behind :data:`PRELUDE`, compiled in this process."""
    source: str
    """The text the worker compiles (with :data:`PRELUDE`)."""
    growth: int | None
    """A bound on output size / input size when the program is cheap, else ``None``."""


def _without_prelude(message: str) -> str:
    """Return libjq's message with line numbers counted from the program's own first line."""
    return _LINE.sub(lambda m: f"{m[1]}{max(1, int(m[2]) - _PRELUDE_LINES)}{m[3]}", message)


def _compile(text: str) -> CompiledJq:
    found = scan(text)
    source = PRELUDE + text
    try:
        program = cast(JqProgram, jq.compile(source))
    except ValueError as exc:
        if found.modules is not None:
            raise ValueError(
                f"jq: error: modules cannot be loaded ({found.modules!r} is not supported: "
                "Direktiv's jq has no module loader)"
            ) from exc
        raise ValueError(_without_prelude(str(exc))) from exc
    return CompiledJq(program, source, found.growth)


class JqCache:
    """A thread-safe LRU of compiled jq programs keyed by program text.

    ``maxsize=0`` keeps nothing: every :meth:`program` call compiles again (the naive mode
    benchmarks compare against). ``pool`` runs the programs that are not known to be cheap
    (default: :data:`DEFAULT_POOL`, 10 s and 1 GiB per evaluation).
    """

    def __init__(self, maxsize: int = 1024, *, pool: JqPool | None = None) -> None:
        """Create an empty cache holding at most ``maxsize`` programs."""
        if isinstance(maxsize, bool) or not isinstance(maxsize, int) or maxsize < 0:
            raise ValueError(
                f"invalid JqCache maxsize {maxsize!r}: use an int >= 0 (0 disables caching)"
            )
        self.maxsize = maxsize
        self.pool = DEFAULT_POOL if pool is None else pool
        self.hits = 0
        self.misses = 0
        self._programs: OrderedDict[str, CompiledJq] = OrderedDict()
        self._lock = threading.Lock()

    def program(self, text: str) -> JqProgram:
        """Return the compiled program for ``text`` (behind :data:`PRELUDE`), compiling on a miss.

        Raises:
            ValueError: ``text`` is not a valid jq program (libjq's message; see
                :func:`compile_error_text`), or it loads a module.
        """
        return self.lookup(text).program

    def lookup(self, text: str) -> CompiledJq:
        """Return the compiled program for ``text`` and how it may run; see :meth:`program`."""
        with self._lock:
            program = self._programs.get(text)
            if program is not None:
                self._programs.move_to_end(text)
                self.hits += 1
                return program
            self.misses += 1
        # Compile outside the lock: two threads missing the same text both compile, which is
        # harmless, and nobody waits ~2 ms for someone else's compile.
        program = _compile(text)
        if self.maxsize:
            with self._lock:
                self._programs[text] = program
                self._programs.move_to_end(text)
                while len(self._programs) > self.maxsize:
                    self._programs.popitem(last=False)
        return program

    def clear(self) -> None:
        """Drop every program and reset :attr:`hits` and :attr:`misses` to zero."""
        with self._lock:
            self._programs.clear()
            self.hits = 0
            self.misses = 0

    def __len__(self) -> int:
        """Return how many programs the cache holds."""
        return len(self._programs)

    def __contains__(self, text: object) -> bool:
        """Return whether the program ``text`` is cached (without touching its LRU position)."""
        return text in self._programs

    def __repr__(self) -> str:
        """Return a summary with the size and the counters."""
        return (
            f"JqCache(maxsize={self.maxsize}, size={len(self)}, "
            f"hits={self.hits}, misses={self.misses})"
        )


DEFAULT_CACHE = JqCache()
"""The cache templates use unless :func:`~direktiv_sdk.expr.jx.compile_template` gets another."""

_LOCATION = re.compile(r" at <top-level>, (line \d+, column \d+):$")


def compile_error_text(message: str) -> str:
    """Turn libjq's multi-line compile error into one line (``syntax error, ... at line 1, ...``).

    libjq writes ``jq: error: <what> at <top-level>, line L, column C:``, the source line, a caret
    line, and ``jq: N compile error(s)``; only the ``jq: error:`` lines say something.
    """
    errors = [
        _LOCATION.sub(r" at \1", line.removeprefix("jq: error: ")).rstrip(":")
        for line in message.splitlines()
        if line.startswith("jq: error: ")
    ]
    return "; ".join(errors) if errors else " ".join(message.split())
