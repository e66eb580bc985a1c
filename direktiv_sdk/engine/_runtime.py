"""One running instance: the state loop, error handling, deadlines and the result (§1.4-§1.9).

An :class:`Engine` holds what every instance of one run shares (store, namespace, file tree,
function runners, secrets); an :class:`Instance` runs one flow on it. Subflows are child
instances on the same engine. Data is treated immutably: every write makes a new top-level
dict, so trace records and snapshots can keep references instead of copies.
"""

from __future__ import annotations

import base64
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Final, TypeAlias

from direktiv_sdk.engine._api import SHORT_DEADLINE, SOFT_CODE, SOFT_MESSAGE, Record, new_id
from direktiv_sdk.engine.clock import Clock, _reset_current, _set_current
from direktiv_sdk.engine.observe import ObservedInstance
from direktiv_sdk.engine.results import InstanceResult, StateTrace
from direktiv_sdk.engine.states import LOGIC
from direktiv_sdk.errors import (
    CatchableError,
    FlowError,
    FunctionNotMappedError,
    InternalError,
    NestingTooDeepError,
    StoreError,
    UncatchableError,
    WorkflowLoadError,
)
from direktiv_sdk.expr import gojson
from direktiv_sdk.expr._clock import reset_deadline, use_deadline
from direktiv_sdk.expr.jx import Snapshot
from direktiv_sdk.store import Owner, VariableRef, VariableStore

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from direktiv_sdk.engine._api import EventHub, StateLogic
    from direktiv_sdk.engine.functions import FunctionRunner
    from direktiv_sdk.engine.observe import RunObserver
    from direktiv_sdk.expr.gojson import JSONObject
    from direktiv_sdk.flow.model import State, Workflow

__all__ = [
    "MAX_STEPS",
    "Engine",
    "FlowLoader",
    "Instance",
    "check_input",
    "wrap_input",
]

MAX_STEPS: Final = 10_000
"""State transitions one instance may make (ends loops that never end, even on a virtual clock)."""
_ONE_SHOT: Final = frozenset(("noop", "switch", "error", "validate", "getter", "setter"))
"""States with Direktiv's short (5 s) deadline: a js() script there stops at it."""
_CANCELLED_CODES: Final = ("direktiv.cancels.parent", "direktiv.cancels.api")


def check_input(raw: bytes | None) -> None:
    """Raise :class:`NestingTooDeepError` for a start input no instance could decode."""
    if raw is not None:
        gojson.check_depth(raw.decode("utf-8", "replace"))


def wrap_input(raw: bytes | None) -> JSONObject:
    """Return the initial instance data for start input ``raw`` (§1.5; ``None`` → ``{}``)."""
    if raw is None:
        return {}
    try:
        value = gojson.loads(raw)
    except NestingTooDeepError:
        raise  # Go would decode it (up to 10000 levels); we cannot: say so, never base64 it
    except ValueError:
        return {"input": base64.b64encode(raw).decode("ascii")}
    if isinstance(value, dict):
        return value
    return {"input": value}


FlowLoader: TypeAlias = "Callable[[Path, str], Workflow]"
"""Loads a subflow: (flow file, workflow path without the leading ``/``) -> flow.

Raises :class:`~direktiv_sdk.errors.WorkflowLoadError`; the engine is handed one, so it never
imports the loader itself.
"""


class Engine:
    """What every instance of one run shares."""

    __slots__ = (
        "hub",
        "load_flow",
        "lock",
        "namespace",
        "namespace_owner",
        "observer",
        "root",
        "runners",
        "secrets",
        "store",
        "workflows",
    )

    def __init__(  # noqa: PLR0917 - the run's settings, built in one place
        self,
        store: VariableStore,
        namespace: str,
        root: Path,
        runners: Mapping[str, FunctionRunner],
        secrets: Mapping[str, str],
        namespace_owner: Owner,
        load_flow: FlowLoader,
        observer: RunObserver | None = None,
    ) -> None:
        """Hold the settings of one run; :attr:`workflows` starts empty."""
        self.store = store
        self.namespace = namespace
        self.root = root
        self.runners = runners
        self.secrets = secrets
        self.namespace_owner = namespace_owner
        self.load_flow = load_flow
        self.observer = observer
        """Told about every instance and state of the run (``None``: nobody listens)."""
        self.workflows: dict[str, Workflow] = {}
        """Flows loaded for subflow calls, by workflow path (the top-level flow included)."""
        self.lock = threading.Lock()
        self.hub: EventHub | None = None
        """The namespace session the instances run in (set by the session)."""

    def load_child(self, path: str) -> Workflow:
        """Return the flow at workflow ``path`` (from the file tree), raising its error codes."""
        with self.lock:
            cached = self.workflows.get(path)
        if cached is not None:
            return cached
        file = self.root.joinpath(*[p for p in path.split("/") if p])
        if not file.is_file():
            raise UncatchableError("direktiv.workflow.notfound", f"workflow not found: {path}")
        try:
            workflow = self.load_flow(file, path.lstrip("/"))
        except WorkflowLoadError as exc:
            raise UncatchableError(
                "direktiv.workflow.invalid", f"cannot parse workflow '{path.lstrip('/')}': {exc}"
            ) from exc
        with self.lock:
            self.workflows[path] = workflow
        return workflow


