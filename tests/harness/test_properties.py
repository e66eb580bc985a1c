"""Properties of the harness, checked with the project's own strategies.

* Any set of ``files:`` materialised into the temp dir and copied back through ``out/``
  round-trips byte for byte (files as files, folders as tar.gz archives).
* No hostile archive ever writes outside the temp dir.
* ``variable_keys()`` always validate and ``invalid_variable_keys()`` never do, in the store
  and at the sidecar's ``/var``.
* Variables set through ``/var`` keep their bytes and mime type; action inputs reach the
  function as Go-JSON.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import stat
import tarfile
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, cast

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from direktiv_sdk import open_store
from direktiv_sdk.errors import ArchiveError, InvalidKeyError
from direktiv_sdk.expr import gojson
from direktiv_sdk.store import Owner, Scope, VariableStore, validate_key
from harness import FunctionContext, Sidecar, call_function
from harness.testing.strategies import (
    HOSTILE_NAME,
    FileSpec,
    action_inputs,
    file_specs,
    invalid_variable_keys,
    mime_types,
    scopes,
    tar_archives,
    variable_keys,
    variable_values,
)

ALL_SCOPES = ("instance", "workflow", "namespace", "file")
INSTANCE = "i-1"
"""The calling instance of every call here (its variables are read back)."""


@pytest.fixture(params=["memory", "file"])
def make_store(request: pytest.FixtureRequest) -> Iterator[Callable[[], VariableStore]]:
    """A factory of empty stores of one backend; each Hypothesis example opens a new one."""
    folders: list[tempfile.TemporaryDirectory[str]] = []

    def make() -> VariableStore:
        if request.param == "memory":
            return open_store("memory://")
        folders.append(tempfile.TemporaryDirectory(prefix="direktiv-prop-"))
        return open_store(f"file://{folders[-1].name}")

    yield make
    for folder in folders:
        folder.cleanup()


def unpack(archive: bytes) -> dict[str, bytes | None]:
    """Return a tar.gz from ``out/`` as ``{relative path: bytes or None for a folder}``."""
    contents: dict[str, bytes | None] = {}
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        for member in tar:
            name = member.name.strip("/")
            if not name:
                continue  # the folder itself
            handle = tar.extractfile(member) if member.isreg() else None
            contents[name] = None if handle is None else handle.read()
    return contents


# --------------------------------------------------------------------------- files round-trip


def copy_back(specs: tuple[FileSpec, ...], modes: dict[str, int]) -> Callable[..., str]:
    """Return a function that copies each entry's target to ``out/instance/f<i>``."""

    def function(_input: object, context: FunctionContext) -> str:
        for index, spec in enumerate(specs):
            source = context.temp_dir / spec.target
            destination = context.out("instance") / f"f{index}"
            if spec.is_directory:
                shutil.copytree(source, destination)
                for path in source.rglob("*"):
                    if path.is_file():
                        modes[f"{spec.target}/{path.relative_to(source)}"] = path.stat().st_mode
            else:
                shutil.copyfile(source, destination)
                modes[spec.target] = source.stat().st_mode
        return "copied"

    return function


# make_store is a factory: every example opens its own store, so sharing it is safe.
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(specs=file_specs(max_size=4, scopes=ALL_SCOPES))
def test_files_round_trip_through_the_temp_dir_and_out(
    make_store: Callable[[], VariableStore], specs: tuple[FileSpec, ...]
) -> None:
    store = make_store()
    modes: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="direktiv-root-") as folder:
        root = Path(folder)
        for spec in specs:
            spec.seed(store, instance=INSTANCE, root=root)
        result = call_function(
            copy_back(specs, modes),
            {},
            files=[spec.file for spec in specs],
            store=store,
            instance=INSTANCE,
            root=root,
        )
    assert result.value == "copied"
    owner = Owner.for_instance("default", INSTANCE)
    for index, spec in enumerate(specs):
        variable = store.get(owner.ref(f"f{index}"))
        assert variable is not None
        assert variable.mime_type == ""
        if spec.is_directory:
            assert unpack(variable.data) == spec.tree
        else:
            assert variable.data == spec.contents
        if spec.file.permissions is not None:
            written = [mode for path, mode in modes.items() if path == spec.target] or [
                mode for path, mode in modes.items() if path.startswith(spec.target + "/")
            ]
            assert all(stat.S_IMODE(mode) == spec.file.permissions for mode in written)
    store.close()


# --------------------------------------------------------------------------- hostile archives


def snapshot(folder: Path) -> dict[str, tuple[str, str]]:
    """Return every entry below ``folder``: relative path -> (kind, content digest or link)."""
    entries: dict[str, tuple[str, str]] = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in [*dirnames, *filenames]:
            path = Path(dirpath) / name
            relative = str(path.relative_to(folder))
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode):
                entries[relative] = ("link", os.readlink(path))
            elif stat.S_ISDIR(mode):
                entries[relative] = ("dir", "")
            elif stat.S_ISREG(mode):
                entries[relative] = ("file", hashlib.sha256(path.read_bytes()).hexdigest())
            else:
                entries[relative] = ("other", oct(mode))
    return entries


def escaping(archive: bytes) -> bool:
    """Return whether a member of ``archive`` is a link, a device, a fifo or has ``..``."""
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        return any(
            not (member.isreg() or member.isdir()) or ".." in member.name.split("/")
            for member in tar
        )


