"""The seam between the instance loop and the state logic: what a state may use of its instance.

The loop (:mod:`direktiv_sdk.engine._runtime`) calls one :data:`StateLogic` per state type from
the table in :mod:`direktiv_sdk.engine.states`; the logic sees its instance only through
:class:`InstanceView`, so neither side imports the other.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Final, Protocol, TypeAlias

from direktiv_sdk.engine.results import StateTrace
from direktiv_sdk.expr import gojson

if TYPE_CHECKING:
    import threading
    from collections.abc import Callable, Mapping, Sequence
    from pathlib import Path

    from direktiv_sdk.engine.clock import Clock
    from direktiv_sdk.engine.cloudevent import CloudEvent
    from direktiv_sdk.engine.functions import FunctionRunner
    from direktiv_sdk.engine.listeners import EventFilter
    from direktiv_sdk.engine.results import CallTrace, InstanceResult, VariableWrite
    from direktiv_sdk.errors import FlowError
    from direktiv_sdk.expr.gojson import JSON, JSONObject
    from direktiv_sdk.expr.jx import Template
    from direktiv_sdk.flow.model import State, Workflow
    from direktiv_sdk.store import VariableRef, VariableStore

__all__ = [
    "MAX_SUBFLOW_DEPTH",
    "SHORT_DEADLINE",
    "SOFT_CODE",
    "SOFT_MESSAGE",
    "EngineView",
    "EventHub",
    "InstanceView",
    "Outcome",
    "Record",
    "StateLogic",
    "new_id",
    "roundtrip",
]

MAX_SUBFLOW_DEPTH: Final = 5
"""How deep subflows may nest (the reference's ``maxSubflowDepth``)."""
SHORT_DEADLINE: Final = 5.0
"""Seconds a one-shot state may take (``DefaultShortDeadline``)."""
SOFT_CODE: Final = "direktiv.cancels.timeout.soft"
SOFT_MESSAGE: Final = "operation timed out"


def new_id() -> str:
    """Return a new random UUID v4 string (instance and action ids).

    Built from ``os.urandom`` like ``uuid.uuid4``: importing :mod:`uuid` loads :mod:`platform`,
    which costs a CLI run more than the rest of a small flow.
    """
    h = os.urandom(16).hex()
    variant = "89ab"[int(h[16], 16) & 3]  # RFC 4122: the variant bits are 10xx
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{variant}{h[17:20]}-{h[20:]}"


def roundtrip(value: JSON) -> JSON:
    """Return ``value`` as it looks after a Go-JSON round trip (ints become floats)."""
    return gojson.loads(gojson.dumps(value))


class EventHub(Protocol):
    """The namespace session an instance runs in: waits, events and background work."""

    def pause(self, inst: InstanceView, clock: Clock, until: float) -> None:
        """Wait until ``clock`` reads ``until`` or the instance is cancelled."""

    def await_events(
        self,
        inst: InstanceView,
        filters: Sequence[EventFilter],
        mode: str,
        until: float,
        clock: Clock,
    ) -> list[CloudEvent] | None:
        """Wait for the events of ``filters`` (``single``/``all``); ``None`` when time is up."""

    def publish(self, inst: InstanceView | None, event: CloudEvent, delay_until: float) -> None:
        """Deliver ``event`` to the namespace (when the clock reaches ``delay_until``)."""

    def spawn(self, name: str, work: Callable[[], None]) -> None:
        """Run ``work`` in the background (an async action)."""

    def began(self, inst: InstanceView, invoker: str, parent: str | None) -> None:
        """Record a child instance that starts now."""

    def ended(self, inst: InstanceView, result: InstanceResult) -> None:
        """Record the result of an instance."""


class EngineView(Protocol):
    """What every instance of one run shares, as state logic sees it."""

    @property
    def hub(self) -> EventHub | None:
        """The namespace session (``None`` outside one)."""

    @property
    def store(self) -> VariableStore:
        """The variable store."""

    @property
    def namespace(self) -> str:
        """The namespace the run belongs to."""

    @property
    def root(self) -> Path:
        """The namespace file tree (``file`` scope, subflow files)."""

    @property
    def runners(self) -> Mapping[str, FunctionRunner]:
        """Function runners by function id."""

    @property
    def secrets(self) -> Mapping[str, str]:
        """Namespace secrets by name."""

    def load_child(self, path: str) -> Workflow:
        """Return the flow at workflow ``path``, raising its error codes."""


class InstanceView(Protocol):
    """What state logic may use of the instance it runs in."""

    data: JSONObject
    error: tuple[str, str] | None

    @property
    def engine(self) -> EngineView:
        """What the run shares."""

    @property
    def workflow(self) -> Workflow:
        """The flow this instance runs."""

    @property
    def path(self) -> str:
        """The flow's workflow path."""

    @property
    def clock(self) -> Clock:
        """The instance's clock."""

    @property
    def instance_id(self) -> str:
        """The instance id."""

    @property
    def iterator(self) -> int:
        """The foreach index this instance runs for (0 elsewhere)."""

    @property
    def depth(self) -> int:
        """How deep this instance is nested in subflows (0 at the top)."""

    @property
    def event_hops(self) -> int:
        """How many generated events led to this instance (ends event loops)."""

    def time_limit(self) -> float:
        """Return the earliest deadline of the instance (hard, soft, its parent's)."""

    def ref(self, scope: str, key: str) -> VariableRef:
        """Return the reference to variable ``key`` of this instance's owner in ``scope``."""

    def log(self, message: str) -> None:
        """Append a line to the instance log."""

    def check_time(self, clock: Clock) -> float:
        """Raise the timeout or cancellation due at ``clock``'s time, if any; return that time."""

    def wait(self, seconds: float, clock: Clock, deadline: float | None = None) -> None:
        """Wait ``seconds`` on ``clock``, stopping early when a deadline passes (then raise)."""

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

        ``invoker`` ``async``: a detached child (an async action), not bound to this
        instance's deadlines or cancellation.
        """


class Record:
    """What a state did, gathered while it runs (cheap: references only)."""

    __slots__ = ("branch", "calls", "first_log", "started", "transform", "var", "writes")

    def __init__(self, first_log: int) -> None:
        self.first_log = first_log
        self.started = 0.0
        """The clock's time when the state started."""
        self.var: JSONObject | None = None
        self.writes: tuple[VariableWrite, ...] = ()
        self.transform: JSONObject | None = None
        self.calls: list[CallTrace] = []
        """Function calls, appended as they end (branches append from their threads)."""
        self.branch = ""
        """The way out taken (see :attr:`StateTrace.branch`)."""

    def finish(  # noqa: PLR0917 - every part of the trace record
        self,
        state: State,
        entry: JSONObject,
        next_id: str,
        error: FlowError | None,
        logs: list[str],
        caught: bool,
        finished: float,
    ) -> StateTrace:
        """Return the trace record of ``state``, which ended with ``error`` (``None``: fine)."""
        calls = tuple(self.calls) if self.calls else ()
        writes = self.writes
        if calls:
            writes = writes + tuple(w for call in calls for w in call.writes)
        return StateTrace(
            state.id,
            state.type,
            entry,
            self.var,
            writes,
            self.transform,
            next_id,
            None if error is None else error.code,
            None if error is None else error.message,
            caught,
            tuple(logs[self.first_log :]) if len(logs) > self.first_log else (),
            calls,
            self.branch,
            self.started or finished,
            finished,
        )


Outcome: TypeAlias = "tuple[Template | None, str]"
"""What state logic returns: the transform to apply (if any) and the next state id (``""``: end)."""

StateLogic: TypeAlias = "Callable[[InstanceView, State, Record], Outcome]"
"""The logic of one state type."""
