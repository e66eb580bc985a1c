"""The logic of each state type, one module per family, and the table the instance loop reads.

Every logic function takes the instance (as :class:`~direktiv_sdk.engine._api.InstanceView`),
the state and its :class:`~direktiv_sdk.engine._api.Record`, and returns the transform to apply
and the next state id.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from direktiv_sdk.engine.states.actions import run_action, run_foreach, run_parallel
from direktiv_sdk.engine.states.data import (
    delay,
    error,
    getter,
    noop,
    setter,
    switch,
    validate,
)
from direktiv_sdk.engine.states.events import (
    consume_event,
    events_and,
    events_xor,
    generate_event,
)

if TYPE_CHECKING:
    from direktiv_sdk.engine._api import StateLogic

__all__ = ["LOGIC"]

LOGIC: Final[dict[str, StateLogic]] = {
    "action": run_action,
    "consumeEvent": consume_event,
    "delay": delay,
    "error": error,
    "eventsAnd": events_and,
    "eventsXor": events_xor,
    "foreach": run_foreach,
    "generateEvent": generate_event,
    "getter": getter,
    "noop": noop,
    "parallel": run_parallel,
    "setter": setter,
    "switch": switch,
    "validate": validate,
}
"""The logic of every state type the loader accepts (``model.STATE_TYPES``)."""
