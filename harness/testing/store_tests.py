"""The conformance suite every :class:`~direktiv_sdk.store.VariableStore` backend must pass.

A backend's test module is a short subclass that provides the ``store`` fixture::

    class TestMemoryStore(VariableStoreTests):
        @pytest.fixture
        def store(self) -> Iterator[VariableStore]:
            with open_store("memory://") as s:
                yield s

The fixture must yield an empty store for every test. Backends must keep creation timestamps
strictly increasing within a process (``backends._common.unique_now``): listings are ordered by
creation time and the suite checks that order exactly. The Hypothesis state machine in
:mod:`harness.testing._store_machine` runs as :meth:`VariableStoreTests.test_state_machine`; use
:func:`run_state_machine` to run it on its own.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest

from direktiv_sdk.errors import (
    InvalidKeyError,
    InvalidOwnerError,
    PreconditionFailedError,
    UnsupportedOperationError,
)
from direktiv_sdk.store import Owner, VariableMeta, VariableRef, VariableStore
from harness.testing._store_helpers import THREAD_TIMEOUT
from harness.testing._store_helpers import run_threads as _run_threads
from harness.testing._store_helpers import stream as _stream
from harness.testing._store_machine import VariableStoreStateMachine, run_state_machine

__all__ = ["VariableStoreStateMachine", "VariableStoreTests", "run_state_machine"]

NS = Owner.for_namespace("ns")
WF = Owner.for_workflow("ns", "/flows/a.yaml")
INST = Owner.for_instance("ns", "instance-1")


class VariableStoreTests:
    """Pytest tests of the whole store contract; subclass it and override ``store``."""

    @pytest.fixture
    def store(self) -> Iterator[VariableStore]:
        """Yield an empty store; every backend's test class must override this fixture."""
        raise NotImplementedError(
            f"{type(self).__name__} must override the 'store' fixture to yield an empty store"
        )

    # ------------------------------------------------------------------ get / set / open

    def test_get_missing_returns_none(self, store: VariableStore) -> None:
        assert store.get(NS.ref("missing")) is None
        assert store.open(NS.ref("missing")) is None

    @pytest.mark.parametrize(
        "data",
        [b"", b"hello", bytes(range(256)), b"\x00\r\n\xff" * 1000],
        ids=["empty", "text", "all-bytes", "binary"],
    )
    def test_round_trip(self, store: VariableStore, data: bytes) -> None:
        meta = store.set(NS.ref("v"), data)
        got = store.get(NS.ref("v"))
        assert got is not None
        assert got.data == data
        assert got.meta == meta
        assert meta.size == len(data)
        assert meta.ref == NS.ref("v")
        assert meta.name == "v"

    def test_round_trip_bytearray_and_memoryview(self, store: VariableStore) -> None:
        store.set(NS.ref("a"), bytearray(b"from a bytearray"))
        store.set(NS.ref("m"), memoryview(b"__from a memoryview")[2:])
        assert store.get(NS.ref("a")).data == b"from a bytearray"  # type: ignore[union-attr]
        assert store.get(NS.ref("m")).data == b"from a memoryview"  # type: ignore[union-attr]

    def test_round_trip_10_mib(self, store: VariableStore) -> None:
        data = bytes(range(256)) * (10 * 4096)
        meta = store.set(WF.ref("big"), data)
        assert meta.size == 10 << 20
        got = store.get(WF.ref("big"))
        assert got is not None
        assert got.data == data

    def test_set_from_stream(self, store: VariableStore) -> None:
        data = bytes(range(251)) * 12_000 + b"tail"  # about 2.9 MiB: several 1 MiB chunks
        meta = store.set(INST.ref("streamed"), _stream(data), mime_type="application/x")
        assert meta.size == len(data)
        got = store.get(INST.ref("streamed"))
        assert got is not None
        assert got.data == data
        assert got.mime_type == "application/x"

    def test_open_streams_data_and_meta(self, store: VariableStore) -> None:
        data = bytes(range(256)) * 5000
        meta = store.set(NS.ref("s"), data, mime_type="application/octet-stream")
        reader = store.open(NS.ref("s"))
        assert reader is not None
        with reader:
            assert reader.meta == meta
            pieces = []
            while piece := reader.read(70_001):
                pieces.append(piece)
        assert reader.closed
        assert b"".join(pieces) == data

    def test_open_read_all(self, store: VariableStore) -> None:
        store.set(NS.ref("s"), b"all at once")
        reader = store.open(NS.ref("s"))
        assert reader is not None
        with reader:
            assert reader.read() == b"all at once"

    def test_failed_stream_keeps_old_value(self, store: VariableStore) -> None:
        old = store.set(NS.ref("v"), b"old", mime_type="text/plain")
        source = _stream(b"n" * (3 << 20), piece=1 << 20, fail_after=1 << 20)
        with pytest.raises(RuntimeError, match=r"^the source stream broke$"):
            store.set(NS.ref("v"), source)
        got = store.get(NS.ref("v"))
        assert got is not None
        assert got.data == b"old"
        assert got.meta == old
        assert [m.name for m in store.list(NS)] == ["v"]

    def test_failed_stream_creates_nothing(self, store: VariableStore) -> None:
        source = _stream(b"n" * (3 << 20), piece=1 << 20, fail_after=1 << 20)
        with pytest.raises(RuntimeError, match=r"^the source stream broke$"):
            store.set(NS.ref("v"), source)
        assert store.get(NS.ref("v")) is None
        assert store.list(NS) == []

    def test_mime_type(self, store: VariableStore) -> None:
        assert store.set(NS.ref("plain"), b"x").mime_type == ""
        store.set(NS.ref("json"), b"{}", mime_type="application/json")
        store.set(NS.ref("odd"), b"x", mime_type="text/plain; charset=utf-8")
        assert store.get(NS.ref("plain")).mime_type == ""  # type: ignore[union-attr]
        assert store.get(NS.ref("json")).mime_type == "application/json"  # type: ignore[union-attr]
        assert store.get(NS.ref("odd")).mime_type == "text/plain; charset=utf-8"  # type: ignore[union-attr]

    def test_keys_are_case_sensitive(self, store: VariableStore) -> None:
        store.set(NS.ref("key"), b"lower")
        store.set(NS.ref("KEY"), b"upper")
        assert store.get(NS.ref("key")).data == b"lower"  # type: ignore[union-attr]
        assert store.get(NS.ref("KEY")).data == b"upper"  # type: ignore[union-attr]

    def test_timestamps_are_utc(self, store: VariableStore) -> None:
        meta = store.set(NS.ref("t"), b"x")
        assert meta.created_at.utcoffset() == timedelta(0)
        assert meta.updated_at.utcoffset() == timedelta(0)
        assert meta.created_at == meta.updated_at

    def test_overwrite_keeps_created_bumps_updated_and_version(self, store: VariableStore) -> None:
        first = store.set(NS.ref("v"), b"same", mime_type="text/plain")
        second = store.set(NS.ref("v"), b"same", mime_type="text/plain")
        assert second.created_at == first.created_at
        assert second.updated_at > first.updated_at
        assert second.version != first.version
        third = store.set(NS.ref("v"), b"other")
        assert third.mime_type == ""
        assert third.version not in (first.version, second.version)
        assert store.get(NS.ref("v")).meta == third  # type: ignore[union-attr]

    def test_delete(self, store: VariableStore) -> None:
        store.set(NS.ref("v"), b"x")
        assert store.delete(NS.ref("v")) is True
        assert store.get(NS.ref("v")) is None
        assert store.delete(NS.ref("v")) is False
        assert store.list(NS) == []

    def test_recreate_after_delete_is_new(self, store: VariableStore) -> None:
        first = store.set(NS.ref("v"), b"x")
        store.delete(NS.ref("v"))
        again = store.set(NS.ref("v"), b"x")
        assert again.created_at > first.created_at
        assert again.version != first.version

    # ------------------------------------------------------------------ list and owners

    def test_list_orders_by_creation_and_has_no_data(self, store: VariableStore) -> None:
        for key in ("c", "a", "b"):
            store.set(WF.ref(key), key.encode() * 3, mime_type=f"text/{key}")
        store.set(WF.ref("a"), b"rewritten, still second")
        listed = store.list(WF)
        assert [m.name for m in listed] == ["c", "a", "b"]
        assert all(type(m) is VariableMeta for m in listed)
        assert [m.size for m in listed] == [3, 23, 3]
        assert listed == [store.get(WF.ref(k)).meta for k in ("c", "a", "b")]  # type: ignore[union-attr]

    def test_list_empty_owner(self, store: VariableStore) -> None:
        assert store.list(NS) == []
        assert store.list(Owner.for_workflow("nobody", "/x.yaml")) == []

    def test_namespace_listing_excludes_workflow_and_instance(self, store: VariableStore) -> None:
        store.set(WF.ref("w"), b"1")
        store.set(INST.ref("i"), b"2")
        store.set(NS.ref("n"), b"3")
        assert [m.name for m in store.list(NS)] == ["n"]
        assert [m.name for m in store.list(WF)] == ["w"]
        assert [m.name for m in store.list(INST)] == ["i"]

    @pytest.mark.parametrize(
        ("first", "second"),
        [
            (Owner.for_namespace("ns"), Owner.for_namespace("ns2")),
            (Owner.for_namespace("a"), Owner.for_namespace("A")),
            (Owner.for_workflow("ns", "/a"), Owner.for_workflow("ns", "/a/b")),
            (Owner.for_workflow("ns", "/x%2Fy"), Owner.for_workflow("ns", "/x/y")),
            (Owner.for_workflow("ns", "/a.yaml"), Owner.for_workflow("ns2", "/a.yaml")),
            (Owner.for_workflow("ns", "/namespace"), Owner.for_namespace("ns")),
            (Owner.for_instance("ns", "i1"), Owner.for_instance("ns", "i2")),
            (Owner.for_instance("ns", "i1"), Owner.for_instance("ns2", "i1")),
            (Owner.for_instance("ns", "namespace"), Owner.for_namespace("ns")),
            (Owner.for_instance("ns", "workflow"), Owner.for_workflow("ns", "/workflow")),
        ],
        ids=str,
    )
    def test_owners_never_see_each_other(
        self, store: VariableStore, first: Owner, second: Owner
    ) -> None:
        store.set(first.ref("k"), b"first")
        assert store.get(second.ref("k")) is None
        store.set(second.ref("k"), b"second")
        store.set(second.ref("only2"), b"x")
        assert store.get(first.ref("k")).data == b"first"  # type: ignore[union-attr]
        assert store.get(second.ref("k")).data == b"second"  # type: ignore[union-attr]
        assert [m.name for m in store.list(first)] == ["k"]
        assert [m.name for m in store.list(second)] == ["k", "only2"]
        assert store.delete(first.ref("only2")) is False
        assert store.clear(first) == 1
        assert store.get(second.ref("k")).data == b"second"  # type: ignore[union-attr]

    def test_clear(self, store: VariableStore) -> None:
        for key in ("a", "b", "c"):
            store.set(INST.ref(key), b"x")
        store.set(NS.ref("keep"), b"x")
        assert store.clear(INST) == 3
        assert store.list(INST) == []
        assert store.clear(INST) == 0
        assert [m.name for m in store.list(NS)] == ["keep"]

    def test_owners_lists_who_holds_variables(self, store: VariableStore) -> None:
        assert store.owners() == []
        other = Owner.for_workflow("other", "/a b/flow.yaml")
        for owner in (INST, WF, NS, other):
            store.set(owner.ref("k"), b"x")
        store.set(Owner.for_instance("other", "gone").ref("k"), b"x")
        store.delete(Owner.for_instance("other", "gone").ref("k"))
        assert store.owners("ns") == [NS, WF, INST]  # namespace, workflows, instances
        assert store.owners() == [NS, WF, INST, other]  # by namespace first
        assert store.owners("nobody") == []

    # ------------------------------------------------------------------ conditional writes

    def _require_conditions(self, store: VariableStore) -> bool:
        """Check that an unsupported backend refuses conditions; return whether to go on."""
        if store.supports_conditional_set:
            return True
        backend = type(store).__name__
        with pytest.raises(UnsupportedOperationError, match=f"^{backend} does not support"):
            store.set(NS.ref("v"), b"x", if_absent=True)
        return False

    def test_if_absent(self, store: VariableStore) -> None:
        if not self._require_conditions(store):
            return
        ref = NS.ref("once")
        meta = store.set(ref, b"first", if_absent=True, mime_type="text/plain")
        with pytest.raises(PreconditionFailedError) as info:
            store.set(ref, b"second", if_absent=True)
        assert str(info.value) == f"precondition failed for {ref}: it already exists"
        assert info.value.ref == ref
        got = store.get(ref)
        assert got is not None
        assert got.data == b"first"
        assert got.meta == meta

    def test_if_version(self, store: VariableStore) -> None:
        if not self._require_conditions(store):
            return
        ref = WF.ref("cas")
        first = store.set(ref, b"1")
        second = store.set(ref, b"2", if_version=first.version)
        assert second.created_at == first.created_at
        with pytest.raises(PreconditionFailedError) as info:
            store.set(ref, b"3", if_version=first.version)
        assert str(info.value) == (
            f"precondition failed for {ref}: its version is no longer {first.version!r}"
        )
        got = store.get(ref)
        assert got is not None
        assert got.data == b"2"
        assert got.meta == second

    def test_if_version_of_missing_variable(self, store: VariableStore) -> None:
        if not self._require_conditions(store):
            return
        ref = INST.ref("gone")
        version = store.set(ref, b"x").version
        store.delete(ref)
        with pytest.raises(PreconditionFailedError) as info:
            store.set(ref, b"y", if_version=version)
        assert str(info.value) == f"precondition failed for {ref}: it does not exist"
        assert store.get(ref) is None

    def test_conditional_delete(self, store: VariableStore) -> None:
        if not self._require_conditions(store):
            return
        ref = NS.ref("d")
        first = store.set(ref, b"1")
        second = store.set(ref, b"2")
        with pytest.raises(PreconditionFailedError) as info:
            store.delete(ref, if_version=first.version)
        assert str(info.value) == (
            f"precondition failed for {ref}: its version is no longer {first.version!r}"
        )
        assert store.get(ref).data == b"2"  # type: ignore[union-attr]
        assert store.delete(ref, if_version=second.version) is True
        with pytest.raises(PreconditionFailedError) as info:
            store.delete(ref, if_version=second.version)
        assert str(info.value) == f"precondition failed for {ref}: it does not exist"

    def test_update_counter(self, store: VariableStore) -> None:
        if not self._require_conditions(store):
            return
        ref = WF.ref("counter")

        def increment(data: bytes | None) -> bytes:
            return str(int(data or b"0") + 1).encode()

        first = store.update(ref, increment, mime_type="text/plain")
        assert first is not None
        assert first.mime_type == "text/plain"
        for _ in range(9):
            store.update(ref, increment)
        got = store.get(ref)
        assert got is not None
        assert got.data == b"10"
        assert got.mime_type == "text/plain"
        assert got.meta.created_at == first.created_at

    def test_update_from_threads_loses_nothing(self, store: VariableStore) -> None:
        if not self._require_conditions(store):
            return
        ref = NS.ref("counter")

        def work() -> None:
            for _ in range(25):
                store.update(ref, lambda d: str(int(d or b"0") + 1).encode())

        _run_threads([work] * 4)
        assert store.get(ref).data == b"100"  # type: ignore[union-attr]

    def test_update_deletes_on_none(self, store: VariableStore) -> None:
        if not self._require_conditions(store):
            return
        ref = NS.ref("v")
        store.set(ref, b"x")
        assert store.update(ref, lambda d: None) is None
        assert store.get(ref) is None
        assert store.update(ref, lambda d: None) is None

    # ------------------------------------------------------------------ concurrency

    def test_threaded_overwrites_are_never_torn(self, store: VariableStore) -> None:
        """Four writers overwrite while a reader checks every value and its metadata match."""
        ref = NS.ref("contended")
        size = 64 << 10

        def pattern(n: int) -> bytes:
            return n.to_bytes(4, "big") * (size // 4)

        store.set(ref, pattern(0))
        done = threading.Event()
        seen: list[int] = []

        def writer(w: int) -> Callable[[], None]:
            def write() -> None:
                for i in range(50):
                    n = 1 + w * 50 + i
                    store.set(ref, pattern(n), mime_type=f"pattern/{n}")

            return write

        def reader() -> None:
            while not done.is_set():
                got = store.get(ref)
                assert got is not None
                head = got.data[:4]
                assert got.data == head * (size // 4), "a reader saw a torn value"
                assert got.meta.size == size
                n = int.from_bytes(head, "big")
                if n:
                    assert got.mime_type == f"pattern/{n}", "metadata of another value"
                seen.append(n)

        failures: list[BaseException] = []

        def guarded_reader() -> None:
            try:
                reader()
            except BaseException as exc:  # re-raised below
                failures.append(exc)

        reader_thread = threading.Thread(target=guarded_reader, daemon=True)
        reader_thread.start()
        try:
            _run_threads([writer(w) for w in range(4)])
        finally:
            done.set()
            reader_thread.join(THREAD_TIMEOUT)
        assert not reader_thread.is_alive()
        if failures:
            raise failures[0]
        assert seen, "the reader never ran"
        final = store.get(ref)
        assert final is not None
        assert final.data[:4] != (0).to_bytes(4, "big")

    # ------------------------------------------------------------------ bad arguments

    def test_bad_arguments(self, store: VariableStore) -> None:
        ref = NS.ref("v")
        with pytest.raises(TypeError, match=r"^ref must be a VariableRef, not str$"):
            store.get("ns/v")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=r"^ref must be a VariableRef, not tuple$"):
            store.delete(("ns", "v"))  # type: ignore[arg-type]
        with pytest.raises(
            TypeError, match=r"^variable data must be bytes or a binary stream, not str$"
        ):
            store.set(ref, "text")  # type: ignore[arg-type]
        with pytest.raises(
            TypeError,
            match=r"^variable data must be bytes or a binary stream, not a text stream "
            r"\(StringIO\); open the file in 'rb' mode or encode the text$",
        ):
            store.set(ref, io.StringIO("text"))  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=r"^mime_type must be a str, not NoneType$"):
            store.set(ref, b"x", mime_type=None)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=r"^if_absent must be a bool, not str$"):
            store.set(ref, b"x", if_absent="yes")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=r"^if_version must be a str, not int$"):
            store.set(ref, b"x", if_version=1)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=r"^if_version must be a str, not int$"):
            store.delete(ref, if_version=1)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match=r"^pass at most one of if_absent and if_version$"):
            store.set(ref, b"x", if_absent=True, if_version="1")
        with pytest.raises(TypeError, match=r"^owner must be an Owner, not str$"):
            store.list("ns")  # type: ignore[arg-type]
        if store.supports_conditional_set:
            with pytest.raises(ValueError, match=r"^max_attempts must be at least 1, not 0$"):
                store.update(ref, lambda d: d, max_attempts=0)
        assert store.list(NS) == []

    @pytest.mark.parametrize("key", ["1a", "_a", "a_", "a.", "a b", "a/b", "../x", "", "ä"])
    def test_invalid_keys_never_reach_the_store(self, store: VariableStore, key: str) -> None:
        with pytest.raises(InvalidKeyError) as info:
            VariableRef(NS, key)
        assert str(info.value).startswith(f"invalid variable key {key!r}: keys must match ")
        assert store.list(NS) == []

    @pytest.mark.parametrize("path", ["/a/../b", "a.yaml", "/a//b", "/./a", "/a\\b", "/"])
    def test_invalid_workflow_paths_never_reach_the_store(
        self, store: VariableStore, path: str
    ) -> None:
        with pytest.raises(InvalidOwnerError) as info:
            Owner.for_workflow("ns", path)
        assert str(info.value).startswith(f"invalid workflow path {path!r}: ")

    def test_context_manager_and_repr(self, store: VariableStore) -> None:
        assert isinstance(store.url, str)
        assert store.url in repr(store)
        assert repr(store).startswith(f"{type(store).__name__}(")

    # ------------------------------------------------------------------ model check

    def test_state_machine(self, store: VariableStore) -> None:
        run_state_machine(lambda: store)
