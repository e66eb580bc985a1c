"""The documented import path of :mod:`harness.testing.store_tests`."""

from __future__ import annotations

from harness.testing.store_tests import (
    VariableStoreStateMachine,
    VariableStoreTests,
    run_state_machine,
)

__all__ = [
    "VariableStoreStateMachine",
    "VariableStoreTests",
    "run_state_machine",
]
