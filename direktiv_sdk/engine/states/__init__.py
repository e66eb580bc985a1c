"""The logic of each state type, one module per family, and the table the instance loop reads.

Every logic function takes the instance (as :class:`~direktiv_sdk.engine._api.InstanceView`),
the state and its :class:`~direktiv_sdk.engine._api.Record`, and returns the transform to apply
and the next state id. A family's module is imported when a flow first enters one of its
states: a run of getters and setters never loads the action, branch or event machinery.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from direktiv_sdk.engine._api import StateLogic

__all__ = ["LOGIC", "LOGIC_NAMES"]

LOGIC_NAMES: Final = {
    "action": ("actions", "run_action"),
    "consumeEvent": ("events", "consume_event"),
    "delay": ("data", "delay"),
    "error": ("data", "error"),
    "eventsAnd": ("events", "events_and"),
    "eventsXor": ("events", "events_xor"),
    "foreach": ("actions", "run_foreach"),
    "generateEvent": ("events", "generate_event"),
    "getter": ("data", "getter"),
    "noop": ("data", "noop"),
    "parallel": ("actions", "run_parallel"),
    "setter": ("data", "setter"),
    "switch": ("data", "switch"),
    "validate": ("data", "validate"),
}
"""Every state type the loader accepts (``model.STATE_TYPES``): its family module and function."""


class _LogicTable(dict[str, "StateLogic"]):
    """``{state type: logic}``, filled in as the types are first looked up."""

    def __missing__(self, state_type: str) -> StateLogic:
        module, name = LOGIC_NAMES[state_type]
        logic: StateLogic = getattr(importlib.import_module(f"{__name__}.{module}"), name)
        self[state_type] = logic
        return logic


LOGIC: Final[dict[str, StateLogic]] = _LogicTable()
"""The logic of every state type; a type's family module loads on its first lookup."""
