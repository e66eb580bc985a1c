"""The compiled-jq cache behind :mod:`direktiv_sdk.expr.jx` (libjq through the ``jq`` package).

Compiling a jq program costs as much as 50-200 evaluations (~1.5 ms against 10-30 µs), and a flow
evaluates the same few programs again and again, so programs are compiled once per text and kept
in a bounded LRU.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Iterable
from typing import Protocol, cast

import jq

__all__ = ["DEFAULT_CACHE", "JqCache", "JqProgram", "compile_error_text"]


class JqProgram(Protocol):
    """A compiled jq program (``jq.compile(text)``)."""

    def input_text(self, text: str) -> Iterable[object]:
        """Return the lazy results of running the program on the JSON ``text``."""
        ...


class JqCache:
    """A thread-safe LRU of compiled jq programs keyed by program text.

    ``maxsize=0`` keeps nothing: every :meth:`program` call compiles again (the naive mode
    benchmarks compare against).
    """

    def __init__(self, maxsize: int = 1024) -> None:
        """Create an empty cache holding at most ``maxsize`` programs."""
        if isinstance(maxsize, bool) or not isinstance(maxsize, int) or maxsize < 0:
            raise ValueError(
                f"invalid JqCache maxsize {maxsize!r}: use an int >= 0 (0 disables caching)"
            )
        self.maxsize = maxsize
        self.hits = 0
        self.misses = 0
        self._programs: OrderedDict[str, JqProgram] = OrderedDict()
        self._lock = threading.Lock()

    def program(self, text: str) -> JqProgram:
        """Return the compiled program for ``text``, compiling it on a miss.

        Raises:
            ValueError: ``text`` is not a valid jq program (libjq's message; see
                :func:`compile_error_text`).
        """
        with self._lock:
            program = self._programs.get(text)
            if program is not None:
                self._programs.move_to_end(text)
                self.hits += 1
                return program
            self.misses += 1
        # Compile outside the lock: two threads missing the same text both compile, which is
        # harmless, and nobody waits ~2 ms for someone else's compile.
        program = cast(JqProgram, jq.compile(text))
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
