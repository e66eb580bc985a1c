"""The store contract outside any backend: scopes, keys, owners, references and the registry."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from backends.memory import MemoryStore
from direktiv_sdk import (
    KEY_PATTERN,
    InvalidKeyError,
    InvalidOwnerError,
    InvalidScopeError,
    InvalidStoreURLError,
    Owner,
    Scope,
    VariableRef,
    VariableStore,
    open_store,
    register_store,
    validate_key,
)
from direktiv_sdk.errors import KEY_RULE, BackendNotInstalledError
from direktiv_sdk.store import VariableMeta
from direktiv_sdk.store import registry as registry_module
from direktiv_sdk.store.registry import DEFAULT_STORE_URL, default_store_url, known_schemes

# ---------------------------------------------------------------------- scopes


@pytest.mark.parametrize(
    ("value", "scope"),
    [
        ("instance", Scope.INSTANCE),
        ("workflow", Scope.WORKFLOW),
        (Scope.NAMESPACE, Scope.NAMESPACE),
    ],
)
def test_scope_parse(value: object, scope: Scope) -> None:
    assert Scope.parse(value) is scope


@pytest.mark.parametrize("value", ["Instance", "thread", "system", "", None, 1])
def test_scope_parse_rejects(value: object) -> None:
    with pytest.raises(InvalidScopeError) as info:
        Scope.parse(value)
    assert str(info.value) == f"invalid scope {value!r}: use one of instance, workflow, namespace"
    assert isinstance(info.value, ValueError)


# ---------------------------------------------------------------------- keys


@pytest.mark.parametrize("key", ["a", "A", "x1", "my.var", "my-var_2", "Z9", "a.b-c_d"])
def test_valid_keys(key: str) -> None:
    assert validate_key(key) == key
    assert VariableRef(Owner.for_namespace("ns"), key).key == key


@pytest.mark.parametrize(
    "key", ["1a", "_a", "a_", "a.", "-a", "a b", "ä", "", "a/b", "..", "a\n", None, 1, b"a"]
)
def test_invalid_keys(key: object) -> None:
    with pytest.raises(InvalidKeyError) as info:
        validate_key(key)
    assert (
        str(info.value)
        == f"invalid variable key {key!r}: keys must match {KEY_PATTERN} ({KEY_RULE})"
    )
    assert info.value.key == key
    assert isinstance(info.value, ValueError)
    with pytest.raises(InvalidKeyError):
        VariableRef(Owner.for_namespace("ns"), key)  # type: ignore[arg-type]


# ---------------------------------------------------------------------- owners


@pytest.mark.parametrize("namespace", ["a/b", "..", ".hidden", "", "ns\n", "name space", None])
def test_invalid_namespaces(namespace: object) -> None:
    with pytest.raises(InvalidOwnerError) as info:
        Owner.for_namespace(namespace)  # type: ignore[arg-type]
    assert str(info.value) == (
        f"invalid namespace {namespace!r}: namespace names must match {KEY_PATTERN}"
    )
    assert (info.value.field, info.value.value) == ("namespace", namespace)


@pytest.mark.parametrize(
    "path",
    [
        "/a/../b",
        "/..",
        "/./a",
        "/a/.",
        "//a",
        "/a//b",
        "/a/",
        "a.yaml",
        "/a\\b",
        "/a\x00b",
        "/a\tb",
        "/a\nb",
        "/",
        "",
        None,
    ],
)
def test_invalid_workflow_paths(path: object) -> None:
    with pytest.raises(InvalidOwnerError) as info:
        Owner.for_workflow("ns", path)  # type: ignore[arg-type]
    assert str(info.value) == (
        f"invalid workflow path {path!r}: workflow paths must be absolute and clean, like "
        "'/flows/a.yaml' (no '.', '..' or empty segments, no backslashes or control characters)"
    )


@pytest.mark.parametrize(
    "instance", ["", "a/b", "../x", ".x", "-x", "x-", "a b", "a" * 129, "ä", None]
)
def test_invalid_instance_ids(instance: object) -> None:
    with pytest.raises(InvalidOwnerError) as info:
        Owner.for_instance("ns", instance)  # type: ignore[arg-type]
    assert str(info.value) == (
        f"invalid instance id {instance!r}: instance ids are 1-128 letters, digits, '_', '-' "
        "or '.', starting and ending with a letter or digit"
    )


@pytest.mark.parametrize("instance", ["a", "0", "abc-123_x.y", "a" * 128])
def test_valid_instance_ids(instance: str) -> None:
    assert Owner.for_instance("ns", instance).segments == ("ns", "instance", instance)


def test_fields_of_other_scopes_are_rejected() -> None:
    with pytest.raises(InvalidOwnerError) as info:
        Owner(Scope.NAMESPACE, "ns", workflow="/a.yaml")
    assert str(info.value) == (
        "invalid workflow path '/a.yaml': only workflow scope takes one, not namespace"
    )
    with pytest.raises(InvalidOwnerError) as info:
        Owner(Scope.WORKFLOW, "ns", workflow="/a.yaml", instance="i")
    assert str(info.value) == "invalid instance id 'i': only instance scope takes one, not workflow"
    with pytest.raises(InvalidScopeError):
        Owner("thread", "ns")  # type: ignore[arg-type]


def test_owner_parses_scope_strings() -> None:
    assert Owner("namespace", "ns") == Owner.for_namespace("ns")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("owner", "segments"),
    [
        (Owner.for_namespace("ns"), ("ns", "namespace")),
        (Owner.for_workflow("ns", "/flows/a b.yaml"), ("ns", "workflow", "%2Fflows%2Fa%20b.yaml")),
        (Owner.for_workflow("ns", "/x%2Fy"), ("ns", "workflow", "%2Fx%252Fy")),
        (Owner.for_instance("ns", "i-1"), ("ns", "instance", "i-1")),
    ],
    ids=str,
)
def test_segments_round_trip(owner: Owner, segments: tuple[str, ...]) -> None:
    assert owner.segments == segments
    assert Owner.from_segments(segments) == owner


def test_from_segments_rejects_other_folders() -> None:
    with pytest.raises(InvalidOwnerError) as info:
        Owner.from_segments(("ns", "thread", "x"))
    assert str(info.value) == "invalid owner path 'ns/thread/x': not a variable folder"


def test_refs_and_names() -> None:
    ref = Owner.for_workflow("ns", "/a.yaml").ref("count")
    assert ref.scope is Scope.WORKFLOW
    assert str(ref) == "workflow ns:/a.yaml variable 'count'"
    assert str(Owner.for_instance("ns", "i1").ref("x")) == "instance ns:i1 variable 'x'"
    assert str(Owner.for_namespace("ns").ref("x")) == "namespace ns variable 'x'"
    with pytest.raises(TypeError, match=r"^owner must be an Owner, not str$"):
        VariableRef("ns", "x")  # type: ignore[arg-type]


def test_meta_listing_form() -> None:
    when = datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    meta = VariableMeta(Owner.for_namespace("ns").ref("x"), 3, "text/plain", when, when, "v1")
    assert meta.to_json() == {
        "name": "x",
        "size": 3,
        "mimeType": "text/plain",
        "createdAt": "2026-01-02T03:04:05.000006Z",
        "updatedAt": "2026-01-02T03:04:05.000006Z",
    }


# ---------------------------------------------------------------------- registry


@pytest.fixture
def isolated_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Give the test its own copy of the scheme registry, so registrations do not leak."""
    monkeypatch.setattr(registry_module, "_REGISTRY", dict(registry_module._REGISTRY))


