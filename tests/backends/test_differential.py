"""Differential test: the same random operations on every backend give the same results.

The memory store is the reference. Each other backend named in ``BACKENDS`` runs the same
Hypothesis-generated sequence; everything observable must match except timestamps and the
version tokens themselves (compare-and-set refers to versions symbolically: "the current one",
"the one before it").
"""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Literal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backends.local import LocalStore
from backends.s3 import S3Store
from direktiv_sdk import DirektivError, Owner, open_store
from direktiv_sdk.store import VariableMeta, VariableStore

StoreFactory = Callable[[], AbstractContextManager[VariableStore]]

BACKENDS = ["local-xattr", "local-sidecar", pytest.param("s3", marks=pytest.mark.s3)]
"""Backends compared with ``memory://``; add a name here and a branch in ``factory``."""

OWNERS = (
    Owner.for_namespace("ns"),
    Owner.for_workflow("ns", "/a"),
    Owner.for_instance("ns", "i1"),
)
Which = Literal["current", "previous", "bogus"]


@dataclass(frozen=True)
class Op:
    """One store call; fields an operation does not use keep their defaults."""

    name: str
    owner: int
    key: str = "a"
    data: bytes = b""
    mime: str = ""
    which: Which = "current"


_owner_ids = st.integers(0, len(OWNERS) - 1)
_keys = st.sampled_from(["a", "b.c"])
_data = st.binary(max_size=24)
_which: st.SearchStrategy[Which] = st.sampled_from(["current", "previous", "bogus"])
operations = st.lists(
    st.one_of(
        st.builds(Op, st.just("set"), _owner_ids, _keys, _data, st.sampled_from(["", "t/p"])),
        st.builds(Op, st.just("set_if_absent"), _owner_ids, _keys, _data),
        st.builds(Op, st.just("set_if_version"), _owner_ids, _keys, _data, which=_which),
        st.builds(Op, st.just("delete"), _owner_ids, _keys),
        st.builds(Op, st.just("delete_if_version"), _owner_ids, _keys, which=_which),
        st.builds(Op, st.just("update"), _owner_ids, _keys, _data),
        st.builds(Op, st.just("get"), _owner_ids, _keys),
        st.builds(Op, st.just("open"), _owner_ids, _keys),
        st.builds(Op, st.just("list"), _owner_ids),
        st.builds(Op, st.just("clear"), _owner_ids),
    ),
    max_size=30,
)


@contextmanager
def _local(metadata: str) -> Iterator[VariableStore]:
    with tempfile.TemporaryDirectory() as root, LocalStore(root, metadata=metadata) as store:
        yield store


@contextmanager
def _memory() -> Iterator[VariableStore]:
    with open_store("memory://") as store:
        yield store


@pytest.fixture(params=BACKENDS)
def factory(request: pytest.FixtureRequest) -> StoreFactory:
    """Return a function that opens a fresh, empty store of the backend under test."""
    name: str = request.param
    if name == "local-xattr":
        return lambda: _local("xattr")
    if name == "local-sidecar":
        return lambda: _local("sidecar")
    if name == "s3":
        # The moto server is reset per test, not per example: each example gets a new prefix.
        url = request.getfixturevalue("s3_store_url")
        runs = itertools.count()
        return lambda: S3Store.from_url(f"{url}/example-{next(runs)}")
    raise AssertionError(f"no factory for backend {name!r}")


def _appender(suffix: bytes) -> Callable[[bytes | None], bytes]:
    return lambda data: (data or b"") + suffix


def _run(store: VariableStore, ops: list[Op]) -> list[object]:
    """Apply ``ops`` and return what a caller could observe, minus times and version tokens."""
    versions: dict[tuple[int, str], list[str]] = {}
    observed: list[object] = []
    for op in ops:
        try:
            observed.append(_apply(store, op, versions.setdefault((op.owner, op.key), [])))
        except DirektivError as exc:
            message = str(exc)
            for token in {t for seen in versions.values() for t in seen} | {"bogus-version"}:
                message = message.replace(repr(token), "<version>")
            observed.append((type(exc).__name__, message))
    return observed


def _apply(store: VariableStore, op: Op, versions: list[str]) -> object:
    owner = OWNERS[op.owner]
    ref = owner.ref(op.key)

    def pick() -> str:
        if op.which == "current" and versions:
            return versions[-1]
        if op.which == "previous" and len(versions) > 1:
            return versions[-2]
        return "bogus-version"

    def wrote(meta: VariableMeta | None) -> object:
        assert meta is not None
        versions.append(meta.version)
        return ("written", meta.size, meta.mime_type)

    if op.name == "set":
        return wrote(store.set(ref, op.data, mime_type=op.mime))
    if op.name == "set_if_absent":
        return wrote(store.set(ref, op.data, if_absent=True))
    if op.name == "set_if_version":
        return wrote(store.set(ref, op.data, if_version=pick()))
    if op.name == "delete":
        return store.delete(ref)
    if op.name == "delete_if_version":
        return store.delete(ref, if_version=pick())
    if op.name == "update":
        return wrote(store.update(ref, _appender(op.data)))
    if op.name == "get":
        got = store.get(ref)
        return None if got is None else (got.data, got.mime_type, got.meta.size)
    if op.name == "open":
        reader = store.open(ref)
        if reader is None:
            return None
        with reader:
            return (reader.read(), reader.meta.mime_type)
    if op.name == "list":
        return [(m.name, m.size, m.mime_type) for m in store.list(owner)]
    assert op.name == "clear"
    return store.clear(owner)


# The fixture only returns a factory; every example opens fresh stores through it.
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=operations)
def test_backends_agree_with_memory(factory: StoreFactory, ops: list[Op]) -> None:
    with _memory() as reference, factory() as other:
        assert _run(other, ops) == _run(reference, ops)