class Instance:
    """One instance of a flow, run by :meth:`run`."""

    __slots__ = (
        "_owners",
        "cancel",
        "cancelled",
        "children",
        "clock",
        "data",
        "depth",
        "engine",
        "error",
        "event_hops",
        "hard",
        "info",
        "instance_id",
        "iterator",
        "logs",
        "metadata",
        "parent",
        "parent_deadline",
        "parent_id",
        "path",
        "soft",
        "soft_fired",
        "trace",
        "workflow",
    )

    def __init__(
        self,
        engine: Engine,
        workflow: Workflow,
        *,
        path: str,
        clock: Clock,
        instance_id: str | None = None,
        iterator: int = 0,
        depth: int = 0,
        parent_deadline: float | None = None,
        cancel: threading.Event | None = None,
        workflow_owner: Owner | None = None,
        parent_id: str | None = None,
    ) -> None:
        """Prepare an instance of ``workflow``; :meth:`run` runs it.

        ``workflow_owner`` is the already validated owner of its workflow variables, if known.
        """
        self.engine = engine
        self.workflow = workflow
        self.path = path
        self.clock = clock
        self.instance_id = instance_id or new_id()
        self.iterator = iterator
        self.depth = depth
        self.cancel = cancel
        self.data: JSONObject = {}
        self.logs: list[str] = []
        self.metadata: str | None = None
        self.error: tuple[str, str] | None = None
        self.trace: list[StateTrace] = []
        self.children: list[InstanceResult] = []
        # The deadlines (set by run); the soft one fires once.
        self.soft = self.hard = 0.0
        self.soft_fired = False
        self.parent_deadline = parent_deadline
        self.parent: Instance | None = None
        """The instance this one runs a subflow for (cancelling it cancels this one)."""
        self.cancelled: tuple[str, str] | None = None
        """(code, message) once the instance was cancelled (set by the namespace session)."""
        self.event_hops = 0
        self.parent_id = parent_id
        self.info: ObservedInstance | None = None
        """Who this instance is, for the run's observer (set by :meth:`run` when there is one)."""
        self._owners: dict[str, Owner] = {"namespace": engine.namespace_owner}
        if workflow_owner is not None:
            self._owners["workflow"] = workflow_owner

    # ------------------------------------------------------------------ helpers for states

    def owner(self, scope: str) -> Owner:
        """Return the owner of this instance's variables in ``scope``."""
        owner = self._owners.get(scope)
        if owner is None:
            if scope == "workflow":
                owner = Owner.for_workflow(self.engine.namespace, self.path)
            else:
                owner = Owner.for_instance(self.engine.namespace, self.instance_id)
            self._owners[scope] = owner
        return owner

    def ref(self, scope: str, key: str) -> VariableRef:
        """Return the reference to variable ``key`` of this instance's owner in ``scope``."""
        return self.owner(scope).ref(key)

    def log(self, message: str) -> None:
        """Append a line to the instance log."""
        self.logs.append(message)

    def check_time(self, clock: Clock) -> float:
        """Raise the timeout or cancellation due at ``clock``'s time, if any; return that time."""
        now = clock.now()
        reason = self.abort_reason()
        if reason is not None:
            raise UncatchableError(*reason)
        if now >= self.hard:
            raise UncatchableError("direktiv.cancels.timeout.hard", "workflow timed out")
        parent = self.parent_deadline
        if (parent is not None and now >= parent) or (
            self.cancel is not None and self.cancel.is_set()
        ):
            raise UncatchableError("direktiv.cancels.parent", "cancelled by parent workflow")
        if now >= self.soft and not self.soft_fired:
            self.soft_fired = True
            raise CatchableError(SOFT_CODE, SOFT_MESSAGE)
        return now

    def abort_reason(self) -> tuple[str, str] | None:
        """Return (code, message) when this instance or one it runs for was cancelled."""
        if self.cancelled is not None:
            return self.cancelled
        node = self.parent
        while node is not None:
            if node.cancelled is not None:
                return ("direktiv.cancels.parent", "cancelled by parent workflow")
            node = node.parent
        if self.cancel is not None and self.cancel.is_set():
            return ("direktiv.cancels.parent", "cancelled by parent workflow")
        return None

    def time_limit(self) -> float:
        """Return the earliest deadline of the instance (hard, soft, its parent's)."""
        limit = self.hard if self.soft_fired else min(self.hard, self.soft)
        if self.parent_deadline is not None:
            limit = min(limit, self.parent_deadline)
        return limit

    def wait(self, seconds: float, clock: Clock, deadline: float | None = None) -> None:
        """Wait ``seconds`` on ``clock``, stopping early when a deadline passes (then raise)."""
        now = clock.now()
        until = now + max(0.0, seconds)
        limits = [until, self.hard]
        if not self.soft_fired:
            limits.append(self.soft)
        if self.parent_deadline is not None:
            limits.append(self.parent_deadline)
        if deadline is not None:
            limits.append(deadline)
        stop = min(limits)
        if stop > now:
            if self.engine.hub is None:
                clock.sleep(stop - now)
            else:
                self.engine.hub.pause(self, clock, stop)
        self.check_time(clock)
        if deadline is not None and clock.now() >= deadline and stop < until:
            raise CatchableError(SOFT_CODE, SOFT_MESSAGE)

    def run_child(  # noqa: PLR0917 - what a child instance is started with
        self,
        workflow: Workflow,
        path: str,
        body: bytes,
        clock: Clock,
        iterator: int,
        deadline: float,
        cancel: threading.Event | None,
        invoker: str = "subflow",
    ) -> InstanceResult:
        """Run ``workflow`` as a subflow of this instance to its end; return its result.

        A subflow is bound by this instance's deadlines and cancelled with it; an ``async``
        child is not (the reference does not track it).
        """
        attached = invoker != "async"
        child = Instance(
            self.engine,
            workflow,
            path=path,
            clock=clock,
            iterator=iterator,
            depth=self.depth + 1,
            parent_deadline=min(deadline, self.time_limit()) if attached else None,
            cancel=cancel if attached else None,
            parent_id=self.instance_id,
        )
        child.parent = self if attached else None
        child.event_hops = self.event_hops
        if self.engine.hub is not None:
            self.engine.hub.began(child, invoker, self.instance_id)
        result = child.run(body)
        if attached:
            self.children.append(result)
        return result

    # ------------------------------------------------------------------ the state loop

    def run(self, raw_input: bytes | None, *, by_event: bool = False) -> InstanceResult:
        """Run the instance from its start state; return its result (never raises flow errors).

        ``by_event``: the namespace starts an event-started flow (no one else may).
        """
        token = _set_current(self.clock)
        status, code, message, output = "complete", None, None, None
        observer = self.engine.observer
        if observer is not None:
            self.info = ObservedInstance(
                self.instance_id, self.path, self.engine.namespace, self.depth, self.parent_id
            )
            observer.instance_started(self.info, self.workflow)
        try:
            start = self.workflow.start
            if start is not None and start.is_event_start and not by_event:
                raise UncatchableError(
                    "direktiv.workflow.invoke", "cannot manually invoke event-based workflow"
                )
            self.data = {} if raw_input is None else wrap_input(raw_input)
            self.soft, self.hard = self.workflow.timeouts.deadlines(self.clock.now())
            self._loop(LOGIC)
            output = self.data
            if self.error is not None:
                code, message = self.error
                status = "cancelled" if code in _CANCELLED_CODES else "failed"
        except FlowError as exc:
            status, code, message = _status(exc), exc.code, exc.message
        finally:
            _reset_current(token)
        result = InstanceResult(
            instance_id=self.instance_id,
            status=status,
            output=output,
            error_code=code,
            error_message=message,
            logs=tuple(self.logs),
            metadata=self.metadata,
            trace=tuple(self.trace),
            children=tuple(self.children),
            namespace=self.engine.namespace,
            path=self.path,
        )
        if observer is not None and self.info is not None:
            observer.instance_finished(self.info, self.workflow, result)
        if self.engine.hub is not None:
            self.engine.hub.ended(self, result)
        return result

    def _end_state(self, step: StateTrace) -> None:
        """Keep the trace record of a state and tell the observer, if any."""
        self.trace.append(step)
        observer = self.engine.observer
        if observer is not None and self.info is not None:
            observer.state_finished(self.info, step)

    def _loop(self, logic: Mapping[str, StateLogic]) -> None:
        states = self.workflow.state_map
        state = self.workflow.start_state
        for _ in range(MAX_STEPS):
            next_id = self._run_state(state, logic[state.type])
            if not next_id:
                return
            state = states[next_id]
        raise InternalError(
            f"the instance made {MAX_STEPS} state transitions: a loop that never ends? "
            "(direktiv-sdk stops instances after that many)"
        )

    def _run_state(self, state: State, logic: StateLogic) -> str:
        # Reset restores what was set before, also after the inner use_deadline.
        token = use_deadline(None)
        try:
            return self._run_state_within(state, logic)
        finally:
            reset_deadline(token)

    def _expression_deadline(self, state: State, started: float) -> float | None:
        """Return when a js() script of this state must stop (the state's or the flow's end)."""
        limits = [self.hard]
        if not self.soft_fired:
            limits.append(self.soft)
        if state.type in _ONE_SHOT:
            limits.append(started + SHORT_DEADLINE)
        return min(limits)

    def _run_state_within(self, state: State, logic: StateLogic) -> str:
        entry = self.data
        logs = self.logs
        record = Record(len(logs))
        try:
            record.started = self.check_time(self.clock)
            use_deadline(self._expression_deadline(state, record.started))
            if state.log is not None or state.metadata is not None:
                self._log_state(state, entry)
            transform, next_id = logic(self, state, record)
            if transform is not None:
                try:
                    self.data = record.transform = transform.evaluate_object(Snapshot(self.data))
                except CatchableError as exc:
                    raise CatchableError(
                        exc.code, f"unable to apply transform: {exc.message}"
                    ) from exc
        except CatchableError as exc:
            reason = self.abort_reason()
            if reason is not None:
                # Cancelled while the state ran (a killed expression, say): the cancel wins.
                cancel = UncatchableError(*reason)
                now = self.clock.now()
                self._end_state(record.finish(state, entry, "", cancel, logs, False, now))
                raise cancel from exc
            self.data = {**self.data, "error": {"code": exc.code, "msg": exc.message}}
            for index, catch in enumerate(state.catch):
                if catch.matches(exc.code):
                    record.branch = f"catch:{index}"
                    now = self.clock.now()
                    self._end_state(
                        record.finish(state, entry, catch.transition, exc, logs, True, now)
                    )
                    return catch.transition
            self._end_state(record.finish(state, entry, "", exc, logs, False, self.clock.now()))
            raise
        except FlowError as exc:
            self._end_state(record.finish(state, entry, "", exc, logs, False, self.clock.now()))
            raise
        except FunctionNotMappedError:
            raise  # a configuration error of the run, not of the flow: the caller gets it
        except StoreError as exc:
            crash = InternalError(f"store error: {exc}")
            self._end_state(record.finish(state, entry, "", crash, logs, False, self.clock.now()))
            raise crash from exc
        except Exception as exc:  # a bug or a runner that broke its contract: crash, keep the cause
            import traceback  # noqa: PLC0415 - only a crash needs it

            crash = InternalError(f"{type(exc).__name__}: {exc}")
            logs.append("".join(traceback.format_exception(exc)).rstrip())
            self._end_state(record.finish(state, entry, "", crash, logs, False, self.clock.now()))
            raise crash from exc
        self._end_state(record.finish(state, entry, next_id, None, logs, False, self.clock.now()))
        return next_id

    def _log_state(self, state: State, entry: JSONObject) -> None:
        """Evaluate the state's ``log`` and ``metadata`` on the data it started with."""
        snap = Snapshot(entry)
        if state.log is not None:
            text = gojson.dumps_indent(state.log.evaluate(snap))
            self.logs.append(text.strip('"'))
        if state.metadata is not None:
            self.metadata = gojson.dumps_indent(state.metadata.evaluate(snap))


def _status(exc: FlowError) -> str:
    if isinstance(exc, InternalError):
        return "crashed"
    if exc.code in _CANCELLED_CODES:
        return "cancelled"
    return "failed"
