"""The Hypothesis strategies: eager option checks, and what each one draws."""

from __future__ import annotations

import base64
import gzip
import io
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument, NoSuchExample

from direktiv_sdk import open_store
from direktiv_sdk.engine.functions import FunctionFile
from direktiv_sdk.expr import gojson
from direktiv_sdk.store import Owner
from harness.testing.strategies import (
    HOSTILE_KINDS,
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

FEW = settings(max_examples=40, deadline=None)
SEARCH = settings(
    max_examples=500, deadline=None, database=None, phases=[Phase.generate, Phase.shrink]
)
"""For :func:`hypothesis.find`: how hard to look for a kind of example (no explain phase,
whose report of a large archive would warn)."""

TYPES = "['', 'base64', 'plain', 'tar', 'tar.gz']"
SCOPES = "['file', 'instance', 'namespace', 'workflow']"


# --------------------------------------------------------------------------- option checks


def untyped(value: object) -> Any:
    """Return ``value`` unchanged, hidden from mypy: the checks below get wrong types on purpose."""
    return value


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: variable_keys(min_size=0), "invalid min_size 0: pass an int of at least 1"),
        (lambda: variable_keys(min_size=True), "invalid min_size True: pass an int of at least 1"),
        (
            lambda: variable_keys(min_size=5, max_size=3),
            "invalid max_size 3: pass an int of at least 5",
        ),
        (
            lambda: variable_keys(max_size=untyped("9")),
            "invalid max_size '9': pass an int of at least 1",
        ),
        (
            lambda: invalid_variable_keys(max_size=1),
            "invalid max_size 1: pass an int of at least 2",
        ),
        (
            lambda: scopes(include_file=untyped("yes")),
            "invalid include_file 'yes': pass True or False",
        ),
        (lambda: mime_types(allow_empty=untyped(1)), "invalid allow_empty 1: pass True or False"),
        (lambda: variable_values(min_size=-1), "invalid min_size -1: pass an int of at least 0"),
        (
            lambda: variable_values(min_size=10, max_size=5),
            "invalid max_size 5: pass an int of at least 10",
        ),
        (
            lambda: variable_values(json=True, max_size=10),
            "invalid size bounds (0, 10) with json=True: they limit raw values only, so drop "
            "them or pass json=False",
        ),
        (lambda: variable_values(json=untyped("yes")), "invalid json 'yes': pass True or False"),
        (lambda: action_inputs(max_leaves=0), "invalid max_leaves 0: pass an int of at least 1"),
        (
            lambda: action_inputs(objects_only=untyped(None)),
            "invalid objects_only None: pass True or False",
        ),
        (lambda: tar_archives(gzip=untyped("yes")), "invalid gzip 'yes': pass True or False"),
        (lambda: tar_archives(hostile=untyped(1)), "invalid hostile 1: pass True or False"),
        (lambda: file_specs(min_size=-1), "invalid min_size -1: pass an int of at least 0"),
        (
            lambda: file_specs(min_size=3, max_size=2),
            "invalid max_size 2: pass an int of at least 3",
        ),
        (
            lambda: file_specs(types=("zip",)),
            f"invalid types ('zip',): pass a non-empty collection of {TYPES}",
        ),
        (
            lambda: file_specs(types="tar"),
            f"invalid types 'tar': pass a non-empty collection of {TYPES}",
        ),
        (
            lambda: file_specs(scopes=()),
            f"invalid scopes (): pass a non-empty collection of {SCOPES}",
        ),
        (
            lambda: file_specs(scopes=["thread"]),
            f"invalid scopes ['thread']: pass a non-empty collection of {SCOPES}",
        ),
        (
            lambda: file_specs(permissions=untyped("0755")),
            "invalid permissions '0755': pass True or False",
        ),
    ],
)
def test_options_are_checked_when_the_strategy_is_made(
    make: Callable[[], object], message: str
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        make()
    assert str(caught.value) == message


# --------------------------------------------------------------------------- keys, scopes, mime


@FEW
@given(variable_keys(min_size=3, max_size=5))
def test_variable_keys_respect_their_sizes(key: str) -> None:
    assert 3 <= len(key) <= 5


@FEW
@given(variable_keys(max_size=1))
def test_one_character_keys_are_letters(key: str) -> None:
    assert len(key) == 1
    assert key.isascii()
    assert key.isalpha()


@FEW
@given(invalid_variable_keys(max_size=8))
def test_invalid_keys_respect_their_size(key: str) -> None:
    assert len(key) <= 8


def test_invalid_keys_include_the_trailing_newline_trap() -> None:
    found = find(
        invalid_variable_keys(), lambda k: len(k) > 1 and k.endswith("\n"), settings=SEARCH
    )
    assert found[:-1].isalnum()


def test_invalid_keys_include_non_ascii_letters() -> None:
    assert not find(
        invalid_variable_keys(),
        lambda k: any(c.isalpha() and not c.isascii() for c in k),
        settings=SEARCH,
    ).isascii()


@FEW
@given(scopes())
def test_scopes_are_the_three_variable_scopes(scope: str) -> None:
    assert scope in ("instance", "workflow", "namespace")


def test_scopes_can_include_file() -> None:
    assert find(scopes(include_file=True), lambda s: s == "file", settings=SEARCH) == "file"


@FEW
@given(mime_types())
def test_mime_types_fit_a_content_type_header(mime: str) -> None:
    kind, _, subtype = mime.partition("/")
    assert kind
    assert subtype
    assert mime.isascii()
    assert mime.isprintable()


def test_mime_types_can_be_empty_on_request() -> None:
    assert find(mime_types(allow_empty=True), lambda m: m == "", settings=SEARCH) == ""


# --------------------------------------------------------------------------- values and inputs


@FEW
@given(variable_values(min_size=5, max_size=9))
def test_raw_values_respect_their_sizes(value: bytes) -> None:
    assert isinstance(value, bytes)
    assert 5 <= len(value) <= 9


@FEW
@given(variable_values(json=True))
def test_json_values_are_canonical_go_json(value: bytes) -> None:
    assert gojson.dumps(gojson.loads(value)).encode() == value


@FEW
@given(action_inputs())
def test_action_inputs_survive_go_json(value: object) -> None:
    encoded = gojson.dumps(value)  # type: ignore[arg-type]
    assert gojson.dumps(gojson.loads(encoded)) == encoded


@FEW
@given(action_inputs(objects_only=True, max_leaves=3))
def test_action_inputs_can_be_objects_only(value: object) -> None:
    assert isinstance(value, dict)


def test_action_inputs_stay_within_float64_integers() -> None:
    def big(value: object) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**53

    with pytest.raises(NoSuchExample):
        find(action_inputs(), big, settings=SEARCH)


# --------------------------------------------------------------------------- archives


def members(archive: bytes) -> list[tarfile.TarInfo]:
    """Return the members of a tar or tar.gz archive."""
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        return tar.getmembers()


def kinds(archive: bytes) -> set[str]:
    """Return the hostile kinds (of :data:`HOSTILE_KINDS`) in ``archive``."""
    found = set()
    for member in members(archive):
        parts = member.name.split("/")
        if ".." in parts:
            found.add("dotdot")
        elif member.name.startswith("/") and HOSTILE_NAME in member.name:
            found.add("absolute")
        if member.issym():
            found.add("symlink")
        elif member.islnk():
            found.add("hardlink")
        elif member.ischr() or member.isblk():
            found.add("device")
        elif member.isfifo():
            found.add("fifo")
    return found


@FEW
@given(tar_archives())
def test_tar_archives_hold_only_safe_files_and_folders(archive: bytes) -> None:
    assert archive[:2] != b"\x1f\x8b"
    for member in members(archive):
        assert member.isreg() or member.isdir()
        assert ".." not in member.name.split("/")
        assert HOSTILE_NAME not in member.name


@FEW
@given(tar_archives(gzip=True))
def test_tar_gz_archives_are_gzip(archive: bytes) -> None:
    assert archive[:2] == b"\x1f\x8b"
    assert all(member.isreg() or member.isdir() for member in members(gzip.decompress(archive)))


@FEW
@given(tar_archives(hostile=True))
def test_hostile_archives_always_hold_a_hostile_member(archive: bytes) -> None:
    assert kinds(archive)


@pytest.mark.parametrize("kind", HOSTILE_KINDS)
def test_hostile_archives_hold_every_kind(kind: str) -> None:
    find(tar_archives(hostile=True), lambda archive: kind in kinds(archive), settings=SEARCH)


def test_hostile_archives_write_through_their_links() -> None:
    def through_link(archive: bytes) -> bool:
        names = [m.name for m in members(archive)]
        return f"link/{HOSTILE_NAME}" in names

    find(tar_archives(hostile=True), through_link, settings=SEARCH)


# --------------------------------------------------------------------------- files: entries


def _clash(a: str, b: str) -> bool:
    return a == b or a.startswith(b + "/") or b.startswith(a + "/")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(file_specs(scopes=("instance", "workflow", "namespace", "file")))
def test_file_specs_are_consistent(specs: tuple[FileSpec, ...]) -> None:
    assert len(specs) <= 4
    targets = [spec.target for spec in specs]
    for i, target in enumerate(targets):
        assert target.split("/")[0] != "out"
        assert not any(_clash(target, other) for other in targets[i + 1 :])
    sources = [(spec.file.scope, spec.file.key.lstrip("/")) for spec in specs]
    assert len(set(sources)) == len(sources)
    for spec in specs:
        file = spec.file
        assert spec.is_directory == (file.type in ("tar", "tar.gz"))
        if spec.is_directory:
            assert spec.contents is None
            assert spec.tree is not None
            if spec.data is None:
                assert spec.tree == {}
        elif file.type == "base64":
            assert base64.b64decode(spec.data or b"") == spec.contents
        else:
            assert (spec.data or b"") == spec.contents
        if file.permissions is not None:
            assert file.permissions & 0o400
        entry = spec.entry()
        assert entry["key"] == file.key
        assert entry["scope"] == file.scope
        assert entry.get("as", "") == file.as_name
        assert entry.get("type", "") == file.type


@settings(max_examples=30, deadline=None)
@given(file_specs(min_size=2, max_size=2, types=("tar",), scopes=("workflow",)))
def test_file_specs_honour_sizes_types_and_scopes(specs: tuple[FileSpec, ...]) -> None:
    assert len(specs) == 2
    assert {spec.file.type for spec in specs} == {"tar"}
    assert {spec.file.scope for spec in specs} == {"workflow"}


def test_file_specs_sometimes_read_missing_variables() -> None:
    find(file_specs(min_size=1), lambda specs: any(s.data is None for s in specs), settings=SEARCH)


def test_file_specs_can_go_without_permissions() -> None:
    @settings(max_examples=30, deadline=None)
    @given(file_specs(permissions=False))
    def check(specs: tuple[FileSpec, ...]) -> None:
        assert all(spec.file.permissions is None for spec in specs)

    check()


@settings(max_examples=30, deadline=None)
@given(file_specs(min_size=1, scopes=("instance", "workflow", "namespace", "file")))
def test_seed_puts_the_data_where_the_entry_reads_it(specs: tuple[FileSpec, ...]) -> None:
    store = open_store("memory://")
    owners = {
        "instance": Owner.for_instance("ns", "i1"),
        "workflow": Owner.for_workflow("ns", "/a.yaml"),
        "namespace": Owner.for_namespace("ns"),
    }
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        for spec in specs:
            spec.seed(store, namespace="ns", workflow="/a.yaml", instance="i1", root=root)
        for spec in specs:
            if spec.file.scope == "file":
                path = root / spec.file.key.lstrip("/")
                assert (
                    path.read_bytes() == spec.data if spec.data is not None else not path.exists()
                )
            else:
                variable = store.get(owners[spec.file.scope].ref(spec.file.key))
                assert (variable and variable.data) == spec.data


def test_seeding_a_file_scope_entry_needs_a_root() -> None:
    specs = find(
        file_specs(min_size=1, scopes=("file",)),
        lambda specs: specs[0].data is not None,
        settings=SEARCH,
    )
    with pytest.raises(ValueError, match="reads scope 'file': pass root=, the namespace folder"):
        specs[0].seed(open_store("memory://"), instance="i1")


def test_entries_are_written_as_in_a_flow() -> None:
    spec = FileSpec(
        file=FunctionFile(
            key="k", scope="instance", as_name="a/b", type="plain", permissions=0o755
        ),
        data=b"x",
        contents=b"x",
        tree=None,
    )
    assert spec.entry() == {
        "key": "k",
        "scope": "instance",
        "as": "a/b",
        "type": "plain",
        "permissions": "0755",
    }
    assert spec.target == "a/b"
    assert not spec.is_directory


@FEW
@given(st.data())
def test_file_scope_targets_drop_the_leading_slash(data: st.DataObject) -> None:
    specs = data.draw(file_specs(min_size=1, max_size=1, scopes=("file",)))
    spec = specs[0]
    if not spec.file.as_name:
        assert spec.target == spec.file.key.lstrip("/")
