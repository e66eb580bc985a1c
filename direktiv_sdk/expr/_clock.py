"""The instance clock and deadline that expressions see (``jq(now)``, ``Date.now()``, js limits).

The expression layer cannot import the engine, so the engine hands its clock down through this
seam: :func:`use_clock` while an instance (or a branch) runs, :func:`use_deadline` while a state
runs. Outside a run, expressions see wall time and no deadline.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Callable

__all__ = [
    "instance_now",
    "reset_clock",
    "reset_deadline",
    "seconds_left",
    "use_clock",
    "use_deadline",
]

_NOW: contextvars.ContextVar[Callable[[], float] | None] = contextvars.ContextVar(
    "direktiv_expr_now", default=None
)
_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "direktiv_expr_deadline", default=None
)


def instance_now() -> float:
    """Return the time of the running instance's clock (epoch seconds); wall time outside a run."""
    now = _NOW.get()
    return time.time() if now is None else now()


def use_clock(now: Callable[[], float]) -> contextvars.Token[Callable[[], float] | None]:
    """Make ``now`` the clock expressions read in this context; reset with :func:`reset_clock`."""
    return _NOW.set(now)


def reset_clock(token: contextvars.Token[Callable[[], float] | None]) -> None:
    """Undo :func:`use_clock`."""
    _NOW.reset(token)


def use_deadline(deadline: float | None) -> contextvars.Token[float | None]:
    """Set the instance-clock time the running state must end by (``None``: no deadline)."""
    return _DEADLINE.set(deadline)


def reset_deadline(token: contextvars.Token[float | None]) -> None:
    """Undo :func:`use_deadline`."""
    _DEADLINE.reset(token)


def seconds_left() -> float | None:
    """Return the seconds until the running state's deadline (``None`` without one)."""
    deadline = _DEADLINE.get()
    return None if deadline is None else max(0.0, deadline - instance_now())
