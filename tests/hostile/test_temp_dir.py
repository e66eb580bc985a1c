"""Hostile temp dirs: links swapped in while out/ is collected, links planted before files: land.

The attacker is a thread standing in for a process the function left running: it acts at the
moment the harness opens a file (inotify), or plants its links before the harness starts.
"""

from __future__ import annotations

import contextlib
import io
import os
import stat
import subprocess
import sys
import tarfile
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from _attacker import OnOpen, exchange

from direktiv_sdk import InstanceResult, open_store, run_workflow
from direktiv_sdk.engine.functions import FunctionFile
from direktiv_sdk.errors import ArchiveError, FileEntryError, OutFolderError
from direktiv_sdk.store import Scope, VariableStore
from harness.files._tempdir import collect_out, write_files
from harness.sidecar import ActionContext

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="inotify and renameat2: Linux")

TIMEOUT = 20.0
"""Seconds a probe may block before it counts as hanging."""

BIG = 16 << 20
"""The first file's size: collecting it takes far longer than the attacker's swap."""


@pytest.fixture
def store(tmp_path: Path) -> VariableStore:
    return open_store(f"file://{tmp_path}/store")


@pytest.fixture
def context(store: VariableStore) -> ActionContext:
    return ActionContext(store, namespace="ns", instance="i1")


@pytest.fixture
def temp_dir(tmp_path: Path) -> Path:
    path = tmp_path / "action"
    for folder in ("file", "namespace", "workflow", "instance"):
        (path / "out" / folder).mkdir(parents=True)
    return path


def _stored(context: ActionContext, scope: Scope, key: str) -> bytes | None:
    found = context.store.get(context.ref(scope, key))
    return None if found is None else found.data


@pytest.mark.parametrize("swapped", ["out/namespace", "out/namespace/sub"])
def test_folder_swapped_for_a_link_during_collection_is_not_followed(
    temp_dir: Path, tmp_path: Path, context: ActionContext, swapped: str
) -> None:
    folder = temp_dir / swapped
    folder.mkdir(exist_ok=True)
    # `a` is collected first; the moment it is opened, `folder` becomes a link to /etc.
    (temp_dir / "out/namespace/a").write_bytes(bytes(BIG))
    (folder / "passwd").write_bytes(b"planted")
    (folder / "group").write_bytes(b"planted")
    link = tmp_path / "evil"
    link.symlink_to("/etc")
    swap = OnOpen(temp_dir / "out/namespace", "a", lambda: exchange(folder, link))
    # Refusing (OutFolderError) is fine; following the link is not.
    with swap as attacker, contextlib.suppress(OutFolderError):
        collect_out(temp_dir, context)
    assert attacker.fired.is_set()
    etc_passwd = Path("/etc/passwd").read_bytes()
    for key in ("passwd", "group", "sub"):
        data = _stored(context, Scope.NAMESPACE, key)
        assert data is None or etc_passwd not in data
        if data is not None and key != "sub":
            assert data == b"planted"


def test_files_vanishing_during_collection_are_left_out(
    temp_dir: Path, context: ActionContext
) -> None:
    out = temp_dir / "out/namespace"
    (out / "a").write_bytes(bytes(BIG))
    for name in ("b", "c"):
        (out / name).write_bytes(name.encode())
    (out / "d").mkdir()

    def vanish() -> None:
        (out / "b").unlink()
        (out / "d").rmdir()

    with OnOpen(out, "a", vanish):
        writes = collect_out(temp_dir, context)
    assert [(w.key, w.size) for w in writes] == [("a", BIG), ("c", 1)]


def test_a_fifo_in_out_is_skipped_without_opening_it(
    temp_dir: Path, context: ActionContext
) -> None:
    os.mkfifo(temp_dir / "out/instance/pipe")
    (temp_dir / "out/instance/ok").write_bytes(b"1")
    assert [w.key for w in collect_out(temp_dir, context)] == ["ok"]


