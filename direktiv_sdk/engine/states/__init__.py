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
    unsupported,
    validate,
)

if TYPE_CHECKING:
    from direktiv_sdk.engine._api import StateLogic

__all__ = ["LOGIC"]

LOGIC: Final[dict[str, StateLogic]] = {
    "action": run_action,
    "consumeEvent": unsupported,
    "delay": delay,
    "error": error,
    "eventsAnd": unsupported,
    "eventsXor": unsupported,
    "foreach": run_foreach,
    "generateEvent": unsupported,
    "getter": getter,
    "noop": noop,
    "parallel": run_parallel,
    "setter": setter,
    "switch": switch,
    "validate": validate,
}
"""The logic of every state type the loader accepts (``model.STATE_TYPES``)."""