OUTSIDE: tuple[Path, ...] = (
    Path("/") / HOSTILE_NAME,
    Path(tempfile.gettempdir()) / HOSTILE_NAME,
    Path("/etc") / HOSTILE_NAME,
)
"""Absolute places a hostile member aims at (besides the watched parent folder)."""


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_no_hostile_archive_writes_outside_the_temp_dir(data: st.DataObject) -> None:
    compressed = data.draw(st.booleans(), label="gzip")
    archive = data.draw(tar_archives(gzip=compressed, hostile=True), label="archive")
    store = open_store("memory://")
    store.set(Owner.for_instance("default", INSTANCE).ref("archive"), archive)
    assert not any(path.exists() for path in OUTSIDE)
    with tempfile.TemporaryDirectory(prefix="direktiv-parent-") as folder:
        parent = Path(folder)
        (parent / "sibling.txt").write_bytes(b"keep me")
        (parent / "actions").mkdir()  # the temp dir is made in here: <parent>/actions/<aid>
        before = snapshot(parent)
        result = call_function(
            lambda _input: "unpacked",
            {},
            files=[{"key": "archive", "type": "tar.gz" if compressed else "tar", "as": "a/b"}],
            store=store,
            instance=INSTANCE,
            temp_root=parent / "actions",
            raise_errors=False,
        )
        assert snapshot(parent) == before
    assert not any(path.exists() for path in OUTSIDE)
    if escaping(archive):
        assert isinstance(result.error, ArchiveError)
        assert result.crash == str(result.error)
    else:  # only absolute names: they land below the target folder, or clash with a file
        assert result.ok or isinstance(result.error, ArchiveError)


# --------------------------------------------------------------------------- keys


def post_var(client: httpx.Client, aid: str, scope: str, key: str, body: bytes) -> int:
    """Return the status of ``POST /var``."""
    params = {"aid": aid, "scope": scope, "key": key}
    return client.post("/var", params=params, content=body).status_code


@pytest.fixture(scope="module")
def sidecar() -> Sidecar:
    """One in-process sidecar (WSGI, no sockets) for the key properties."""
    return Sidecar()


@pytest.fixture(scope="module")
def client(sidecar: Sidecar) -> Iterator[httpx.Client]:
    """A client that reaches ``sidecar`` in-process."""
    transport = httpx.WSGITransport(app=sidecar)
    with httpx.Client(transport=transport, base_url="http://localhost:8889") as made:
        yield made


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(key=variable_keys(), scope=scopes())
def test_valid_keys_validate_everywhere(
    make_store: Callable[[], VariableStore],
    sidecar: Sidecar,
    client: httpx.Client,
    key: str,
    scope: str,
) -> None:
    assert validate_key(key) == key
    store = make_store()
    with sidecar.action(store, instance=INSTANCE) as action:
        assert post_var(client, action.aid, scope, key, b"v") == 200
        variable = store.get(action.ref(Scope(scope), key))
        assert variable is not None
        assert variable.data == b"v"
        assert [meta.ref.key for meta in store.list(action.owner(Scope(scope)))] == [key]
    sidecar.check()
    store.close()


@settings(max_examples=80, deadline=None)
@given(key=invalid_variable_keys(), scope=scopes())
def test_invalid_keys_never_validate(
    sidecar: Sidecar, client: httpx.Client, key: str, scope: str
) -> None:
    with pytest.raises(InvalidKeyError):
        validate_key(key)
    with pytest.raises(InvalidKeyError):
        Owner.for_namespace("default").ref(key)
    store = open_store("memory://")
    with sidecar.action(store, instance=INSTANCE) as action:
        assert post_var(client, action.aid, scope, key, b"v") == 400
        assert all(not store.list(action.owner(s)) for s in Scope)
    sidecar.check()


# --------------------------------------------------------------------------- /var and inputs


@settings(max_examples=60, deadline=None)
@given(
    where=st.tuples(variable_keys(), scopes()),
    value=st.one_of(variable_values(), variable_values(json=True)),
    mime=mime_types(),
)
def test_variables_set_through_var_keep_bytes_and_mime_type(
    sidecar: Sidecar, client: httpx.Client, where: tuple[str, str], value: bytes, mime: str
) -> None:
    key, scope = where
    store = open_store("memory://")
    with sidecar.action(store, instance=INSTANCE) as action:
        params = {"aid": action.aid, "scope": scope, "key": key}
        posted = client.post("/var", params=params, content=value, headers={"Content-Type": mime})
        assert posted.status_code == 200
        variable = store.get(action.ref(Scope(scope), key))
        assert variable is not None
        assert (variable.data, variable.mime_type) == (value, mime)
        got = client.get("/var", params=params)
        assert (got.status_code, got.content) == (200, value)
        assert action.writes[-1].data == value
    sidecar.check()


def echo(environ: dict[str, object], start_response: Callable[..., object]) -> Iterable[bytes]:
    """A WSGI function that answers with the body it got."""
    stream = cast(IO[bytes], environ["wsgi.input"])
    body = stream.read(int(str(environ.get("CONTENT_LENGTH") or 0)))
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


@settings(max_examples=60, deadline=None)
@given(value=action_inputs())
def test_action_inputs_reach_the_function_as_go_json(value: object) -> None:
    result = call_function(echo, value)  # type: ignore[arg-type]
    assert result.output == gojson.dumps(value).encode()  # type: ignore[arg-type]
    assert gojson.dumps(result.value) == gojson.dumps(value)  # type: ignore[arg-type]
