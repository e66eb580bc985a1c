"""The engine side of a namespace session: instances, listeners, turns and time.

A :class:`Session` is the :class:`~direktiv_sdk.engine._api.EventHub` of one
:class:`~direktiv_sdk.engine._runtime.Engine`: it starts instances of the flows of the tree,
delivers CloudEvents to waiting instances and event-started flows, and records every instance
(:class:`InstanceInfo`). :class:`~direktiv_sdk.engine.namespace.Namespace` is its public face.

Every top-level instance runs in its own thread; a waiting instance parks it (no polling on a
virtual clock). On a :class:`~direktiv_sdk.engine.clock.VirtualClock` instances take turns
(first come, first served), delays park too, and when a caller waits (:meth:`Namespace.wait`,
:meth:`Namespace.settle`) while nothing can run, the clock jumps to the next deadline.
"""

from __future__ import annotations

import contextlib
import heapq
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Final

from direktiv_sdk.engine._runtime import Engine, Instance, check_input
from direktiv_sdk.engine._turns import Turns, _Waiter
from direktiv_sdk.engine.clock import Clock
from direktiv_sdk.engine.listeners import EventFilter, Listener, go_lifespan
from direktiv_sdk.engine.results import InstanceInfo, InstanceResult
from direktiv_sdk.errors import (
    InstanceNotFoundError,
    NamespaceLimitError,
    UncatchableError,
    WaitTimeoutError,
    WorkflowLoadError,
)
from direktiv_sdk.expr import gojson

if TYPE_CHECKING:
    from collections.abc import Sequence

    from direktiv_sdk.engine._api import InstanceView
    from direktiv_sdk.engine.cloudevent import CloudEvent
    from direktiv_sdk.expr.gojson import JSONObject
    from direktiv_sdk.flow.model import Workflow
    from direktiv_sdk.store import Owner

__all__ = ["MAX_LIVE_INSTANCES", "InstanceInfo", "Session", "run_here"]

MAX_LIVE_INSTANCES: Final = 1000
"""Instances that may be pending in one session at once (``direktiv.limits.instances``)."""
MAX_DELAYED_EVENTS: Final = 10_000
"""Generated events waiting for their ``delay`` at once."""
_POLL: Final = 0.25
"""Seconds between checks of branch cancellation while parked on a real clock."""
_FLOW_SUFFIXES: Final = (".yaml", ".yml")
_SCAN_BYTES: Final = 1 << 20
"""Bytes of a flow file looked at to decide whether to load it."""
MAX_SCANNED_FLOWS: Final = 5000
"""Flow files looked at when the tree is scanned for event-started flows."""


class _Entry:
    """The session's record of one instance."""

    __slots__ = ("done", "info", "instance")

    def __init__(self, instance: Instance, info: InstanceInfo) -> None:
        self.instance = instance
        self.info = info
        self.done = threading.Event()


