"""A Hypothesis state machine that checks a variable store against a plain dict model."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule, run_state_machine_as_test

from direktiv_sdk.errors import PreconditionFailedError, UnsupportedOperationError
from direktiv_sdk.store import Owner, VariableMeta, VariableStore

__all__ = [
    "DEFAULT_SETTINGS",
    "VariableStoreStateMachine",
    "run_state_machine",
    "state_machine_for",
]

DEFAULT_SETTINGS = settings(
    max_examples=30,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
"""Bounded so the machine stays fast even on a networked backend (about 750 operations)."""

OWNERS = (
    Owner.for_namespace("ns"),
    Owner.for_namespace("ns2"),
    Owner.for_workflow("ns", "/a"),
    Owner.for_workflow("ns", "/a/b"),
    Owner.for_instance("ns", "i1"),
)
_T = TypeVar("_T")

owners = st.sampled_from(OWNERS)
keys = st.sampled_from(["a", "b", "c.d", "A"])
values = st.binary(max_size=40)
mime_types = st.sampled_from(["", "text/plain", "application/json"])
picks = st.integers(min_value=0, max_value=1_000)


@dataclass(frozen=True, slots=True)
class _Entry:
    data: bytes
    mime_type: str
    version: str


class VariableStoreStateMachine(RuleBasedStateMachine):
    """Random set/get/open/delete/list/clear/update and conditional writes against a dict.

    Set :attr:`store_factory` (or use :func:`state_machine_for`); the machine clears its owners
    at the start of every example and never closes the store.
    """

    store_factory: ClassVar[Callable[[], VariableStore] | None] = None

    def __init__(self) -> None:
        super().__init__()
        factory = type(self).store_factory
        if factory is None:
            raise TypeError(
                f"{type(self).__name__}.store_factory is not set; "
                "use state_machine_for(factory) or run_state_machine(factory)"
            )
        self.store = factory()
        for owner in OWNERS:
            self.store.clear(owner)
        # Per owner, in creation order: an overwrite keeps its place, a re-create moves last.
        self.model: dict[Owner, dict[str, _Entry]] = {owner: {} for owner in OWNERS}
        self.versions: list[str] = []

    # ------------------------------------------------------------------ helpers

    def _record(self, owner: Owner, key: str, data: bytes, mime: str, meta: VariableMeta) -> None:
        assert meta.ref == owner.ref(key)
        assert meta.size == len(data)
        assert meta.mime_type == mime
        assert meta.version not in self.versions, "a write reused an earlier version token"
        self.versions.append(meta.version)
        self.model[owner][key] = _Entry(data, mime, meta.version)

    def _token(self, owner: Owner, key: str, stale: bool, pick: int) -> str:
        current = self.model[owner].get(key)
        if current is not None and not stale:
            return current.version
        old = [v for v in self.versions if current is None or v != current.version]
        return old[pick % len(old)] if old else "never-issued"

    def _expect_failure(self, owner: Owner, key: str, version: str | None) -> str | None:
        """Return the reason a conditional write must fail, or None if it must succeed."""
        current = self.model[owner].get(key)
        if version is None:
            return "it already exists" if current is not None else None
        if current is None:
            return "it does not exist"
        if current.version != version:
            return f"its version is no longer {version!r}"
        return None

    def _conditional(
        self, owner: Owner, key: str, version: str | None, act: Callable[[], _T]
    ) -> _T | None:
        if not self.store.supports_conditional_set:
            with pytest.raises(UnsupportedOperationError):
                act()
            return None
        reason = self._expect_failure(owner, key, version)
        if reason is None:
            return act()
        with pytest.raises(PreconditionFailedError) as info:
            act()
        assert str(info.value) == f"precondition failed for {owner.ref(key)}: {reason}"
        return None

    # ------------------------------------------------------------------ rules

    @rule(owner=owners, key=keys, data=values, mime=mime_types)
    def set_value(self, owner: Owner, key: str, data: bytes, mime: str) -> None:
        self._record(owner, key, data, mime, self.store.set(owner.ref(key), data, mime_type=mime))

    @rule(owner=owners, key=keys, data=values)
    def set_if_absent(self, owner: Owner, key: str, data: bytes) -> None:
        meta = self._conditional(
            owner, key, None, lambda: self.store.set(owner.ref(key), data, if_absent=True)
        )
        if meta is not None:
            self._record(owner, key, data, "", meta)

    @rule(owner=owners, key=keys, data=values, stale=st.booleans(), pick=picks)
    def set_if_version(self, owner: Owner, key: str, data: bytes, stale: bool, pick: int) -> None:
        version = self._token(owner, key, stale, pick)
        meta = self._conditional(
            owner, key, version, lambda: self.store.set(owner.ref(key), data, if_version=version)
        )
        if meta is not None:
            self._record(owner, key, data, "", meta)

    @rule(owner=owners, key=keys)
    def delete_value(self, owner: Owner, key: str) -> None:
        assert self.store.delete(owner.ref(key)) is (key in self.model[owner])
        self.model[owner].pop(key, None)

    @rule(owner=owners, key=keys, stale=st.booleans(), pick=picks)
    def delete_if_version(self, owner: Owner, key: str, stale: bool, pick: int) -> None:
        version = self._token(owner, key, stale, pick)
        deleted = self._conditional(
            owner, key, version, lambda: self.store.delete(owner.ref(key), if_version=version)
        )
        if deleted is not None:
            assert deleted is True
            del self.model[owner][key]

    @rule(owner=owners, key=keys, suffix=values)
    def update_append(self, owner: Owner, key: str, suffix: bytes) -> None:
        if not self.store.supports_conditional_set:
            return
        before = self.model[owner].get(key)
        meta = self.store.update(owner.ref(key), lambda d: (d or b"") + suffix)
        assert meta is not None
        data = (before.data if before else b"") + suffix
        self._record(owner, key, data, before.mime_type if before else "", meta)

    @rule(owner=owners, key=keys)
    def get_value(self, owner: Owner, key: str) -> None:
        expected = self.model[owner].get(key)
        got = self.store.get(owner.ref(key))
        if expected is None:
            assert got is None
            return
        assert got is not None
        assert (got.data, got.mime_type, got.version) == (
            expected.data,
            expected.mime_type,
            expected.version,
        )

    @rule(owner=owners, key=keys)
    def open_value(self, owner: Owner, key: str) -> None:
        expected = self.model[owner].get(key)
        reader = self.store.open(owner.ref(key))
        if expected is None:
            assert reader is None
            return
        assert reader is not None
        with reader:
            assert reader.read() == expected.data
            assert reader.meta.version == expected.version

    @rule(owner=owners)
    def list_owner(self, owner: Owner) -> None:
        listed = self.store.list(owner)
        expected = self.model[owner]
        assert [m.name for m in listed] == [*expected]
        assert [(m.size, m.mime_type, m.version) for m in listed] == [
            (len(e.data), e.mime_type, e.version) for e in expected.values()
        ]

    @rule(owner=owners)
    def clear_owner(self, owner: Owner) -> None:
        assert self.store.clear(owner) == len(self.model[owner])
        self.model[owner].clear()


def state_machine_for(factory: Callable[[], VariableStore]) -> type[VariableStoreStateMachine]:
    """Return a machine class bound to ``factory``; its ``.TestCase`` runs under unittest."""
    return type(
        "BoundVariableStoreStateMachine",
        (VariableStoreStateMachine,),
        {"store_factory": staticmethod(factory)},
    )


def run_state_machine(
    factory: Callable[[], VariableStore], *, settings: settings | None = None
) -> None:
    """Run the state machine against the stores ``factory`` returns; raise on a mismatch."""
    run_state_machine_as_test(state_machine_for(factory), settings=settings or DEFAULT_SETTINGS)
