"""The typed model of the event states: consumeEvent, eventsAnd, eventsXor, generateEvent (§8.3)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from direktiv_sdk.flow.model import EventDef, EventState

if TYPE_CHECKING:
    from direktiv_sdk.expr.jx import Template
    from direktiv_sdk.flow._duration import Duration

__all__ = [
    "ConsumeEventState",
    "EventsAndState",
    "EventsXorEntry",
    "EventsXorState",
    "GenerateEventDef",
    "GenerateEventState",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsumeEventState(EventState):
    """Waits for one event of ``event.type`` whose context matches."""

    event: EventDef
    timeout: Duration | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class EventsAndState(EventState):
    """Waits for one event of each listed type."""

    events: tuple[EventDef, ...]
    timeout: Duration | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class EventsXorEntry:
    """One branch of an eventsXor state: its event, transform and transition."""

    event: EventDef
    transform: Template | None = None
    transition: str = ""
    line: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class EventsXorState(EventState):
    """Waits for the first of the listed events; that entry's transform and transition follow."""

    events: tuple[EventsXorEntry, ...]
    timeout: Duration | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class GenerateEventDef:
    """The event a generateEvent state sends."""

    type: str
    source: str
    data: Template | None = None
    datacontenttype: str = ""
    context: tuple[tuple[str, Template], ...] = ()
    """Extension attributes, as templates evaluated on the data."""


@dataclass(frozen=True, slots=True, kw_only=True)
class GenerateEventState(EventState):
    """Sends one CloudEvent to the namespace, now or after ``delay``."""

    event: GenerateEventDef
    delay: Duration | None = None
