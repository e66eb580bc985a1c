"""Run foreach and parallel branches: threads on a real clock, simulated time on a virtual one.

On a :class:`~direktiv_sdk.engine.clock.VirtualClock` branches run one after another, each on its
own fork of the clock starting when a slot frees up; their virtual end times then decide
which outcome came first. Results are deterministic and time overlaps as it would in
Direktiv (five 10 s branches, three at a time, take 20 s).
"""

from __future__ import annotations

import contextvars
import heapq
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TypeAlias

from direktiv_sdk.engine.clock import Clock, VirtualClock, _reset_current, _set_current
from direktiv_sdk.errors import FlowError

if TYPE_CHECKING:
    from concurrent.futures import Future

    from direktiv_sdk.expr.gojson import JSON

__all__ = ["Task", "run_branches"]

Task: TypeAlias = Callable[[Clock, threading.Event], "JSON"]
"""One branch: called with its clock and an event set when the state is over."""


def run_branches(clock: Clock, tasks: Sequence[Task], limit: int | None, mode: str) -> list[JSON]:
    """Run foreach/parallel branches, at most ``limit`` at a time; return results in order.

    ``mode`` ``and`` waits for every branch; ``or`` ends with the first success (the other
    slots are ``None``); in both the first error ends the state and is raised.
    """
    if isinstance(clock, VirtualClock):
        return _simulate(clock, tasks, limit, mode)
    return _threaded(clock, tasks, limit, mode)


def _simulate(
    clock: VirtualClock, tasks: Sequence[Task], limit: int | None, mode: str
) -> list[JSON]:
    """Run branches one by one on forks of the clock; order outcomes by virtual end time."""
    count = len(tasks)
    free = [clock.now()] * min(limit or count, count)
    outcomes: list[tuple[float, int, VirtualClock, JSON, FlowError | None]] = []
    first_failure = float("inf")
    never = threading.Event()
    for index, task in enumerate(tasks):
        start = heapq.heappop(free)
        if start >= first_failure:
            break  # the state had already failed when this branch would have started
        fork = clock.fork(start)
        token = _set_current(fork)
        value: JSON = None
        error: FlowError | None = None
        try:
            value = task(fork, never)
        except FlowError as exc:
            error = exc
        finally:
            _reset_current(token)
        heapq.heappush(free, fork.now())
        outcomes.append((fork.now(), index, fork, value, error))
        if error is not None:
            first_failure = min(first_failure, fork.now())
    outcomes.sort(key=lambda o: (o[0], o[1]))
    if mode == "or":
        _, index, fork, value, error = outcomes[0]
        clock.join([fork])
        if error is not None:
            raise error
        results: list[JSON] = [None] * count
        results[index] = value
        return results
    failures = [o for o in outcomes if o[4] is not None]
    if failures:
        clock.join([failures[0][2]])
        raise failures[0][4]  # type: ignore[misc]
    clock.join(o[2] for o in outcomes)
    return [o[3] for o in sorted(outcomes, key=lambda o: o[1])]


def _threaded(clock: Clock, tasks: Sequence[Task], limit: int | None, mode: str) -> list[JSON]:
    """Run branches in threads; the first error (or, in ``or`` mode, success) ends the state."""
    # Loaded here: concurrent.futures (and logging) would cost every CLI run without branches.
    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait  # noqa: PLC0415

    count = len(tasks)
    results: list[JSON] = [None] * count
    cancel = threading.Event()
    with ThreadPoolExecutor(max_workers=min(limit or count, count)) as pool:
        pending: dict[Future[JSON], int] = {
            pool.submit(contextvars.copy_context().run, task, clock, cancel): index
            for index, task in enumerate(tasks)
        }
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in sorted(done, key=lambda f: pending[f]):
                    index = pending.pop(future)
                    error = future.exception()
                    if error is not None:
                        raise error
                    results[index] = future.result()
                    if mode == "or":
                        return [results[index] if i == index else None for i in range(count)]
        finally:
            cancel.set()
            for future in pending:
                future.cancel()
    return results
