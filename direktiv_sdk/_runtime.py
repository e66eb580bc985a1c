"""One running instance: the state loop, error handling, deadlines and the result (§1.4-§1.9).

An :class:`Engine` holds what every instance of one run shares (store, namespace, file tree,
function runners, secrets); an :class:`Instance` runs one flow on it. Subflows are child
instances on the same engine. Data is treated immutably: every write makes a new top-level
dict, so trace records and snapshots can keep references instead of copies.
"""

from __future__ import annotations

import base64
import os
import threading
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final

from direktiv_sdk import gojson
from direktiv_sdk._results import InstanceResult, StateTrace
from direktiv_sdk.clock import Clock, _reset_current, _set_current
from direktiv_sdk.errors import (
    CatchableError,
    FlowError,
    FunctionNotMappedError,
    InternalError,
    StoreError,
    UncatchableError,
    WorkflowLoadError,
)
from direktiv_sdk.jx import Snapshot, Template
from direktiv_sdk.loader import load_workflow
from direktiv_sdk.model import State, Workflow
from direktiv_sdk.store import Owner, VariableStore

if TYPE_CHECKING:
    from collections.abc import Mapping

    from direktiv_sdk._results import VariableWrite
    from direktiv_sdk.functions import FunctionRunner
    from direktiv_sdk.gojson import JSON, JSONObject

__all__ = [
    "MAX_STEPS",
    "MAX_SUBFLOW_DEPTH",
    "SHORT_DEADLINE",
    "SOFT_CODE",
    "SOFT_MESSAGE",
    "Engine",
    "Instance",
    "new_id",
    "roundtrip",
    "wrap_input",
]

MAX_STEPS: Final = 10_000
"""State transitions one instance may make (ends loops that never end, even on a virtual clock)."""
MAX_SUBFLOW_DEPTH: Final = 5
"""How deep subflows may nest (the reference's ``maxSubflowDepth``)."""
SHORT_DEADLINE: Final = 5.0
"""Seconds a one-shot state may take (``DefaultShortDeadline``)."""
SOFT_CODE: Final = "direktiv.cancels.timeout.soft"
SOFT_MESSAGE: Final = "operation timed out"
_CANCELLED_CODES: Final = ("direktiv.cancels.parent", "direktiv.cancels.api")


def new_id() -> str:
    """Return a new random UUID v4 string (like ``str(uuid.uuid4())``, at a third of the cost)."""
    b = bytearray(os.urandom(16))
    b[6] = (b[6] & 0x0F) | 0x40
    b[8] = (b[8] & 0x3F) | 0x80
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def wrap_input(raw: bytes | None) -> JSONObject:
    """Return the initial instance data for start input ``raw`` (§1.5; ``None`` → ``{}``)."""
    if raw is None:
        return {}
    try:
        value = gojson.loads(raw)
    except ValueError:
        return {"input": base64.b64encode(raw).decode("ascii")}
    if isinstance(value, dict):
        return value
    return {"input": value}


@dataclass
class Engine:
    """What every instance of one run shares."""

    store: VariableStore
    namespace: str
    root: Path
    runners: Mapping[str, FunctionRunner]
    secrets: Mapping[str, str]
    namespace_owner: Owner
    workflows: dict[str, Workflow] = field(default_factory=dict)
    """Flows loaded for subflow calls, by workflow path (the top-level flow included)."""
    lock: threading.Lock = field(default_factory=threading.Lock)

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
            workflow = load_workflow(file, path=path.lstrip("/"))
        except WorkflowLoadError as exc:
            raise UncatchableError(
                "direktiv.workflow.invalid", f"cannot parse workflow '{path.lstrip('/')}': {exc}"
            ) from exc
        with self.lock:
            self.workflows[path] = workflow
        return workflow


class _Timeouts:
    """An instance's deadlines; the soft one fires once."""

    __slots__ = ("hard", "parent", "soft", "soft_fired")

    def __init__(self, soft: float, hard: float, parent: float | None) -> None:
        self.soft = soft
        self.hard = hard
        self.parent = parent
        self.soft_fired = False