def test_unknown_scheme_lists_known_ones() -> None:
    with pytest.raises(InvalidStoreURLError) as info:
        open_store("ftp://host/x")
    assert str(info.value) == (
        f"cannot open store 'ftp://host/x': unknown scheme 'ftp'; "
        f"known schemes: {', '.join(known_schemes())}"
    )
    assert {"file", "memory", "s3"} <= set(known_schemes())


@pytest.mark.parametrize("url", ["just/a/path", "://x", ""])
def test_url_without_scheme(url: str) -> None:
    with pytest.raises(InvalidStoreURLError) as info:
        open_store(url)
    schemes = ", ".join(s + "://" for s in known_schemes())
    assert str(info.value) == (
        f"cannot open store {url!r}: a store URL needs a scheme, like {schemes}"
    )


@pytest.mark.parametrize("url", ["file:/tmp/x", "s3:bucket/prefix", "memory:"])
def test_url_with_a_scheme_but_no_slashes(url: str) -> None:
    with pytest.raises(InvalidStoreURLError) as info:
        open_store(url)
    schemes = ", ".join(s + "://" for s in known_schemes())
    assert (
        str(info.value) == f"cannot open store {url!r}: write the scheme with '//', like {schemes}"
    )


def test_url_can_be_passed_by_keyword(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIREKTIV_STORE_URL", "memory://by-keyword-default")
    assert open_store(url="memory://by-keyword").url == "memory://by-keyword"
    assert open_store(url=None).url == "memory://by-keyword-default"


def test_url_must_be_a_string() -> None:
    with pytest.raises(TypeError, match=r"^store URL must be a str, not PosixPath$"):
        open_store(Path("/tmp"))  # type: ignore[arg-type]


def test_scheme_is_case_insensitive() -> None:
    assert type(open_store("MEMORY://")).__name__ == "MemoryStore"


def test_default_url_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DIREKTIV_STORE_URL", "memory://from-env")
    assert default_store_url() == "memory://from-env"
    assert open_store().url == "memory://from-env"
    monkeypatch.setenv("DIREKTIV_STORE_URL", "")
    assert default_store_url() == DEFAULT_STORE_URL == "file://./.direktiv"
    monkeypatch.delenv("DIREKTIV_STORE_URL")
    monkeypatch.chdir(tmp_path)
    store = open_store()
    assert store.url == "file://./.direktiv"
    store.set(Owner.for_namespace("ns").ref("v"), b"x")
    assert (tmp_path / ".direktiv" / "ns" / "namespace" / "v").read_bytes() == b"x"


class _EchoStore:
    """A registered factory that hands back a memory store and remembers its URL."""

    opened: list[tuple[str, dict[str, object]]] = []

    @classmethod
    def from_url(cls, url: str, /, **options: object) -> VariableStore:
        cls.opened.append((url, options))
        return MemoryStore()


@pytest.mark.usefixtures("isolated_registry")
def test_register_store_with_a_class() -> None:
    register_store("echo", _EchoStore)
    open_store("echo://anything", flag=True)
    assert _EchoStore.opened[-1] == ("echo://anything", {"flag": True})
    assert "echo" in known_schemes()


@pytest.mark.usefixtures("isolated_registry")
def test_register_store_rules() -> None:
    with pytest.raises(
        ValueError, match=r"^scheme 'memory' is already registered; pass replace=True$"
    ):
        register_store("memory", _EchoStore)
    register_store("memory", _EchoStore, replace=True)
    open_store("memory://x")
    assert _EchoStore.opened[-1] == ("memory://x", {})
    for bad in ("Echo", "my-store", "1x", ""):
        with pytest.raises(ValueError, match=r"^scheme must be a lower-case identifier, not "):
            register_store(bad, _EchoStore)


@pytest.mark.usefixtures("isolated_registry")
def test_missing_backend_names_the_install_hint() -> None:
    register_store("nosuch", "no_such_backend_module:Store", hint="pip install 'nosuch-extra'")
    with pytest.raises(BackendNotInstalledError) as info:
        open_store("nosuch://bucket")
    assert str(info.value) == (
        "the 'nosuch' store backend is not installed: pip install 'nosuch-extra' "
        "(No module named 'no_such_backend_module')"
    )
    assert isinstance(info.value, ImportError)
    assert isinstance(info.value.__cause__, ModuleNotFoundError)


@pytest.mark.usefixtures("isolated_registry")
def test_missing_backend_without_hint() -> None:
    register_store("nohint", "no_such_backend_module:Store")
    with pytest.raises(BackendNotInstalledError) as info:
        open_store("nohint://x")
    assert str(info.value) == (
        "the 'nohint' store backend is not installed: install the package that provides "
        "'no_such_backend_module' (No module named 'no_such_backend_module')"
    )


@pytest.fixture
def third_party_distribution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Install a real (if tiny) distribution declaring a ``direktiv_sdk.stores`` entry point."""
    (tmp_path / "tp_store_plugin.py").write_text(
        "from direktiv_sdk import open_store\n\n"
        "class TpStore:\n"
        "    @classmethod\n"
        "    def from_url(cls, url, **options):\n"
        "        store = open_store('memory://')\n"
        "        store.url = url\n"
        "        return store\n"
    )
    dist = tmp_path / "tp_store_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: tp-store-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[direktiv_sdk.stores]\ntpstore = tp_store_plugin:TpStore\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return "tpstore"


@pytest.mark.usefixtures("isolated_registry")
def test_entry_point_backend(third_party_distribution: str) -> None:
    assert third_party_distribution not in registry_module._REGISTRY
    store = open_store(f"{third_party_distribution}://x")
    assert store.url == "tpstore://x"
    assert third_party_distribution in known_schemes()


# ---------------------------------------------------------------------- docs


def _python_blocks(doc: Path) -> list[str]:
    text = doc.read_text()
    blocks = [b.split("```", 1)[0] for b in text.split("```python\n")[1:]]
    return [b for b in blocks if "import" in b]  # the self-contained examples


def test_docs_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = _python_blocks(Path(__file__).parent.parent / "docs" / "stores.md")
    assert len(blocks) == 2, "docs/stores.md lost its examples"
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DIREKTIV_STORE_URL", raising=False)
    printed: list[object] = []
    namespace: dict[str, object] = {"print": printed.append}
    for block in blocks:
        exec(compile(block, "docs/stores.md", "exec"), namespace)
    assert printed == [b"42"]
    assert (
        tmp_path / ".direktiv" / "default" / "workflow" / "%2Fflows%2Fcounter.yaml" / "x"
    ).read_bytes() == b"42"
    assert issubclass(namespace["TestMemoryStore"], namespace["VariableStoreTests"])  # type: ignore[arg-type]