class Session(Turns):
    """The engine side of a namespace: instances, listeners and events (thread-safe)."""

    def __init__(self, engine: Engine, clock: Clock, *, scan: bool = True) -> None:
        """Serve the flows of ``engine``'s tree on ``clock``; ``scan`` finds event-started flows."""
        super().__init__(clock)
        self.engine = engine
        self._entries: dict[str, _Entry] = {}
        self._order: list[str] = []
        self._live = 0
        self._scan = scan
        self._scanned = False
        self.problems: list[str] = []
        self._timers: list[threading.Timer] = []
        self._threads: list[threading.Thread] = []
        self._closed = False
        self._works = 0
        self.delivered = 0
        """Events delivered so far."""
        engine.hub = self

    # ------------------------------------------------------------------ events

    def _scan_tree(self) -> None:
        """Register the start listeners of every event-started flow in the tree (once)."""
        self._scanned = True
        if not self._scan:
            return
        root = self.engine.root
        count = 0
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                if name.startswith(".") or not name.endswith(_FLOW_SUFFIXES):
                    continue
                count += 1
                if count > MAX_SCANNED_FLOWS:
                    self.problems.append(f"more than {MAX_SCANNED_FLOWS} flow files: stopped")
                    return
                file = Path(dirpath, name)
                if _may_start_on_events(file):
                    self._register_start("/" + file.relative_to(root).as_posix())

    def _register_start(self, path: str) -> None:
        try:
            workflow = self.engine.load_child(path)
        except (WorkflowLoadError, UncatchableError, OSError) as exc:
            self.problems.append(f"{path}: {exc}")
            return
        start = workflow.start
        if start is None or not start.is_event_start:
            return
        lifespan = 0.0
        if start.lifespan:
            seconds = go_lifespan(start.lifespan)
            if seconds is None:
                self.problems.append(
                    f"{path}: lifespan {start.lifespan!r} is not a Go duration once converted "
                    "(days, weeks and years are refused): the flow has no start listener"
                )
                return
            lifespan = seconds
        filters = [
            EventFilter(e.type, tuple((k, gojson.format_v(v)) for k, v in e.raw_context))
            for e in start.events
        ]
        filters.reverse()
        mode = "all" if start.type == "eventsAnd" else "single"
        self._index.add(Listener("start", mode, filters, path, lifespan))

    def publish(
        self, inst: InstanceView | None, event: CloudEvent, delay_until: float = 0.0
    ) -> None:
        """Deliver ``event`` (now, or when the clock reaches ``delay_until``)."""
        with self._lock:
            if delay_until > self.clock.now():
                if len(self._delayed) >= MAX_DELAYED_EVENTS:
                    raise UncatchableError(
                        "direktiv.limits.events",
                        f"more than {MAX_DELAYED_EVENTS} delayed events wait to be delivered",
                    )
                heapq.heappush(self._delayed, (delay_until, next(self._seq), event))
                if not self.virtual:
                    self._arm_timer(delay_until)
                return
            try:
                self._deliver(event)
            except NamespaceLimitError as exc:
                raise UncatchableError("direktiv.limits.instances", str(exc)) from exc

    def _arm_timer(self, due: float) -> None:
        timer = threading.Timer(max(0.0, due - self.clock.now()), self._timer_fired)
        timer.daemon = True
        self._timers.append(timer)
        timer.start()

    def _timer_fired(self) -> None:
        with self._lock:
            if not self._closed:
                self._fire_due()

    def _refused(self, event: CloudEvent, error: NamespaceLimitError) -> None:
        self.problems.append(f"delayed event {event.type!r} ({event.id}) not delivered: {error}")

    def send(self, event: CloudEvent) -> list[str]:
        """Deliver ``event`` from outside; return the ids of instances it started or woke."""
        with self._lock:
            return self._deliver(event)

    def _deliver(self, event: CloudEvent) -> list[str]:
        if not self._scanned:
            self._scan_tree()
        now = self.clock.now()
        starts = self._index.starts(event.type)
        if self._live + starts > MAX_LIVE_INSTANCES:
            raise NamespaceLimitError(
                f"delivering this {event.type!r} event may start {starts} instances but "
                f"{self._live} of at most {MAX_LIVE_INSTANCES} are pending"
            )
        touched: list[str] = []
        self.delivered += 1
        for listener, events in self._index.deliver(event, now, self._alive):
            if listener.kind == "wait":
                waiter = listener.target
                assert isinstance(waiter, _Waiter)
                self._wake(waiter, events)
                waiter.instance.event_hops = max(waiter.instance.event_hops, event.hops)
                touched.append(waiter.instance.instance_id)
            else:
                assert isinstance(listener.target, str)
                data: JSONObject = {e.type: e.as_data() for e in events}
                raw = gojson.dumps(data).encode("utf-8", "surrogatepass")
                hops = max(e.hops for e in events)
                touched.append(self._start(listener.target, raw, invoker="cloudevent", hops=hops))
        return touched

    def _alive(self, listener: Listener) -> bool:
        """A waiting listener whose time is up takes no event (its timeout came first)."""
        if listener.kind != "wait":
            return True
        waiter = listener.target
        assert isinstance(waiter, _Waiter)
        return not waiter.woken and waiter.wake_at > self.clock.now()

    # ------------------------------------------------------------------ instances

    def start(
        self, path: str, raw: bytes | None, *, instance_id: str | None = None, invoker: str = "api"
    ) -> str:
        """Start an instance of the flow at ``path`` in the background; return its id."""
        with self._lock:
            return self._start(path, raw, invoker=invoker, instance_id=instance_id)

    def _start(
        self,
        path: str,
        raw: bytes | None,
        *,
        invoker: str,
        instance_id: str | None = None,
        hops: int = 0,
    ) -> str:
        check_input(raw)
        workflow = self.engine.load_child(path)
        instance = self._instance(workflow, path, instance_id, hops)
        entry = self._add(instance, invoker, None)
        task = object()
        thread = threading.Thread(
            target=self._run_thread,
            args=(entry, raw, task),
            name=f"direktiv-{instance.instance_id[:8]}",
            daemon=True,
        )
        self._tasks += 1
        if self.virtual:
            self._enqueue(task)
        self._keep(thread)
        thread.start()
        return instance.instance_id

    def _keep(self, thread: threading.Thread) -> None:
        """Remember ``thread`` for :meth:`close`, forgetting those that ended."""
        if len(self._threads) >= 256:
            self._threads = [t for t in self._threads if t.is_alive()]
        self._threads.append(thread)

    def _instance(
        self,
        workflow: Workflow,
        path: str,
        instance_id: str | None,
        hops: int,
        workflow_owner: Owner | None = None,
    ) -> Instance:
        if self._closed:
            raise NamespaceLimitError("the namespace session is closed")
        if self._live >= MAX_LIVE_INSTANCES:
            raise NamespaceLimitError(
                f"{self._live} instances are pending: at most {MAX_LIVE_INSTANCES} at once"
            )
        if instance_id is not None and instance_id in self._entries:
            raise ValueError(f"instance id {instance_id!r} is already used in this namespace")
        instance = Instance(
            self.engine,
            workflow,
            path=path,
            clock=self.clock,
            instance_id=instance_id,
            workflow_owner=workflow_owner,
        )
        instance.event_hops = hops
        return instance

    def _add(self, instance: Instance, invoker: str, parent: str | None) -> _Entry:
        info = InstanceInfo(instance.instance_id, instance.path, "pending", invoker, parent)
        entry = _Entry(instance, info)
        self._entries[instance.instance_id] = entry
        self._order.append(instance.instance_id)
        self._live += 1
        return entry

    def _run_thread(self, entry: _Entry, raw: bytes | None, task: object) -> None:
        self._local.task = task
        if self.virtual:
            with self._lock:
                self._take_turn(task)
        try:
            entry.instance.run(raw, by_event=entry.info.invoker == "cloudevent")
        except Exception as exc:  # run() raises no flow errors: a broken runner, a bug
            # Never leave it pending: whoever waits for it gets the crash, with its cause.
            self.ended(entry.instance, _crash(entry.instance, exc))
        finally:
            with self._lock:
                self._tasks -= 1
                if self.virtual:
                    self._give_turn()
                self._cv.notify_all()

    def enter_here(self, instance: Instance) -> None:
        """Take in ``instance``, which the calling thread runs (:func:`run_here`).

        On a real clock any thread of the run may call it: tasks only order turns on a virtual
        clock, where the whole run is in the caller's thread.
        """
        with self._lock:
            self._add(instance, "api", None)
            task = self._task()
            self._inline += 1
            self._tasks += 1
            if self.virtual:
                self._enqueue(task)
                self._take_turn(task)

    def leave_here(self) -> None:
        """Note that the instance taken in by :meth:`enter_here` has returned."""
        with self._lock:
            self._inline -= 1
            self._tasks -= 1
            if self.virtual:
                self._give_turn()

    def began(self, inst: InstanceView, invoker: str, parent: str | None) -> None:
        """Record a child instance (subflow or async) that starts now."""
        assert isinstance(inst, Instance)
        with self._lock:
            if inst.instance_id not in self._entries:
                self._add(inst, invoker, parent)

    def ended(self, inst: InstanceView, result: InstanceResult) -> None:
        """Record the result of an instance of this session."""
        with self._lock:
            entry = self._entries.get(inst.instance_id)
            if entry is None or entry.done.is_set():
                return
            info = entry.info
            entry.info = InstanceInfo(
                info.instance_id, info.path, result.status, info.invoker, info.parent, result
            )
            self._live -= 1
            entry.done.set()
            self._cv.notify_all()

    def spawn(self, name: str, work: Callable[[], None]) -> None:
        """Run ``work`` in the background as its own turn-taking task (async actions)."""
        with self._lock:
            if self._closed:
                raise NamespaceLimitError("the namespace session is closed")
            task = object()
            self._works += 1
            self._tasks += 1
            thread = threading.Thread(
                target=self._run_work, args=(work, task), name=name, daemon=True
            )
            if self.virtual:
                self._enqueue(task)
            self._keep(thread)
            thread.start()

    def _run_work(self, work: Callable[[], None], task: object) -> None:
        self._local.task = task
        if self.virtual:
            with self._lock:
                self._take_turn(task)
        try:
            work()
        finally:
            with self._lock:
                self._works -= 1
                self._tasks -= 1
                if self.virtual:
                    self._give_turn()
                self._cv.notify_all()

    # ------------------------------------------------------------------ the caller's view

    def info(self, instance_id: str) -> InstanceInfo:
        """Return the current record of instance ``instance_id``."""
        with self._lock:
            entry = self._entries.get(instance_id)
            if entry is None:
                raise InstanceNotFoundError(instance_id)
            return entry.info

    def instances(self, path: str | None = None) -> list[InstanceInfo]:
        """Return every instance (of ``path``), in start order."""
        with self._lock:
            infos = [self._entries[i].info for i in self._order]
        return [i for i in infos if path is None or i.path == path]

    def cancel(self, instance_id: str) -> bool:
        """Cancel a pending instance (``direktiv.cancels.api``); False if it already ended."""
        with self._lock:
            entry = self._entries.get(instance_id)
            if entry is None:
                raise InstanceNotFoundError(instance_id)
            if entry.done.is_set() or entry.instance.cancelled is not None:
                return False
            entry.instance.cancelled = ("direktiv.cancels.api", "cancelled by api request")
            for waiter in list(self._parked.values()):
                if waiter.instance.abort_reason() is not None:
                    self._wake(waiter)
            self._cv.notify_all()
            return True

    def wait(self, instance_id: str, timeout: float) -> InstanceInfo:
        """Wait until the instance ends (jumping virtual time); raise after ``timeout`` s."""
        entry = self._entries.get(instance_id)
        if entry is None:
            raise InstanceNotFoundError(instance_id)
        self._drive(entry.done.is_set, timeout, f"instance {instance_id}")
        return entry.info

    def settle(self, timeout: float) -> None:
        """Wait until nothing runs and every pending instance waits for an event."""
        self._drive(self._quiet, timeout, "the namespace")

    def close(self, timeout: float = 30.0) -> None:
        """Let async actions finish, cancel what is still pending, wait for the threads."""
        if self._works:
            # Those that wait for events that will not come are cancelled below.
            with contextlib.suppress(WaitTimeoutError):
                self._drive(lambda: self._works == 0, timeout, "async actions")
        with self._lock:
            self._closed = True
            for timer in self._timers:
                timer.cancel()
            for instance_id in self._order:
                entry = self._entries[instance_id]
                if not entry.done.is_set() and entry.instance.parent is None:
                    entry.instance.cancelled = ("direktiv.cancels.api", "cancelled by api request")
            for waiter in list(self._parked.values()):
                self._wake(waiter)
            self._cv.notify_all()
        end = time.monotonic() + timeout
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(max(0.0, end - time.monotonic()))