class Instance:
    """One instance of a flow, run by :meth:`run`."""

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
    ) -> None:
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
        self.timeouts = _Timeouts(0.0, 0.0, parent_deadline)
        self._owners: dict[str, Owner] = {"namespace": engine.namespace_owner}

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

    def preset_owner(self, scope: str, owner: Owner) -> None:
        """Use an already validated ``owner`` for ``scope``."""
        self._owners[scope] = owner

    def log(self, message: str) -> None:
        """Append a line to the instance log."""
        self.logs.append(message)

    def check_time(self, clock: Clock) -> None:
        """Raise the timeout or cancellation that is due at ``clock``'s time, if any."""
        now = clock.now()
        t = self.timeouts
        if now >= t.hard:
            raise UncatchableError("direktiv.cancels.timeout.hard", "workflow timed out")
        if (t.parent is not None and now >= t.parent) or (
            self.cancel is not None and self.cancel.is_set()
        ):
            raise UncatchableError("direktiv.cancels.parent", "cancelled by parent workflow")
        if not t.soft_fired and now >= t.soft:
            t.soft_fired = True
            raise CatchableError(SOFT_CODE, SOFT_MESSAGE)

    def wait(self, seconds: float, clock: Clock, deadline: float | None = None) -> None:
        """Wait ``seconds`` on ``clock``, stopping early when a deadline passes (then raise)."""
        now = clock.now()
        t = self.timeouts
        until = now + max(0.0, seconds)
        limits = [until, t.hard]
        if not t.soft_fired:
            limits.append(t.soft)
        if t.parent is not None:
            limits.append(t.parent)
        if deadline is not None:
            limits.append(deadline)
        stop = min(limits)
        if stop > now:
            clock.sleep(stop - now)
        self.check_time(clock)
        if deadline is not None and clock.now() >= deadline and stop < until:
            raise CatchableError(SOFT_CODE, SOFT_MESSAGE)

    # ------------------------------------------------------------------ the state loop

    def run(self, raw_input: bytes | None) -> InstanceResult:
        """Run the instance from its start state; return its result (never raises flow errors)."""
        token = _set_current(self.clock)
        status, code, message, output = "complete", None, None, None
        try:
            start = self.workflow.start
            if start is not None and start.is_event_start:
                raise UncatchableError(
                    "direktiv.workflow.invoke", "cannot manually invoke event-based workflow"
                )
            self.data = wrap_input(raw_input)
            soft, hard = self.workflow.timeouts.deadlines(self.clock.now())
            self.timeouts.soft, self.timeouts.hard = soft, hard
            self._loop()
            output = self.data
            if self.error is not None:
                code, message = self.error
                status = "cancelled" if code in _CANCELLED_CODES else "failed"
        except FlowError as exc:
            status, code, message = _status(exc), exc.code, exc.message
        finally:
            _reset_current(token)
        return InstanceResult(
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

    def _loop(self) -> None:
        logic = _LOGIC or _load_logic()
        state = self.workflow.start_state
        states = self.workflow.state_map
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
        entry = self.data
        record = _Record(len(self.logs))
        try:
            self.check_time(self.clock)
            if state.log is not None or state.metadata is not None:
                snap = Snapshot(entry)
                if state.log is not None:
                    text = gojson.dumps_indent(state.log.evaluate(snap))
                    self.logs.append(text.strip('"'))
                if state.metadata is not None:
                    self.metadata = gojson.dumps_indent(state.metadata.evaluate(snap))
            transform, next_id = logic(self, state, record)
            if transform is not None:
                try:
                    self.data = transform.evaluate_object(Snapshot(self.data))
                except CatchableError as exc:
                    raise CatchableError(
                        exc.code, f"unable to apply transform: {exc.message}"
                    ) from exc
                record.transform = self.data
        except CatchableError as exc:
            self.data = {**self.data, "error": {"code": exc.code, "msg": exc.message}}
            for catch in state.catch:
                if catch.matches(exc.code):
                    self.trace.append(
                        record.finish(
                            state,
                            entry,
                            next_id=catch.transition,
                            error=exc,
                            caught=True,
                            logs=self.logs,
                        )
                    )
                    return catch.transition
            self.trace.append(
                record.finish(state, entry, next_id="", error=exc, caught=False, logs=self.logs)
            )
            raise
        except FlowError as exc:
            self.trace.append(
                record.finish(state, entry, next_id="", error=exc, caught=False, logs=self.logs)
            )
            raise
        except FunctionNotMappedError:
            raise  # a configuration error of the run, not of the flow: the caller gets it
        except StoreError as exc:
            crash = InternalError(f"store error: {exc}")
            self.trace.append(
                record.finish(state, entry, next_id="", error=crash, caught=False, logs=self.logs)
            )
            raise crash from exc
        except Exception as exc:  # a bug or a runner that broke its contract: crash, keep the cause
            crash = InternalError(f"{type(exc).__name__}: {exc}")
            self.logs.append("".join(traceback.format_exception(exc)).rstrip())
            self.trace.append(
                record.finish(state, entry, next_id="", error=crash, caught=False, logs=self.logs)
            )
            raise crash from exc
        self.trace.append(
            record.finish(state, entry, next_id=next_id, error=None, caught=False, logs=self.logs)
        )
        return next_id


class _Record:
    """What a state did, gathered while it runs (cheap: references only)."""

    __slots__ = ("first_log", "transform", "var", "writes")

    def __init__(self, first_log: int) -> None:
        self.first_log = first_log
        self.var: JSONObject | None = None
        self.writes: list[VariableWrite] = []
        self.transform: JSONObject | None = None

    def finish(
        self,
        state: State,
        entry: JSONObject,
        *,
        next_id: str,
        error: FlowError | None,
        caught: bool,
        logs: list[str],
    ) -> StateTrace:
        """Return the trace record of ``state``."""
        return StateTrace(
            state.id,
            state.type,
            entry,
            self.var,
            tuple(self.writes),
            self.transform,
            next_id,
            None if error is None else error.code,
            None if error is None else error.message,
            caught,
            tuple(logs[self.first_log :]) if len(logs) > self.first_log else (),
        )


if TYPE_CHECKING:
    from collections.abc import Callable

    StateLogic = Callable[[Instance, State, _Record], tuple[Template | None, str]]


_LOGIC: dict[str, StateLogic] = {}


def _load_logic() -> dict[str, StateLogic]:
    # _states imports this module (states get an Instance), so it is imported on first run.
    from direktiv_sdk._states import LOGIC  # noqa: PLC0415

    _LOGIC.update(LOGIC)
    return _LOGIC


def _status(exc: FlowError) -> str:
    if isinstance(exc, InternalError):
        return "crashed"
    if exc.code in _CANCELLED_CODES:
        return "cancelled"
    return "failed"


def roundtrip(value: JSON) -> JSON:
    """Return ``value`` as it looks after a Go-JSON round trip (ints become floats)."""
    return gojson.loads(gojson.dumps(value))
