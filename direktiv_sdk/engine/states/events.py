"""Event states: consumeEvent, eventsAnd, eventsXor and generateEvent (§8.3, v0.10 semantics).

Waiting states register a listener with the namespace session (the instance's
:class:`~direktiv_sdk.engine._api.EventHub`) and park until their events arrive or their
deadline passes; generateEvent builds a CloudEvent and hands it to the session.
"""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING, Final

from direktiv_sdk.engine._api import (
    SHORT_DEADLINE,
    SOFT_CODE,
    SOFT_MESSAGE,
    InstanceView,
    Outcome,
    Record,
    new_id,
)
from direktiv_sdk.engine.cloudevent import CloudEvent, parse_event
from direktiv_sdk.engine.listeners import EventFilter, instance_order
from direktiv_sdk.errors import (
    CatchableError,
    CloudEventError,
    InternalError,
    UncatchableError,
)
from direktiv_sdk.expr import gojson
from direktiv_sdk.expr.jx import Snapshot
from direktiv_sdk.flow.events import (
    ConsumeEventState,
    EventsAndState,
    EventsXorState,
    GenerateEventState,
)
from direktiv_sdk.flow.model import EventDef, State

if TYPE_CHECKING:
    from collections.abc import Sequence

    from direktiv_sdk.engine._api import EventHub
    from direktiv_sdk.expr.gojson import JSON, JSONObject
    from direktiv_sdk.flow._duration import Duration

__all__ = ["MAX_EVENT_HOPS", "consume_event", "events_and", "events_xor", "generate_event"]

LONG_DEADLINE: Final = 15 * 60.0
"""Seconds a waiting state waits when it has no ``timeout`` (``DefaultLongDeadline``)."""
MAX_EVENT_HOPS: Final = 64
"""How many generated events may follow one another (a loop of flows ends with an error)."""


def _hub(inst: InstanceView) -> EventHub:
    hub = inst.engine.hub
    if hub is None:
        raise InternalError("event states need a namespace session (run_workflow or Namespace)")
    return hub


def _filter(inst: InstanceView, event: EventDef, snap: Snapshot) -> EventFilter:
    """Evaluate a waiting state's context values on the instance data (``%v`` text)."""
    context: list[tuple[str, str]] = []
    for key, template in event.context:
        try:
            value = template.evaluate(snap)
        except CatchableError as exc:
            raise UncatchableError(
                "direktiv.event.jq", f"failed to process event context key '{key}': {exc.message}"
            ) from exc
        context.append((key, gojson.format_v(value)))
    return EventFilter(event.type, tuple(context))


def _deadline(inst: InstanceView, timeout: Duration | None) -> float:
    now = inst.clock.now()
    if timeout is None:
        return now + LONG_DEADLINE
    return timeout.shift(now + SHORT_DEADLINE)


def _listen(
    inst: InstanceView, events: Sequence[EventDef], mode: str, timeout: Duration | None
) -> list[CloudEvent]:
    """Wait for ``events`` (``single``: the first match, ``all``: one of each type)."""
    snap = Snapshot(inst.data)
    filters = instance_order([_filter(inst, e, snap) for e in events])
    until = _deadline(inst, timeout)
    limit = min(until, inst.time_limit())
    received = _hub(inst).await_events(inst, filters, mode, limit, inst.clock)
    inst.check_time(inst.clock)
    if received is None:
        raise CatchableError(SOFT_CODE, SOFT_MESSAGE)
    return received


def _store(inst: InstanceView, key: str, event: CloudEvent) -> None:
    inst.data = {**inst.data, key: event.as_data()}


def consume_event(inst: InstanceView, state: State, record: Record) -> Outcome:
    """Wait for one matching event; store it under ``.<type>``."""
    assert isinstance(state, ConsumeEventState)
    received = _listen(inst, [state.event], "single", state.timeout)
    if len(received) != 1:
        raise InternalError("multiple events returned when we were expecting just one")
    _store(inst, received[0].type, received[0])
    return state.transform, state.transition


def events_and(inst: InstanceView, state: State, record: Record) -> Outcome:
    """Wait for one event of every listed type; store each under its type."""
    assert isinstance(state, EventsAndState)
    received = _listen(inst, state.events, "all", state.timeout)
    if len(received) != len(state.events):
        raise InternalError("incorrect number of events returned")
    keyed: dict[str, CloudEvent] = {}
    for index, event in enumerate(received):
        key = event.type if event.type not in keyed else f"{event.type}.{index}"
        keyed[key] = event
    data = dict(inst.data)
    for key, event in keyed.items():
        data[key] = event.as_data()
    inst.data = data
    return state.transform, state.transition


def events_xor(inst: InstanceView, state: State, record: Record) -> Outcome:
    """Wait for the first of the listed events; its entry picks transform and transition."""
    assert isinstance(state, EventsXorState)
    received = _listen(inst, [entry.event for entry in state.events], "single", state.timeout)
    if len(received) != 1:
        raise InternalError("incorrect number of events returned")
    event = received[0]
    _store(inst, event.type, event)
    for entry in state.events:
        if entry.event.type == event.type:
            return entry.transform, entry.transition
    raise InternalError("got the wrong type of event back")


def _event_data(ctype: str, value: JSON) -> tuple[str, JSON | bytes]:
    """Return (datacontenttype, data) as the reference's generateEvent sets them."""
    if isinstance(value, str) and ctype and ctype != "application/json":
        try:
            return ctype, base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            pass  # the reference then overwrites the data as JSON, content type included
    return "application/json", value


def generate_event(inst: InstanceView, state: State, record: Record) -> Outcome:
    """Build a CloudEvent from the state and deliver it to the namespace (maybe delayed)."""
    assert isinstance(state, GenerateEventState)
    definition = state.event
    snap = Snapshot(inst.data)
    value = None if definition.data is None else definition.data.evaluate(snap)
    ctype, data = _event_data(definition.datacontenttype, value)
    attributes: JSONObject = {
        "specversion": "1.0",
        "id": new_id(),
        "source": definition.source,
        "type": definition.type,
        "datacontenttype": ctype,
    }
    for key, template in definition.context:
        try:
            attributes[key] = template.evaluate(snap)
        except CatchableError as exc:
            raise UncatchableError(
                "direktiv.event.jq", f"failed to process event context key '{key}': {exc.message}"
            ) from exc
    hops = inst.event_hops + 1
    if hops > MAX_EVENT_HOPS:
        raise UncatchableError(
            "direktiv.limits.events",
            f"event {definition.type!r} would be the {hops}th event generated in a chain "
            f"(at most {MAX_EVENT_HOPS}): do flows generate each other's events in a loop?",
        )
    event = _build(inst, attributes, data, hops)
    now = inst.clock.now()
    due = 0.0 if state.delay is None else state.delay.shift(now)
    inst.log(f"broadcasting event type:{definition.type}/source:{definition.source}")
    _hub(inst).publish(inst, event, due)
    return state.transform, state.transition


def _build(inst: InstanceView, attributes: JSONObject, data: JSON | bytes, hops: int) -> CloudEvent:
    """Validate the event; drop extension attributes the SDK refuses, as the reference does."""
    while True:
        try:
            event = parse_event({**attributes, "data": None}, hops=hops)
        except CloudEventError as exc:
            if exc.attribute in ("specversion", "id", "source", "type", "datacontenttype"):
                raise CatchableError(
                    "direktiv.event.invalid", f"cannot generate event: {exc.detail}"
                ) from exc
            inst.log(f"unable to set event extension: {exc.detail}")
            attributes.pop(exc.attribute, None)
            continue
        return CloudEvent(event.attributes, data, True, hops)
