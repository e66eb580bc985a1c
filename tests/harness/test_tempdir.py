"""Writing ``files:`` into the temp dir and collecting ``out/``, on real files and a real store."""

from __future__ import annotations

import base64
import gzip
import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from direktiv_sdk import open_store
from direktiv_sdk.engine.functions import FunctionFile
from direktiv_sdk.errors import (
    ArchiveError,
    CatchableError,
    FileEntryError,
    InvalidFileTypeError,
    InvalidKeyError,
    InvalidScopeError,
    OutFolderError,
    PathEscapeError,
)
from direktiv_sdk.store import KEY_PATTERN, Owner, Scope, VariableStore
from harness import ActionContext
from harness.files._tempdir import collect_out, write_files

NS, WF, INST = "ns", "/flows/a.yaml", "i1"


def tar_of(files: dict[str, bytes], *, compressed: bool = False) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(buffer.getvalue()) if compressed else buffer.getvalue()


def snapshot(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.fixture
def store() -> VariableStore:
    return open_store("memory://")


@pytest.fixture
def context(store: VariableStore) -> ActionContext:
    return ActionContext(store, namespace=NS, workflow=WF, instance=INST, aid="aid-1")


@pytest.fixture
def temp_dir(tmp_path: Path) -> Path:
    """The action's temp dir, ``<tmp>/area/aid-1``; ``<tmp>/area`` is checked for leaks."""
    path = tmp_path / "area" / "aid-1"
    path.mkdir(parents=True)
    (tmp_path / "area" / "neighbour").write_bytes(b"keep")
    return path


def put(store: VariableStore, scope: Scope, key: str, data: bytes) -> None:
    owner = {
        Scope.INSTANCE: Owner.for_instance(NS, INST),
        Scope.WORKFLOW: Owner.for_workflow(NS, WF),
        Scope.NAMESPACE: Owner.for_namespace(NS),
    }[scope]
    store.set(owner.ref(key), data)


def stored(store: VariableStore, scope: Scope, key: str) -> tuple[bytes, str] | None:
    owner = {
        Scope.INSTANCE: Owner.for_instance(NS, INST),
        Scope.WORKFLOW: Owner.for_workflow(NS, WF),
        Scope.NAMESPACE: Owner.for_namespace(NS),
    }[scope]
    variable = store.get(owner.ref(key))
    return None if variable is None else (variable.data, variable.mime_type)


# ---------------------------------------------------------------------------- files:


def test_each_type_and_scope_is_written(
    store: VariableStore, context: ActionContext, temp_dir: Path
) -> None:
    put(store, Scope.INSTANCE, "plain", b"plain bytes")
    put(store, Scope.WORKFLOW, "raw", b"default type")
    put(store, Scope.NAMESPACE, "b64", base64.encodebytes(b"\x00\x01binary" * 20))
    put(store, Scope.INSTANCE, "t", tar_of({"x.txt": b"X", "d/y.txt": b"Y"}))
    put(store, Scope.INSTANCE, "tgz", tar_of({"z.txt": b"Z"}, compressed=True))
    files = (
        FunctionFile("plain", type="plain"),
        FunctionFile("raw", scope="workflow"),
        FunctionFile("b64", scope="namespace", type="base64", as_name="decoded.bin"),
        FunctionFile("t", type="tar"),
        FunctionFile("tgz", type="tar.gz", as_name="nested/dir"),
    )
    write_files(files, temp_dir, context, None)
    assert (temp_dir / "plain").read_bytes() == b"plain bytes"
    assert (temp_dir / "raw").read_bytes() == b"default type"
    assert (temp_dir / "decoded.bin").read_bytes() == b"\x00\x01binary" * 20
    assert (temp_dir / "t" / "x.txt").read_bytes() == b"X"
    assert (temp_dir / "t" / "d" / "y.txt").read_bytes() == b"Y"
    assert (temp_dir / "nested" / "dir" / "z.txt").read_bytes() == b"Z"


def test_every_parent_folder_of_an_as_name_gets_0750(
    store: VariableStore, context: ActionContext, temp_dir: Path
) -> None:
    put(store, Scope.INSTANCE, "v", b"1")
    put(store, Scope.INSTANCE, "t", tar_of({"deep/er/x": b"2"}))
    files = (FunctionFile("v", as_name="a/b/c/v"), FunctionFile("t", type="tar", as_name="d/e/t"))
    write_files(files, temp_dir, context, None)
    for folder in ("a", "a/b", "a/b/c", "d", "d/e", "d/e/t", "d/e/t/deep", "d/e/t/deep/er"):
        assert stat.S_IMODE((temp_dir / folder).stat().st_mode) == 0o750, folder


def test_scope_defaults_to_instance(
    store: VariableStore, context: ActionContext, temp_dir: Path
) -> None:
    put(store, Scope.INSTANCE, "v", b"instance")
    put(store, Scope.NAMESPACE, "v", b"namespace")
    write_files((FunctionFile("v", scope=""),), temp_dir, context, None)
    assert (temp_dir / "v").read_bytes() == b"instance"


def test_missing_variables_give_empty_files_and_folders(
    context: ActionContext, temp_dir: Path
) -> None:
    files = (
        FunctionFile("p"),
        FunctionFile("b", type="base64"),
        FunctionFile("t", type="tar"),
        FunctionFile("g", type="tar.gz"),
    )
    write_files(files, temp_dir, context, None)
    assert (temp_dir / "p").read_bytes() == b""
    assert (temp_dir / "b").read_bytes() == b""
    assert (temp_dir / "t").is_dir()
    assert list((temp_dir / "t").iterdir()) == []
    assert (temp_dir / "g").is_dir()
    assert list((temp_dir / "g").iterdir()) == []


def test_permissions_apply_to_files_and_archive_members(
    store: VariableStore, context: ActionContext, temp_dir: Path
) -> None:
    put(store, Scope.INSTANCE, "script", b"#!/bin/sh\n")
    put(store, Scope.INSTANCE, "bundle", tar_of({"a": b"1", "sub/b": b"2"}))
    files = (
        FunctionFile("script", permissions=0o755),
        FunctionFile("bundle", type="tar", permissions=0o600),
        FunctionFile("other"),
    )
    write_files(files, temp_dir, context, None)
    assert stat.S_IMODE((temp_dir / "script").stat().st_mode) == 0o755
    assert stat.S_IMODE((temp_dir / "bundle" / "a").stat().st_mode) == 0o600
    assert stat.S_IMODE((temp_dir / "bundle" / "sub" / "b").stat().st_mode) == 0o600
    assert stat.S_IMODE((temp_dir / "bundle" / "sub").stat().st_mode) == 0o750
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE((temp_dir / "other").stat().st_mode) == 0o666 & ~umask


def test_file_scope_reads_the_namespace_tree(
    context: ActionContext, temp_dir: Path, tmp_path: Path
) -> None:
    root = tmp_path / "namespace-files"
    (root / "dir").mkdir(parents=True)
    (root / "dir" / "f.json").write_bytes(b'{"a":1}')
    (root / "top.txt").write_bytes(b"top")
    files = (
        FunctionFile("/dir/f.json", scope="file"),
        FunctionFile("top.txt", scope="file", as_name="renamed"),
        FunctionFile("/missing.txt", scope="file"),
        FunctionFile("/dir", scope="file", as_name="a-folder"),
    )
    write_files(files, temp_dir, context, root)
    assert (temp_dir / "dir" / "f.json").read_bytes() == b'{"a":1}'
    assert (temp_dir / "renamed").read_bytes() == b"top"
    assert (temp_dir / "missing.txt").read_bytes() == b""
    assert (temp_dir / "a-folder").read_bytes() == b""  # a folder is no file: empty


def test_file_scope_without_a_root_gives_empty_files(
    context: ActionContext, temp_dir: Path
) -> None:
    write_files((FunctionFile("/x.txt", scope="file"),), temp_dir, context, None)
    assert (temp_dir / "x.txt").read_bytes() == b""


def test_out_folders_are_created(context: ActionContext, temp_dir: Path) -> None:
    write_files((), temp_dir, context, None)
    assert snapshot(temp_dir) == [
        "out",
        "out/file",
        "out/instance",
        "out/namespace",
        "out/workflow",
    ]


def test_as_may_write_into_out_and_the_file_is_collected(
    store: VariableStore, context: ActionContext, temp_dir: Path
) -> None:
    put(store, Scope.INSTANCE, "v", b"passed through")
    write_files((FunctionFile("v", as_name="out/namespace/copy"),), temp_dir, context, None)
    collect_out(temp_dir, context)
    assert stored(store, Scope.NAMESPACE, "copy") == (b"passed through", "")


# ---------------------------------------------------------------------------- files: errors


def test_unknown_type_is_catchable_invalid_type(context: ActionContext, temp_dir: Path) -> None:
    files = (FunctionFile("a"), FunctionFile("b", type="zip"))
    with pytest.raises(InvalidFileTypeError) as caught:
        write_files(files, temp_dir, context, None)
    error = caught.value
    assert isinstance(error, CatchableError)
    assert (error.code, error.index, error.file_type) == ("direktiv.var.invalidType", 1, "zip")
    assert error.message == (
        "invalid 'type' for function file 1: 'zip'; use '', 'plain', 'base64', 'tar' or 'tar.gz'"
    )
    assert snapshot(temp_dir) == []  # checked before anything is written


def test_invalid_base64_is_an_error(
    store: VariableStore, context: ActionContext, temp_dir: Path
) -> None:
    put(store, Scope.INSTANCE, "b", b"not base64!")
    with pytest.raises(FileEntryError) as caught:
        write_files((FunctionFile("b", type="base64"),), temp_dir, context, None)
    assert str(caught.value) == (
        "cannot write files: entry 'b': its data is not valid base64 (Only base64 data is "
        "allowed); store standard base64 or use type 'plain'"
    )


def test_two_entries_with_one_target_are_an_error(context: ActionContext, temp_dir: Path) -> None:
    files = (FunctionFile("a"), FunctionFile("b", as_name="./a"))
    with pytest.raises(FileEntryError) as caught:
        write_files(files, temp_dir, context, None)
    assert str(caught.value) == (
        "cannot write files: entry 'a': another entry writes there too; give one of them a "
        "different 'as'"
    )
    assert snapshot(temp_dir) == []


@pytest.mark.parametrize(
    ("entry", "path"),
    [
        (FunctionFile("a", as_name="../x"), "../x"),
        (FunctionFile("a", as_name="sub/../../x"), "sub/../../x"),
        (FunctionFile("a", as_name="/etc/x"), "/etc/x"),
        (FunctionFile("../x", scope="file"), "../x"),
        (FunctionFile("/../../x", scope="file"), "../../x"),
    ],
)
def test_targets_escaping_the_temp_dir_are_refused(
    context: ActionContext, temp_dir: Path, tmp_path: Path, entry: FunctionFile, path: str
) -> None:
    before = snapshot(tmp_path)
    with pytest.raises(PathEscapeError) as caught:
        write_files((entry,), temp_dir, context, None)
    assert str(caught.value) == (
        f"path {path!r} escapes {str(temp_dir)!r}: keep it inside that folder"
    )
    assert snapshot(tmp_path) == before


def test_file_keys_escaping_the_namespace_tree_are_refused(
    context: ActionContext, temp_dir: Path, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "secret").write_bytes(b"secret")
    os.symlink(tmp_path / "secret", root / "link")
    for key in ("../secret", "/link"):
        with pytest.raises(PathEscapeError) as caught:
            write_files((FunctionFile(key, scope="file", as_name="x"),), temp_dir, context, root)
        assert (
            str(caught.value) == f"path {key!r} escapes {str(root)!r}: keep it inside that folder"
        )
    assert not (temp_dir / "x").exists()


@pytest.mark.parametrize("scope", ["thread", "system", "Instance"])
def test_unknown_scopes_are_refused(context: ActionContext, temp_dir: Path, scope: str) -> None:
    with pytest.raises(InvalidScopeError) as caught:
        write_files((FunctionFile("a", scope=scope),), temp_dir, context, None)
    assert str(caught.value) == (
        f"invalid scope {scope!r}: use one of instance, workflow, namespace, file"
    )


def test_invalid_variable_keys_are_refused(context: ActionContext, temp_dir: Path) -> None:
    with pytest.raises(InvalidKeyError) as caught:
        write_files((FunctionFile("1bad"),), temp_dir, context, None)
    assert str(caught.value).startswith("invalid variable key '1bad': keys must match")


def test_an_empty_target_is_refused(context: ActionContext, temp_dir: Path) -> None:
    with pytest.raises(FileEntryError) as caught:
        write_files((FunctionFile("/", scope="file"),), temp_dir, context, None)
    assert str(caught.value) == (
        "cannot write files: entry '': the name is empty; give the entry a key or an 'as' name"
    )


def test_a_file_below_another_file_is_an_error(context: ActionContext, temp_dir: Path) -> None:
    files = (FunctionFile("a"), FunctionFile("b", as_name="a/b"))
    with pytest.raises(FileEntryError) as caught:
        write_files(files, temp_dir, context, None)
    assert str(caught.value) == (
        "cannot write files: entry 'a/b': a folder on its path is already a file; give one "
        "of the entries another 'as'"
    )


@pytest.mark.parametrize("name", ["out", "out/instance"])
def test_out_being_a_file_is_an_error(context: ActionContext, temp_dir: Path, name: str) -> None:
    with pytest.raises(OutFolderError) as caught:
        write_files((FunctionFile("v", as_name=name),), temp_dir, context, None)
    assert str(caught.value) == (
        f"cannot collect {name!r}: a files: entry wrote a file there; give that entry "
        "another 'as' name"
    )


def test_hostile_archives_write_nothing_outside(
    store: VariableStore, context: ActionContext, temp_dir: Path, tmp_path: Path
) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("../../escaped")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    put(store, Scope.INSTANCE, "evil", buffer.getvalue())
    before = snapshot(tmp_path)
    with pytest.raises(ArchiveError) as caught:
        write_files((FunctionFile("evil", type="tar"),), temp_dir, context, None)
    assert str(caught.value) == (
        "cannot unpack 'evil': member '../../escaped' climbs out of the folder with '..'; "
        "remove it from the archive"
    )
    assert [p for p in snapshot(tmp_path) if not p.startswith("area/aid-1/")] == before


@pytest.mark.parametrize("kind", ["tar", "tar.gz"])
def test_non_empty_garbage_is_an_archive_error(
    store: VariableStore, context: ActionContext, temp_dir: Path, kind: str
) -> None:
    put(store, Scope.INSTANCE, "junk", b"definitely not an archive")
    with pytest.raises(ArchiveError, match=r"^cannot unpack 'junk': "):
        write_files((FunctionFile("junk", type=kind),), temp_dir, context, None)


# ---------------------------------------------------------------------------- out/


def test_out_files_and_folders_become_variables_in_order(
    store: VariableStore, context: ActionContext, temp_dir: Path
) -> None:
    write_files((), temp_dir, context, None)
    out = temp_dir / "out"
    (out / "instance" / "b").write_bytes(b"inst b")
    (out / "instance" / "a").write_bytes(b"inst a")
    (out / "workflow" / "n").write_bytes(b"null")
    (out / "namespace" / "tree" / "sub").mkdir(parents=True)
    (out / "namespace" / "tree" / "one.txt").write_bytes(b"1")
    (out / "namespace" / "tree" / "sub" / "two.txt").write_bytes(b"2")
    os.symlink("/etc/passwd", out / "instance" / "link")
    os.mkfifo(out / "instance" / "fifo")
    put(store, Scope.INSTANCE, "a", b"old")
    store.set(Owner.for_instance(NS, INST).ref("a"), b"old", mime_type="text/plain")
    writes = collect_out(temp_dir, context)
    assert [(w.scope, w.key, w.via, w.mime_type) for w in writes] == [
        (Scope.NAMESPACE, "tree", "out", ""),
        (Scope.WORKFLOW, "n", "out", ""),
        (Scope.INSTANCE, "a", "out", ""),
        (Scope.INSTANCE, "b", "out", ""),
    ]
    assert stored(store, Scope.INSTANCE, "a") == (b"inst a", "")
    assert stored(store, Scope.WORKFLOW, "n") == (b"null", "")  # 4 bytes, not a deletion
    assert stored(store, Scope.INSTANCE, "link") is None
    assert stored(store, Scope.INSTANCE, "fifo") is None
    archive = stored(store, Scope.NAMESPACE, "tree")
    assert archive is not None
    with tarfile.open(fileobj=io.BytesIO(archive[0]), mode="r:gz") as tar:
        names = [(m.name, m.isdir()) for m in tar.getmembers()]
        two = tar.extractfile("/sub/two.txt")
        assert two is not None
        assert two.read() == b"2"
    assert names == [("", True), ("/one.txt", False), ("/sub", True), ("/sub/two.txt", False)]
    assert context.writes == writes


@pytest.mark.parametrize("name", [".hidden", "1st", "a_", "has space"])
def test_badly_named_out_entries_are_errors_and_store_nothing(
    store: VariableStore, context: ActionContext, temp_dir: Path, name: str
) -> None:
    write_files((), temp_dir, context, None)
    (temp_dir / "out" / "namespace" / "fine").write_bytes(b"ok")
    (temp_dir / "out" / "workflow" / name).write_bytes(b"bad")
    with pytest.raises(OutFolderError) as caught:
        collect_out(temp_dir, context)
    assert str(caught.value) == (
        f"cannot collect 'out/workflow/{name}': {name!r} is not a valid variable name; "
        f"rename it to match {KEY_PATTERN}"
    )
    assert stored(store, Scope.NAMESPACE, "fine") is None


def test_entries_in_out_file_are_errors(context: ActionContext, temp_dir: Path) -> None:
    write_files((), temp_dir, context, None)
    (temp_dir / "out" / "file" / "x").write_bytes(b"1")
    with pytest.raises(OutFolderError) as caught:
        collect_out(temp_dir, context)
    assert str(caught.value) == (
        "cannot collect 'out/file/x': scope 'file' is read-only; write it under "
        "out/namespace, out/workflow or out/instance"
    )


def test_an_out_folder_replaced_by_a_link_is_an_error(
    context: ActionContext, temp_dir: Path, tmp_path: Path
) -> None:
    write_files((), temp_dir, context, None)
    (temp_dir / "out" / "instance").rmdir()
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "key").write_bytes(b"secret")
    os.symlink(secrets, temp_dir / "out" / "instance")
    with pytest.raises(OutFolderError) as caught:
        collect_out(temp_dir, context)
    assert str(caught.value) == (
        "cannot collect 'out/instance': it is not a folder any more; leave out/ as it is"
    )
    assert context.writes == ()


def test_missing_out_folders_collect_nothing(context: ActionContext, temp_dir: Path) -> None:
    assert collect_out(temp_dir, context) == ()
    write_files((), temp_dir, context, None)
    (temp_dir / "out" / "workflow").rmdir()
    (temp_dir / "out" / "instance" / "v").write_bytes(b"1")
    assert [w.key for w in collect_out(temp_dir, context)] == ["v"]


def test_files_round_trip_through_out(
    store: VariableStore, context: ActionContext, temp_dir: Path
) -> None:
    """A folder collected from out/ and given back as a tar.gz file unpacks to the same tree."""
    write_files((), temp_dir, context, None)
    folder = temp_dir / "out" / "instance" / "bundle"
    (folder / "deep").mkdir(parents=True)
    (folder / "x.bin").write_bytes(bytes(range(256)))
    (folder / "deep" / "y").write_bytes(b"y")
    collect_out(temp_dir, context)
    second = temp_dir.parent / "aid-2"
    second.mkdir()
    write_files((FunctionFile("bundle", type="tar.gz"),), second, context, None)
    assert (second / "bundle" / "x.bin").read_bytes() == bytes(range(256))
    assert (second / "bundle" / "deep" / "y").read_bytes() == b"y"