def _tar(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("file", "error"),
    [
        (FunctionFile(key="bundle", type="tar"), ArchiveError),
        (FunctionFile(key="x", as_name="bundle/f", type="plain"), FileEntryError),
        (FunctionFile(key="x", as_name="bundle", type="plain"), FileEntryError),
    ],
)
def test_files_are_never_written_through_a_planted_link(
    tmp_path: Path,
    context: ActionContext,
    file: FunctionFile,
    error: type[Exception],
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    temp_dir = tmp_path / "action"
    temp_dir.mkdir(mode=0o700)
    (temp_dir / "bundle").symlink_to(outside)
    context.set_variable(Scope.INSTANCE, "bundle", _tar({"f": b"tar"}), "", "var")
    context.set_variable(Scope.INSTANCE, "x", b"plain", "", "var")
    with pytest.raises(error):
        write_files([file], temp_dir, context, None)
    assert list(outside.iterdir()) == []


@pytest.mark.parametrize(
    ("permissions", "mode"),
    [(0o755, 0o755), (0o4777, 0o777), (0o61440, 0o440), (0o170000, 0), (1 << 23 | 0o700, 0o4700)],
)
def test_permissions_are_applied_as_go_applies_them(
    tmp_path: Path, context: ActionContext, permissions: int, mode: int
) -> None:
    temp_dir = tmp_path / "action"
    temp_dir.mkdir(mode=0o700)
    context.set_variable(Scope.INSTANCE, "x", b"plain", "", "var")
    write_files([FunctionFile(key="x", permissions=permissions)], temp_dir, context, None)
    assert stat.S_IMODE(os.stat(temp_dir / "x").st_mode) == mode


def _bounded(work: Callable[[], object], fifo: Path) -> None:
    """Run ``work`` in a thread; fail (after unblocking it) if it does not end in time."""
    failure: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:  # re-raised below
            failure.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(TIMEOUT)
    if thread.is_alive():
        # Release the blocked open() with a writer, so the thread ends, then fail.
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        thread.join(TIMEOUT)
        pytest.fail(f"reading the FIFO {fifo} blocked for {TIMEOUT}s")
    if failure:
        raise failure[0]


def test_a_fifo_namespace_file_reads_as_empty_without_blocking(
    tmp_path: Path, context: ActionContext
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    os.mkfifo(root / "pipe")
    temp_dir = tmp_path / "action"
    temp_dir.mkdir(mode=0o700)
    files = [FunctionFile(key="/pipe", scope="file")]
    _bounded(lambda: write_files(files, temp_dir, context, root), root / "pipe")
    assert (temp_dir / "pipe").read_bytes() == b""


def test_a_fifo_read_by_a_file_scope_getter_is_an_error_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    flow = tmp_path / "flow.yaml"
    flow.write_text(
        "direktiv_api: workflow/v1\nstates:\n- id: a\n  type: getter\n  variables:\n"
        "  - key: /pipe\n    scope: file\n"
    )
    results: list[InstanceResult] = []
    run = lambda: results.append(run_workflow(flow, root=tmp_path, store="memory://"))  # noqa: E731
    _bounded(run, tmp_path / "pipe")
    assert (results[0].status, results[0].error_message) == (
        "crashed",
        "target is not a file: /pipe",
    ), results[0]


_STREAMING_CHILD = textwrap.dedent(
    """
    import resource, sys
    from pathlib import Path
    from direktiv_sdk import InstanceResult, open_store, run_workflow
    from harness.files._tempdir import collect_out
    from harness.sidecar import ActionContext
    temp_dir, store_url = Path(sys.argv[1]), sys.argv[2]
    context = ActionContext(open_store(store_url))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    writes = collect_out(temp_dir, context)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert [w.key for w in writes] == ["big"], writes
    print((after - before) * 1024, writes[0].size, len(writes[0].data))
    """
)


@pytest.mark.parametrize("kind", ["file", "folder"])
def test_collection_streams_into_the_store(tmp_path: Path, temp_dir: Path, kind: str) -> None:
    size = 256 << 20
    if kind == "file":
        with open(temp_dir / "out/namespace/big", "wb") as file:
            file.truncate(size)  # sparse: cheap to make, a full read to collect
    else:
        (temp_dir / "out/namespace/big").mkdir()
        with open(temp_dir / "out/namespace/big/inner", "wb") as file:
            file.truncate(size)
    result = subprocess.run(
        [sys.executable, "-c", _STREAMING_CHILD, str(temp_dir), f"file://{tmp_path}/s"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    grown, stored, kept = map(int, result.stdout.split())
    if kind == "file":
        assert (stored, kept) == (size, 0)  # over RECORD_LIMIT: not kept in the record either
    assert grown < 64 << 20, f"collecting a {size >> 20} MiB {kind} grew RSS by {grown >> 20} MiB"


def test_archives_have_no_size_cap_unless_one_is_set(
    tmp_path: Path, context: ActionContext
) -> None:
    context.set_variable(Scope.INSTANCE, "t", _tar({"a": bytes(600), "b": bytes(600)}), "", "var")
    unlimited = tmp_path / "unlimited"
    unlimited.mkdir(mode=0o700)
    write_files([FunctionFile(key="t", type="tar")], unlimited, context, None)
    assert (unlimited / "t" / "b").stat().st_size == 600
    capped = tmp_path / "capped"
    capped.mkdir(mode=0o700)
    with pytest.raises(ArchiveError, match=r"it unpacks to more than 1000 bytes"):
        write_files(
            [FunctionFile(key="t", type="tar")], capped, context, None, max_extract_size=1000
        )
