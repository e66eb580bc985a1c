"""The local store under faults: other processes, killed writers, refused file access."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from multiprocessing.connection import Connection
from pathlib import Path

import pytest

from backends.local import LocalStore
from direktiv_sdk import Owner, StoreError

NS = Owner.for_namespace("ns")
TIMEOUT = 120.0
"""Seconds a child process may take before the test fails."""

_spawn = multiprocessing.get_context("spawn")


class NamedTempLocalStore(LocalStore):
    """The local store as it runs where ``O_TMPFILE`` is missing: named temp files."""

    use_o_tmpfile = False


def _store(root: str, mode: str, named: bool) -> LocalStore:
    cls = NamedTempLocalStore if named else LocalStore
    return cls(root, metadata=mode)


def _increment(root: str, mode: str, times: int) -> None:
    store = LocalStore(root, metadata=mode)
    for _ in range(times):
        store.update(NS.ref("counter"), lambda d: str(int(d or b"0") + 1).encode())


def _join_all(procs: Sequence[multiprocessing.process.BaseProcess]) -> None:
    deadline = time.monotonic() + TIMEOUT
    for proc in procs:
        proc.join(max(0.0, deadline - time.monotonic()))
    alive = [p for p in procs if p.is_alive()]
    for proc in alive:
        proc.kill()
        proc.join(10)
    assert not alive, f"{len(alive)} child processes did not finish in {TIMEOUT}s"
    assert [p.exitcode for p in procs] == [0] * len(procs)


@pytest.mark.parametrize("mode", ["xattr", "sidecar"])
def test_updates_from_four_processes_lose_nothing(tmp_path: Path, mode: str) -> None:
    procs = [_spawn.Process(target=_increment, args=(str(tmp_path), mode, 50)) for _ in range(4)]
    for proc in procs:
        proc.start()
    _join_all(procs)
    got = LocalStore(tmp_path).get(NS.ref("counter"))
    assert got is not None
    assert got.data == b"200"


class _SlowSource:
    """A stream that sends one chunk, signals that the write is under way, then stalls."""

    def __init__(self, ready: Connection) -> None:
        self._ready = ready
        self._sent = 0

    def read(self, size: int = -1) -> bytes:
        if self._sent == 2:
            self._ready.send("writing")
            time.sleep(TIMEOUT)  # the parent kills us long before this ends
        self._sent += 1
        return b"n" * (1 << 20)


def _write_slowly(root: str, mode: str, named: bool, ready: Connection) -> None:
    _store(root, mode, named).set(NS.ref("v"), _SlowSource(ready))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("mode", "named"),
    [("xattr", False), ("sidecar", False), ("sidecar", True)],
    ids=["xattr", "sidecar", "sidecar-named-temp"],
)
def test_writer_killed_mid_write_leaves_old_value(tmp_path: Path, mode: str, named: bool) -> None:
    store = _store(str(tmp_path), mode, named)
    old = store.set(NS.ref("v"), b"old value", mime_type="text/plain")
    folder = tmp_path / "ns" / "namespace"
    before = set(os.listdir(folder))

    ready, child_end = _spawn.Pipe(duplex=False)
    proc = _spawn.Process(target=_write_slowly, args=(str(tmp_path), mode, named, child_end))
    proc.start()
    try:
        assert ready.poll(TIMEOUT), "the writer never started writing"
        assert ready.recv() == "writing"
        os.kill(proc.pid, signal.SIGKILL)  # type: ignore[arg-type]
    finally:
        proc.join(TIMEOUT)
    assert proc.exitcode == -signal.SIGKILL

    got = LocalStore(tmp_path).get(NS.ref("v"))
    assert got is not None
    assert got.data == b"old value"
    assert got.meta == old
    after = set(os.listdir(folder))
    if named:
        # A named temp file survives its killed writer until the next write sweeps it.
        (litter,) = after - before
        assert litter.startswith(f".v.tmp-{proc.pid}-")
        _store(str(tmp_path), mode, named).set(NS.ref("other"), b"x")
        assert litter not in set(os.listdir(folder))
    else:
        assert after == before


@contextmanager
def _access_refused(root: Path) -> Iterator[None]:
    """Make every file under ``root`` inaccessible to this process for the block."""
    if os.geteuid() == 0:
        # Root ignores file modes: act as an unprivileged user (the real uid stays 0, so
        # the effective uid can be switched back).
        os.seteuid(65534)
        try:
            yield
        finally:
            os.seteuid(0)
    else:
        mode = root.stat().st_mode
        root.chmod(0)
        try:
            yield
        finally:
            root.chmod(mode)


def test_refused_access_is_a_store_error(tmp_path: Path) -> None:
    root = tmp_path / "store"
    store = LocalStore(root)
    store.set(NS.ref("v"), b"x")
    ref = NS.ref("v")
    with _access_refused(root):
        for call in (
            lambda: store.get(ref),
            lambda: store.open(ref),
            lambda: store.set(ref, b"y"),
            lambda: store.delete(ref),
        ):
            with pytest.raises(StoreError) as info:
                call()
            assert str(info.value) == f"cannot access {ref}: Permission denied"
            assert isinstance(info.value.__cause__, PermissionError)
        with pytest.raises(StoreError) as info:
            store.list(NS)
        assert str(info.value) == "cannot access namespace ns: Permission denied"
        assert isinstance(info.value.__cause__, PermissionError)
    assert store.get(ref).data == b"x"  # type: ignore[union-attr]


def test_refused_root_is_a_store_error(tmp_path: Path) -> None:
    root = tmp_path / "store"
    root.mkdir()
    with _access_refused(root), pytest.raises(StoreError) as info:
        LocalStore(root)
    assert str(info.value) == f"cannot access the store at {str(root)!r}: Permission denied"
    assert isinstance(info.value.__cause__, PermissionError)


def test_file_in_place_of_a_folder_is_a_store_error(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    (tmp_path / "ns").write_bytes(b"not a folder")
    ref = NS.ref("v")
    with pytest.raises(StoreError) as info:
        store.set(ref, b"x")
    assert str(info.value) == f"cannot access {ref}: Not a directory"
    assert isinstance(info.value.__cause__, NotADirectoryError)
    with pytest.raises(StoreError) as info:
        store.get(ref)
    assert str(info.value) == f"cannot access {ref}: Not a directory"
    assert isinstance(info.value.__cause__, NotADirectoryError)
    with pytest.raises(StoreError) as info:
        store.list(NS)
    assert str(info.value) == "cannot access namespace ns: Not a directory"
