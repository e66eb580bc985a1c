"""Turns, parking and time for a namespace session (the base of its Session).

Every instance thread that waits (a delay, an event, back-off) parks on the session's condition.
On a real clock a parked thread wakes at its time or when woken. On a
:class:`~direktiv_sdk.engine.clock.VirtualClock` threads take turns, first come first served
(one runs at a time), and when nothing can run, a caller that waits (``wait``, ``settle``, an
instance run in its caller's thread) moves the clock to the earliest deadline and wakes what is due.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from abc import abstractmethod
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Final

from direktiv_sdk.engine._runtime import Instance
from direktiv_sdk.engine.clock import Clock, VirtualClock
from direktiv_sdk.engine.listeners import EventFilter, Listener, ListenerIndex
from direktiv_sdk.errors import NamespaceLimitError, WaitTimeoutError

if TYPE_CHECKING:
    from direktiv_sdk.engine._api import InstanceView
    from direktiv_sdk.engine.cloudevent import CloudEvent

__all__ = ["Turns"]

_POLL: Final = 0.25
"""Seconds between checks of branch cancellation while parked on a real clock."""


class _Waiter:
    """A parked instance: woken by an event, its time, or a cancel."""

    __slots__ = ("events", "instance", "listener", "seq", "task", "wake_at", "woken")

    def __init__(
        self, instance: Instance, task: object, wake_at: float, seq: int, listener: Listener | None
    ) -> None:
        self.instance = instance
        self.task = task
        self.wake_at = wake_at
        self.seq = seq
        self.listener = listener
        self.events: list[CloudEvent] | None = None
        self.woken = False


class Turns:
    """Parking, turn taking and virtual time; subclasses deliver events (:meth:`_deliver`)."""

    def __init__(self, clock: Clock) -> None:
        """Keep time on ``clock``."""
        self.clock = clock
        self.virtual = isinstance(clock, VirtualClock)
        self._lock = threading.RLock()
        self._cv = threading.Condition(self._lock)
        self._index = ListenerIndex()
        self._parked: dict[int, _Waiter] = {}
        self._seq = itertools.count()
        self._ready: deque[object] = deque()
        self._running: object | None = None
        self._inline = 0
        """Instances run in their caller's thread (run_workflow): time jumps when they park."""
        self._tasks = 0
        """Threads running an instance or an async action."""
        self._delayed: list[tuple[float, int, CloudEvent]] = []
        self._local = threading.local()

    @abstractmethod
    def _deliver(self, event: CloudEvent) -> list[str]:
        """Offer ``event`` to the listeners (the lock is held)."""

    @abstractmethod
    def _refused(self, event: CloudEvent, error: NamespaceLimitError) -> None:
        """Note a delayed event that could not be delivered (the lock is held)."""

    # ------------------------------------------------------------------ turns (virtual clock)

    def _task(self) -> object:
        task = getattr(self._local, "task", None)
        if task is None:
            task = self._local.task = object()
        return task

    def _enqueue(self, task: object) -> None:
        self._ready.append(task)
        self._cv.notify_all()

    def _take_turn(self, task: object) -> None:
        """Wait until ``task`` (already queued) may run; the caller holds the lock."""
        while not (self._running is None and self._ready and self._ready[0] is task):
            self._cv.wait()
        self._ready.popleft()
        self._running = task

    def _give_turn(self) -> None:
        self._running = None
        self._cv.notify_all()

    def _idle(self) -> bool:
        return self._running is None and not self._ready

    def _next_time(self) -> float | None:
        """Return the earliest time a parked instance or delayed event is due (virtual clock)."""
        times = [w.wake_at for w in self._parked.values() if w.wake_at != float("inf")]
        if self._delayed:
            times.append(self._delayed[0][0])
        return min(times) if times else None

    def _jump(self) -> bool:
        """Move the virtual clock to the next deadline and wake what is due; False: none."""
        due = self._next_time()
        if due is None:
            return False
        assert isinstance(self.clock, VirtualClock)
        now = self.clock.now()
        if due > now:
            self.clock.advance(due - now)
        self._fire_due()
        return True

    def _fire_due(self) -> None:
        now = self.clock.now()
        for waiter in sorted(self._parked.values(), key=lambda w: (w.wake_at, w.seq)):
            if waiter.wake_at <= now:
                self._wake(waiter)
        while self._delayed and self._delayed[0][0] <= now:
            _, _, event = heapq.heappop(self._delayed)
            try:
                self._deliver(event)
            except NamespaceLimitError as exc:
                self._refused(event, exc)

    # ------------------------------------------------------------------ parking

    def _wake(self, waiter: _Waiter, events: list[CloudEvent] | None = None) -> None:
        if waiter.woken:
            return
        waiter.woken = True
        waiter.events = events
        self._parked.pop(id(waiter), None)
        if waiter.listener is not None:
            self._index.remove(waiter.listener)
        if self.virtual:
            self._enqueue(waiter.task)
        else:
            self._cv.notify_all()

    def _park(self, waiter: _Waiter) -> None:
        """Block the calling thread until ``waiter`` is woken (the lock is held)."""
        self._parked[id(waiter)] = waiter
        if waiter.listener is not None:
            self._index.add(waiter.listener)
        if self.virtual:
            self._give_turn()
            while not waiter.woken:
                if self._inline and self._idle() and not self._jump():
                    self._cv.notify_all()  # nothing is due: let the waiting callers give up
                if not waiter.woken:
                    self._cv.wait()
            self._take_turn(waiter.task)
            return
        while not waiter.woken:
            remaining = waiter.wake_at - self.clock.now()
            if remaining <= 0 or waiter.instance.abort_reason() is not None:
                self._wake(waiter)
                break
            self._cv.wait(min(remaining, _POLL))

    def pause(self, inst: InstanceView, clock: Clock, until: float) -> None:
        """Wait until ``clock`` reads ``until`` (delays, back-off), or a cancel."""
        assert isinstance(inst, Instance)
        if self.virtual and clock is not self.clock:
            clock.sleep(until - clock.now())  # a simulated branch runs on its own fork
            return
        with self._lock:
            waiter = _Waiter(inst, self._task(), until, next(self._seq), None)
            self._park(waiter)

    def await_events(
        self,
        inst: InstanceView,
        filters: Sequence[EventFilter],
        mode: str,
        until: float,
        clock: Clock,
    ) -> list[CloudEvent] | None:
        """Wait for the events of ``filters`` until ``until``; ``None`` when the time is up."""
        assert isinstance(inst, Instance)
        fork_start = clock.now()
        with self._lock:
            main_start = self.clock.now()
            wake_at = until if clock is self.clock else main_start + (until - fork_start)
            waiter = _Waiter(inst, self._task(), wake_at, next(self._seq), None)
            waiter.listener = Listener("wait", mode, filters, waiter)
            self._park(waiter)
            moved = self.clock.now() - main_start
        if clock is not self.clock and isinstance(clock, VirtualClock):
            clock.advance(max(0.0, moved - (clock.now() - fork_start)))
        return waiter.events

    def _quiet(self) -> bool:
        """Whether every thread waits for an event (none runs, sleeps or is due)."""
        if self._delayed:
            return False
        waiting = sum(1 for w in self._parked.values() if w.listener is not None)
        return self._tasks == waiting

    def _drive(self, done: Callable[[], bool], timeout: float, what: str) -> None:
        """Wait until ``done()``; on a virtual clock, jump time whenever nothing can run."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while not done():
                if self.virtual and self._idle() and not self._jump():
                    raise WaitTimeoutError(
                        f"{what} can make no progress: every pending instance waits for "
                        "an event and nothing is due"
                    )
                left = deadline - time.monotonic()
                if left <= 0:
                    raise WaitTimeoutError(f"{what} did not finish within {timeout} s")
                self._cv.wait(min(left, _POLL))
