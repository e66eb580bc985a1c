"""What a running instance tells observers: the seam for live traces and workflow coverage.

The engine calls a :class:`RunObserver` when an instance starts, after each of its states, and
when it ends (subflow instances too, from the thread that runs them). Observers must be quick
and thread-safe; with no observer the engine pays one ``is None`` test per state.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

from direktiv_sdk._compat import override

if TYPE_CHECKING:
    from direktiv_sdk.engine.results import InstanceResult, StateTrace
    from direktiv_sdk.flow.model import Workflow

__all__ = ["ObservedInstance", "ObserverGroup", "RunObserver"]


class ObservedInstance(NamedTuple):
    """Which instance an observer call is about."""

    instance_id: str
    path: str
    namespace: str
    depth: int
    """0 for the instance a run started, 1 for its subflows, and so on."""
    parent_id: str | None


class RunObserver:
    """Base of observers: every hook does nothing; override the ones you need."""

    def instance_started(self, info: ObservedInstance, workflow: Workflow) -> None:
        """Called before the instance runs its first state."""

    def state_finished(self, info: ObservedInstance, step: StateTrace) -> None:
        """Called when a state has ended (also when it failed or its error was caught)."""

    def instance_finished(
        self, info: ObservedInstance, workflow: Workflow, result: InstanceResult
    ) -> None:
        """Called with the instance's result when it has ended."""


class ObserverGroup(RunObserver):
    """Several observers called in order."""

    def __init__(self, observers: Sequence[RunObserver]) -> None:
        self.observers = tuple(observers)

    @override
    def instance_started(self, info: ObservedInstance, workflow: Workflow) -> None:
        for observer in self.observers:
            observer.instance_started(info, workflow)

    @override
    def state_finished(self, info: ObservedInstance, step: StateTrace) -> None:
        for observer in self.observers:
            observer.state_finished(info, step)

    @override
    def instance_finished(
        self, info: ObservedInstance, workflow: Workflow, result: InstanceResult
    ) -> None:
        for observer in self.observers:
            observer.instance_finished(info, workflow, result)