def run_here(  # noqa: PLR0917 - what run_workflow starts an instance with
    engine: Engine,
    clock: Clock,
    workflow: Workflow,
    path: str,
    raw: bytes | None,
    instance_id: str | None,
    workflow_owner: Owner | None = None,
) -> InstanceResult:
    """Run one instance in the calling thread (``run_workflow``); the caller drives time.

    Its session is opened the first time the run needs one (a wait, an event, an async action,
    a subflow): a flow without them runs without the session's locks, turns and records.
    """
    check_input(raw)
    instance = Instance(
        engine,
        workflow,
        path=path,
        clock=clock,
        instance_id=instance_id,
        workflow_owner=workflow_owner,
    )
    hub = _OnDemand(instance)
    engine.hub = hub
    try:
        return instance.run(raw)
    finally:
        hub.close()


class _OnDemand:
    """The hub of a one-shot run: opens its :class:`Session` when an instance first needs it.

    The session then replaces it as ``engine.hub``, already holding the running instance as
    if it had been there from the start.
    """

    __slots__ = ("_instance", "_lock", "session")

    def __init__(self, instance: Instance) -> None:
        self._instance: Instance | None = instance
        self._lock = instance.engine.lock
        self.session: Session | None = None

    def _open(self) -> Session:
        with self._lock:
            if self.session is None:
                instance = self._instance
                if instance is None:
                    raise NamespaceLimitError("the namespace session is closed")
                session = Session(instance.engine, instance.clock)
                session.enter_here(instance)
                self.session = session
            return self.session

    def close(self) -> None:
        """Let the session (if one was opened) finish; drop the instance (no reference cycle)."""
        with self._lock:
            session, self._instance = self.session, None
        if session is not None:
            session.leave_here()
            session.close()

    def pause(self, inst: InstanceView, clock: Clock, until: float) -> None:
        self._open().pause(inst, clock, until)

    def await_events(
        self,
        inst: InstanceView,
        filters: Sequence[EventFilter],
        mode: str,
        until: float,
        clock: Clock,
    ) -> list[CloudEvent] | None:
        return self._open().await_events(inst, filters, mode, until, clock)

    def publish(
        self, inst: InstanceView | None, event: CloudEvent, delay_until: float = 0.0
    ) -> None:
        self._open().publish(inst, event, delay_until)

    def spawn(self, name: str, work: Callable[[], None]) -> None:
        self._open().spawn(name, work)

    def began(self, inst: InstanceView, invoker: str, parent: str | None) -> None:
        self._open().began(inst, invoker, parent)

    def ended(self, inst: InstanceView, result: InstanceResult) -> None:
        # Without a session there is nothing to record: the caller gets the result.
        if self.session is not None:
            self.session.ended(inst, result)


def _may_start_on_events(file: Path) -> bool:
    """Return whether ``file`` may be an event-started flow (a cheap look before loading it)."""
    if not file.is_file():
        return False  # a FIFO or a device would block the read
    try:
        with file.open("rb") as handle:
            head = handle.read(_SCAN_BYTES)
    except OSError:
        return False
    return b"start" in head and b"vent" in head


def _crash(instance: Instance, exc: Exception) -> InstanceResult:
    """Return the result of an instance whose run raised ``exc``."""
    return InstanceResult(
        instance_id=instance.instance_id,
        status="crashed",
        output=None,
        error_code="direktiv.internal.error",
        error_message=f"{type(exc).__name__}: {exc}",
        logs=tuple(instance.logs),
        trace=tuple(instance.trace),
        namespace=instance.engine.namespace,
        path=instance.path,
    )
