"""Clocks the interpreter waits on: the real one and a virtual one for tests.

Delays, retry back-off, state deadlines and workflow timeouts all read and wait on a
:class:`Clock`. :class:`SystemClock` is wall time; :class:`VirtualClock` never sleeps: waiting
just moves its time forward, so a test of a one-hour timeout runs in microseconds.

Inside a running flow, :func:`current_clock` returns the clock of the branch being run. Function
runners written for tests use it to "take time" (``current_clock().sleep(600)``): a foreach or
parallel branch gets its own fork of a virtual clock, so branches that run at the same time in
Direktiv also overlap in virtual time.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable, Iterable
from typing import Final, Protocol, runtime_checkable

from direktiv_sdk._compat import override
from direktiv_sdk.expr._clock import reset_clock, use_clock

__all__ = ["Clock", "SystemClock", "VirtualClock", "current_clock"]

DEFAULT_EPOCH: Final = 1_700_000_000.0
"""Where a :class:`VirtualClock` starts by default (2023-11-14T22:13:20Z)."""


@runtime_checkable
class Clock(Protocol):
    """What the interpreter needs from a clock."""

    def now(self) -> float:
        """Return the current time in seconds since the Unix epoch."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (negative or zero returns at once)."""
        ...


class SystemClock:
    """Wall-clock time; :meth:`sleep` really sleeps."""

    def now(self) -> float:
        """Return ``time.time()``."""
        return time.time()

    def sleep(self, seconds: float) -> None:
        """Sleep for ``seconds`` of real time."""
        if seconds > 0:
            time.sleep(seconds)

    @override
    def __repr__(self) -> str:
        return "SystemClock()"


class VirtualClock:
    """A clock whose time moves only when something waits on it (thread-safe).

    Args:
        start: the initial time in seconds since the epoch.
    """

    def __init__(self, start: float = DEFAULT_EPOCH) -> None:
        self._now = float(start)
        self._lock = threading.Lock()
        self._sleeps: list[float] = []

    def now(self) -> float:
        """Return the virtual time."""
        return self._now

    def sleep(self, seconds: float) -> None:
        """Advance the virtual time by ``seconds`` without waiting."""
        with self._lock:
            if seconds > 0:
                self._now += seconds
            self._sleeps.append(max(0.0, float(seconds)))

    def advance(self, seconds: float) -> None:
        """Move the time forward by ``seconds`` (same as :meth:`sleep`, not recorded)."""
        if seconds < 0:
            raise ValueError(f"cannot move a clock backwards by {seconds!r} seconds")
        with self._lock:
            self._now += seconds

    @property
    def sleeps(self) -> tuple[float, ...]:
        """Return every wait requested so far, in order (forks record their own)."""
        return tuple(self._sleeps)

    def fork(self, at: float | None = None) -> VirtualClock:
        """Return an independent clock starting at ``at`` (default: now), for one branch."""
        return VirtualClock(self._now if at is None else at)

    def join(self, forks: Iterable[VirtualClock]) -> None:
        """Move this clock to the latest time any of ``forks`` reached (never backwards)."""
        with self._lock:
            for fork in forks:
                self._now = max(self._now, fork._now)
                self._sleeps.extend(fork._sleeps)

    @override
    def __repr__(self) -> str:
        return f"VirtualClock({self._now!r})"


_CURRENT: contextvars.ContextVar[Clock] = contextvars.ContextVar("direktiv_clock")
_SYSTEM: Final = SystemClock()


def current_clock() -> Clock:
    """Return the clock of the flow branch running in this context (else a SystemClock)."""
    return _CURRENT.get(_SYSTEM)


_Tokens = tuple[contextvars.Token[Clock], contextvars.Token[Callable[[], float] | None]]


def _set_current(clock: Clock) -> _Tokens:
    # Expressions read the same clock: jq(now), Date.now() and js() deadlines.
    return _CURRENT.set(clock), use_clock(clock.now)


def _reset_current(tokens: _Tokens) -> None:
    _CURRENT.reset(tokens[0])
    reset_clock(tokens[1])
