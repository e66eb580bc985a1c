"""The local store: the conformance suite in both metadata modes, plus the on-disk layout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from backends._local_files import XATTR_NAME, probe_xattr
from backends.local import MARKER_NAME, LocalStore
from direktiv_sdk import InvalidStoreURLError, Owner, PreconditionFailedError, open_store
from direktiv_sdk.store import VariableStore, format_timestamp
from harness.testing.store_tests import VariableStoreTests


class TestLocalStore(VariableStoreTests):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[VariableStore]:
        with open_store(f"file://{tmp_path}/store") as s:
            yield s


class TestLocalStoreSidecar(VariableStoreTests):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[VariableStore]:
        with open_store(f"file://{tmp_path}/store", metadata="sidecar") as s:
            yield s


class _NamedTempLocalStore(LocalStore):
    use_o_tmpfile = False


class TestLocalStoreNamedTemp(VariableStoreTests):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[VariableStore]:
        with _NamedTempLocalStore(tmp_path / "store", metadata="sidecar") as s:
            yield s


NS = Owner.for_namespace("ns")
WF = Owner.for_workflow("ns", "/flows/a b.yaml")
INST = Owner.for_instance("ns", "inst-1")


def _record(path: Path) -> dict[str, str]:
    return json.loads(os.getxattr(path, XATTR_NAME))  # type: ignore[no-any-return]


def _visible(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


# ---------------------------------------------------------------------- layout


def test_layout_is_one_plain_file_per_variable(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    meta = store.set(NS.ref("greeting"), b"hello\n", mime_type="text/plain")
    store.set(WF.ref("count"), b"3")
    store.set(INST.ref("scratch"), b"")
    assert (tmp_path / "ns" / "namespace" / "greeting").read_bytes() == b"hello\n"
    assert (tmp_path / "ns" / "workflow" / "%2Fflows%2Fa%20b.yaml" / "count").read_bytes() == b"3"
    assert (tmp_path / "ns" / "instance" / "inst-1" / "scratch").read_bytes() == b""
    assert _visible(tmp_path / "ns" / "namespace") == {"greeting", ".lock"}
    assert _visible(tmp_path) == {"ns", MARKER_NAME}
    assert json.loads((tmp_path / MARKER_NAME).read_text()) == {"format": 1, "metadata": "xattr"}
    assert _record(tmp_path / "ns" / "namespace" / "greeting") == {
        "mimeType": "text/plain",
        "createdAt": format_timestamp(meta.created_at),
        "updatedAt": format_timestamp(meta.updated_at),
        "version": meta.version,
    }


def test_sidecar_layout(tmp_path: Path) -> None:
    store = LocalStore(tmp_path, metadata="sidecar")
    store.set(NS.ref("v"), b"old")
    meta = store.set(NS.ref("v"), b"new", mime_type="application/json")
    folder = tmp_path / "ns" / "namespace"
    inode = (folder / "v").stat().st_ino
    assert _visible(folder) == {"v", ".lock", f".v.{inode}.meta"}
    assert json.loads((folder / f".v.{inode}.meta").read_text()) == {
        "mimeType": "application/json",
        "createdAt": format_timestamp(meta.created_at),
        "updatedAt": format_timestamp(meta.updated_at),
        "version": meta.version,
    }
    assert json.loads((tmp_path / MARKER_NAME).read_text())["metadata"] == "sidecar"
    store.delete(NS.ref("v"))
    assert _visible(folder) == {".lock"}


@pytest.mark.parametrize("mode", ["xattr", "sidecar"])
def test_many_writes_leave_no_litter(tmp_path: Path, mode: str) -> None:
    store = LocalStore(tmp_path, metadata=mode)
    for i in range(30):
        store.set(NS.ref(f"k{i % 3}"), str(i).encode())
        if i in (7, 14):
            store.delete(NS.ref("k1"))
    with pytest.raises(PreconditionFailedError):
        store.set(NS.ref("k0"), b"x", if_absent=True)
    names = _visible(tmp_path / "ns" / "namespace")
    values = {n for n in names if not n.startswith(".")}
    assert values == {"k0", "k1", "k2"}
    hidden = names - values - {".lock"}
    if mode == "xattr":
        assert hidden == set()
    else:
        folder = tmp_path / "ns" / "namespace"
        assert hidden == {f".{k}.{(folder / k).stat().st_ino}.meta" for k in values}


def test_keys_up_to_the_file_name_limit_can_be_overwritten(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    for length in (200, 240, 255):
        ref = NS.ref("k" * length)
        store.set(ref, b"first")
        store.set(ref, b"second")  # the temp file of an overwrite must fit the limit too
        assert store.get(ref).data == b"second"  # type: ignore[union-attr]
    assert _visible(tmp_path / "ns" / "namespace") == {".lock", *("k" * n for n in (200, 240, 255))}


def test_store_reopens_with_recorded_mode(tmp_path: Path) -> None:
    LocalStore(tmp_path, metadata="sidecar").set(NS.ref("v"), b"x", mime_type="a/b")
    again = LocalStore(tmp_path)
    assert again.metadata == "sidecar"
    assert again.get(NS.ref("v")).mime_type == "a/b"  # type: ignore[union-attr]


def test_relative_url_resolves_against_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = open_store("file://./.direktiv")
    assert isinstance(store, LocalStore)
    assert store.url == "file://./.direktiv"
    assert store.root == str(tmp_path / ".direktiv")
    store.set(NS.ref("v"), b"x")
    monkeypatch.chdir("/")
    assert store.get(NS.ref("v")).data == b"x"  # type: ignore[union-attr]
    assert (tmp_path / ".direktiv" / "ns" / "namespace" / "v").exists()


def test_fsync_option_round_trips(tmp_path: Path) -> None:
    for mode in ("xattr", "sidecar"):
        store = open_store(f"file://{tmp_path}/{mode}", fsync=True, metadata=mode)
        store.set(NS.ref("v"), b"durable")
        store.set(NS.ref("v"), b"durable twice")
        assert store.get(NS.ref("v")).data == b"durable twice"  # type: ignore[union-attr]


# ---------------------------------------------------------------------- foreign files


@pytest.mark.parametrize("mode", ["xattr", "sidecar"])
def test_file_copied_in_by_hand_is_a_variable(tmp_path: Path, mode: str) -> None:
    store = LocalStore(tmp_path, metadata=mode)
    folder = tmp_path / "ns" / "namespace"
    folder.mkdir(parents=True)
    (folder / "manual").write_bytes(b"by hand")
    os.utime(folder / "manual", ns=(1_700_000_000_000_000_000, 1_700_000_000_000_000_000))
    (folder / "not a key").write_bytes(b"ignored")
    (folder / "subdir").mkdir()
    got = store.get(NS.ref("manual"))
    assert got is not None
    assert got.data == b"by hand"
    assert got.mime_type == ""
    assert got.meta.created_at == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    assert got.meta.updated_at == got.meta.created_at
    assert [m.name for m in store.list(NS)] == ["manual"]
    meta = store.set(NS.ref("manual"), b"now managed", if_version=got.version)
    assert meta.created_at == got.meta.created_at
    assert store.get(NS.ref("manual")).meta == meta  # type: ignore[union-attr]


def test_damaged_record_reads_as_default_metadata(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.set(NS.ref("v"), b"data", mime_type="text/plain")
    os.setxattr(tmp_path / "ns" / "namespace" / "v", XATTR_NAME, b"{not json")
    got = store.get(NS.ref("v"))
    assert got is not None
    assert got.data == b"data"
    assert got.mime_type == ""
    assert got.version.startswith("stat-")


# ---------------------------------------------------------------------- sweeping


@pytest.mark.parametrize("mode", ["xattr", "sidecar"])
def test_first_write_sweeps_leftovers_of_dead_writers(tmp_path: Path, mode: str) -> None:
    LocalStore(tmp_path, metadata=mode).set(NS.ref("v"), b"x")
    folder = tmp_path / "ns" / "namespace"
    dead = _dead_pid()
    leftovers = [f".v.tmp-{dead}-0011aa", f".other.tmp-{dead}-22bb"]
    if mode == "sidecar":
        leftovers += [".gone.12345.meta", f".v.{(folder / 'v').stat().st_ino + 1}.meta"]
    live = f".v.tmp-{os.getpid()}-33cc"
    for name in [*leftovers, live, ".unrelated"]:
        (folder / name).write_bytes(b"")
    LocalStore(tmp_path).set(NS.ref("w"), b"y")
    remaining = _visible(folder)
    assert not remaining & set(leftovers)
    assert {live, ".unrelated", "v", "w"} <= remaining
    assert LocalStore(tmp_path).get(NS.ref("v")).data == b"x"  # type: ignore[union-attr]


def _dead_pid() -> int:
    """Return the id of a process that has exited (and been reaped)."""
    proc = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        check=True,
        timeout=60,
    )
    return int(proc.stdout)


# ---------------------------------------------------------------------- URLs and options


@pytest.mark.parametrize(
    ("url", "options", "message"),
    [
        (
            "file://",
            {},
            "cannot open store 'file://': a local store URL needs a path, like "
            "file://./.direktiv or file:///abs/path",
        ),
        (
            "file:///tmp/x",
            {"bucket": "b"},
            "cannot open store 'file:///tmp/x': unknown option 'bucket'; "
            "accepted options: create, fsync, metadata",
        ),
        (
            "file://{tmp}/s",
            {"fsync": "yes"},
            "cannot open store 'file://{tmp}/s': option 'fsync' must be True or False, not 'yes'",
        ),
        (
            "file://{tmp}/s",
            {"metadata": "db"},
            "cannot open store 'file://{tmp}/s': option 'metadata' must be one of auto, xattr, "
            "sidecar, not 'db'",
        ),
    ],
)
def test_bad_urls_and_options(
    tmp_path: Path, url: str, options: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidStoreURLError) as info:
        open_store(url.format(tmp=tmp_path), **options)
    assert str(info.value) == message.format(tmp=tmp_path)


def test_mode_conflicting_with_the_marker(tmp_path: Path) -> None:
    LocalStore(tmp_path)
    with pytest.raises(InvalidStoreURLError) as info:
        open_store(f"file://{tmp_path}", metadata="sidecar")
    assert str(info.value) == (
        f"cannot open store 'file://{tmp_path}': this store keeps metadata in 'xattr' mode; "
        "open it with metadata='xattr' or 'auto'"
    )


@pytest.mark.parametrize("content", [b"{not json", b"[]", b'{"format": 1}'])
def test_damaged_marker(tmp_path: Path, content: bytes) -> None:
    (tmp_path / MARKER_NAME).write_bytes(content)
    with pytest.raises(InvalidStoreURLError) as info:
        LocalStore(tmp_path)
    marker = str(tmp_path / MARKER_NAME)
    assert str(info.value) == (
        f"cannot open store 'file://{tmp_path}': {marker!r} is not a store marker; "
        "repair or remove it"
    )


def test_unknown_mode_in_marker(tmp_path: Path) -> None:
    (tmp_path / MARKER_NAME).write_text('{"format": 1, "metadata": "sql"}')
    with pytest.raises(InvalidStoreURLError) as info:
        LocalStore(tmp_path)
    marker = str(tmp_path / MARKER_NAME)
    assert str(info.value) == (
        f"cannot open store 'file://{tmp_path}': {marker!r} names an unknown metadata mode "
        "'sql'; repair it"
    )


def test_probe_reports_a_filesystem_without_user_xattrs() -> None:
    # No filesystem here both allows regular files and lacks user xattrs, so the probe that
    # makes "auto" choose the sidecar mode is checked on a file that refuses them.
    fd = os.open("/proc/self/status", os.O_RDONLY)
    try:
        assert probe_xattr(fd) is False
    finally:
        os.close(fd)


def test_from_url_rejects_other_schemes() -> None:
    with pytest.raises(InvalidStoreURLError) as info:
        LocalStore.from_url("memory://x")
    assert (
        str(info.value) == "cannot open store 'memory://x': a local store URL starts with file://"
    )
