"""The memory store: the conformance suite plus what only ``memory://`` does."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from backends.memory import MemoryStore
from direktiv_sdk import InvalidStoreURLError, Owner, open_store
from direktiv_sdk.store import VariableStore
from harness.testing.store_tests import VariableStoreTests


class TestMemoryStore(VariableStoreTests):
    @pytest.fixture
    def store(self) -> Iterator[VariableStore]:
        with open_store("memory://") as s:
            yield s


NS = Owner.for_namespace("ns")


def test_private_stores_are_independent() -> None:
    first = open_store("memory://")
    second = open_store("memory://")
    first.set(NS.ref("v"), b"first")
    assert second.get(NS.ref("v")) is None
    assert first.url == second.url == "memory://"


def test_named_store_is_shared_until_discarded(request: pytest.FixtureRequest) -> None:
    name = f"shared-{request.node.name}"
    request.addfinalizer(lambda: MemoryStore.discard(name))
    open_store(f"memory://{name}").set(NS.ref("v"), b"shared")
    again = open_store(f"memory://{name}")
    assert again.url == f"memory://{name}"
    assert again.get(NS.ref("v")).data == b"shared"  # type: ignore[union-attr]
    assert MemoryStore.discard(name) is True
    assert MemoryStore.discard(name) is False
    assert open_store(f"memory://{name}").get(NS.ref("v")) is None
    assert again.get(NS.ref("v")).data == b"shared"  # type: ignore[union-attr]


def test_filesystems_are_private_to_each_store() -> None:
    from fsspec.implementations.memory import MemoryFileSystem

    store = MemoryStore()
    store.set(Owner.for_workflow("ns", "/flows/a.yaml").ref("v"), b"data")
    assert store.fs.cat_file("/ns/workflow/%2Fflows%2Fa.yaml/v") == b"data"
    assert store.fs.find("/") == ["/ns/workflow/%2Fflows%2Fa.yaml/v"]
    assert MemoryStore().fs.find("/") == []
    assert "/ns/workflow/%2Fflows%2Fa.yaml/v" not in MemoryFileSystem.store
    store.delete(Owner.for_workflow("ns", "/flows/a.yaml").ref("v"))
    assert store.fs.find("/") == []


def test_the_filesystem_shows_the_latest_writes_whenever_it_is_read() -> None:
    store = MemoryStore()
    a, b, c = NS.ref("a"), NS.ref("b"), NS.ref("c")
    store.set(a, b"1")
    store.set(a, b"2")  # overwritten before anyone looked
    store.set(b, b"gone")
    store.delete(b)  # deleted before anyone looked
    assert store.fs.find("/") == ["/ns/namespace/a"]
    assert store.fs.cat_file("/ns/namespace/a") == b"2"
    store.delete(a)  # deleted after it was seen
    store.set(c, b"3")
    assert store.fs.find("/") == ["/ns/namespace/c"]
    created = store.list(NS)[0].created_at
    assert store.fs.info("/ns/namespace/c")["created"] == created


def test_get_returns_the_stored_bytes_without_copying() -> None:
    store = MemoryStore()
    data = b"x" * (1 << 20)
    store.set(NS.ref("v"), data)
    assert store.get(NS.ref("v")).data is data  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("url", "options", "message"),
    [
        (
            "memory://",
            {"root": "/x"},
            "cannot open store 'memory://': unknown option 'root'; accepted options: none",
        ),
        (
            "memory://a/b",
            {},
            "cannot open store 'memory://a/b': memory store name 'a/b' must be letters, digits, "
            "'_', '-' or '.'; use memory:// for a private store",
        ),
        (
            "memory://-x",
            {},
            "cannot open store 'memory://-x': memory store name '-x' must be letters, digits, "
            "'_', '-' or '.'; use memory:// for a private store",
        ),
    ],
)
def test_bad_urls_and_options(url: str, options: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidStoreURLError) as info:
        open_store(url, **options)
    assert str(info.value) == message


def test_bad_name_in_constructor() -> None:
    with pytest.raises(InvalidStoreURLError) as info:
        MemoryStore("a b")
    assert str(info.value) == (
        "cannot open store 'memory://a b': memory store name 'a b' must be letters, digits, "
        "'_', '-' or '.'; use memory:// for a private store"
    )


def test_from_url_rejects_other_schemes() -> None:
    with pytest.raises(InvalidStoreURLError) as info:
        MemoryStore.from_url("file://x")
    assert str(info.value) == (
        "cannot open store 'file://x': a memory store URL starts with memory://"
    )
