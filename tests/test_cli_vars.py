"""``direktiv-sdk vars``: in-process through ``cli.main`` and once through the installed script."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from direktiv_sdk import KEY_PATTERN, Owner, open_store
from direktiv_sdk.cli import main
from direktiv_sdk.errors import KEY_RULE


@pytest.fixture
def url(tmp_path: Path) -> str:
    """Return the URL of an existing, empty store (read-only commands create none)."""
    open_store(f"file://{tmp_path}/store").close()
    return f"file://{tmp_path}/store"


def _stdin(monkeypatch: pytest.MonkeyPatch, data: bytes) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))


def test_set_from_file_then_get(
    url: str, tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    value = bytes(range(256)) * 100
    (tmp_path / "value.bin").write_bytes(value)
    args = ["--store", url, "--namespace", "ns", "--workflow", "/flows/a.yaml"]
    assert main(["vars", "set", "blob", "--file", str(tmp_path / "value.bin"), *args]) == 0
    assert main(["vars", "get", "blob", *args]) == 0
    out, err = capsysbinary.readouterr()
    assert out == value
    assert err == b""
    stored = open_store(url).get(Owner.for_workflow("ns", "/flows/a.yaml").ref("blob"))
    assert stored is not None
    assert stored.data == value


def test_set_from_stdin_with_mime_type(
    url: str, monkeypatch: pytest.MonkeyPatch, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    _stdin(monkeypatch, b'{"count": 1}')
    assert main(["vars", "set", "cfg", "--store", url, "--mime-type", "application/json"]) == 0
    got = open_store(url).get(Owner.for_namespace("default").ref("cfg"))
    assert got is not None
    assert (got.data, got.mime_type) == (b'{"count": 1}', "application/json")
    assert capsysbinary.readouterr() == (b"", b"")


def test_scopes_are_kept_apart(
    url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for scope_args, value in [
        ([], b"ns"),
        (["--workflow", "/a.yaml"], b"wf"),
        (["--instance", "i-1"], b"inst"),
    ]:
        _stdin(monkeypatch, value)
        assert main(["vars", "set", "x", "--store", url, *scope_args]) == 0
    store = open_store(url)
    assert store.get(Owner.for_namespace("default").ref("x")).data == b"ns"  # type: ignore[union-attr]
    assert store.get(Owner.for_workflow("default", "/a.yaml").ref("x")).data == b"wf"  # type: ignore[union-attr]
    assert store.get(Owner.for_instance("default", "i-1").ref("x")).data == b"inst"  # type: ignore[union-attr]
    assert main(["vars", "list", "--store", url, "--instance", "i-1"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert json.loads(line)["name"] == "x"


def test_list_prints_json_lines_oldest_first(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    store = open_store(url)
    owner = Owner.for_namespace("ns")
    metas = [
        store.set(owner.ref("zeta"), b"1", mime_type="text/plain"),
        store.set(owner.ref("alpha"), b"22"),
    ]
    assert main(["vars", "list", "--store", url, "--namespace", "ns"]) == 0
    out = capsys.readouterr().out
    assert out == "".join(json.dumps(m.to_json(), separators=(",", ":")) + "\n" for m in metas)
    assert json.loads(out.splitlines()[0]) == {
        "name": "zeta",
        "size": 1,
        "mimeType": "text/plain",
        "createdAt": metas[0].to_json()["createdAt"],
        "updatedAt": metas[0].to_json()["updatedAt"],
    }
    assert main(["vars", "list", "--store", url, "--namespace", "empty"]) == 0
    assert capsys.readouterr().out == ""


def test_get_missing_exits_1(url: str, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    assert main(["vars", "get", "nope", "--store", url]) == 1
    out, err = capsysbinary.readouterr()
    assert out == b""
    assert err == b"direktiv-sdk: error: namespace default variable 'nope' does not exist\n"


def test_delete(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    open_store(url).set(Owner.for_instance("ns", "i1").ref("tmp"), b"x")
    args = ["--store", url, "--namespace", "ns", "--instance", "i1"]
    assert main(["vars", "delete", "tmp", *args]) == 0
    assert capsys.readouterr() == ("", "")
    assert main(["vars", "delete", "tmp", *args]) == 1
    assert capsys.readouterr().err == (
        "direktiv-sdk: error: instance ns:i1 variable 'tmp' does not exist\n"
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["vars", "get", "1bad"],
            f"invalid variable key '1bad': keys must match {KEY_PATTERN} ({KEY_RULE})",
        ),
        (
            ["vars", "list", "--workflow", "/a/../b"],
            "invalid workflow path '/a/../b': workflow paths must be absolute and clean, like "
            "'/flows/a.yaml' (no '.', '..' or empty segments, no backslashes or control "
            "characters)",
        ),
        (
            ["vars", "list", "--namespace", "a/b"],
            f"invalid namespace 'a/b': namespace names must match {KEY_PATTERN}",
        ),
        (
            ["vars", "delete", "x", "--instance", "../x"],
            "invalid instance id '../x': instance ids are 1-128 letters, digits, '_', '-' or "
            "'.', starting and ending with a letter or digit",
        ),
    ],
)
def test_bad_arguments_exit_2(
    url: str, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*argv, "--store", url]) == 2
    assert capsys.readouterr().err == f"direktiv-sdk: error: {message}\n"


def test_bad_store_url_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["vars", "list", "--store", "ftp://x"]) == 2
    assert capsys.readouterr().err.startswith(
        "direktiv-sdk: error: cannot open store 'ftp://x': unknown scheme 'ftp'; known schemes: "
    )


def test_unreadable_file_exits_2(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing.bin"
    assert main(["vars", "set", "x", "--store", url, "--file", str(missing)]) == 2
    assert capsys.readouterr().err == (
        f"direktiv-sdk: error: cannot read {str(missing)!r}: No such file or directory\n"
    )
    assert open_store(url).list(Owner.for_namespace("default")) == []


def test_workflow_and_instance_are_exclusive(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["vars", "list", "--workflow", "/a.yaml", "--instance", "i1"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "argument --instance/--instance-id: not allowed with argument --workflow/--path" in err


def test_default_store_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    monkeypatch.setenv("DIREKTIV_STORE_URL", f"file://{tmp_path}/env-store")
    _stdin(monkeypatch, b"from env")
    assert main(["vars", "set", "v"]) == 0
    assert (tmp_path / "env-store" / "default" / "namespace" / "v").read_bytes() == b"from env"
    assert main(["vars", "get", "v"]) == 0
    assert capsysbinary.readouterr().out == b"from env"


def test_installed_script_streams_both_ways(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("direktiv-sdk")
    assert script.exists(), f"{script} is missing: install the project (make install)"
    value = os.urandom(3 << 20)  # several 1 MiB chunks, every byte value
    env = {**os.environ, "DIREKTIV_STORE_URL": f"file://{tmp_path}/store"}
    put = subprocess.run(
        [script, "vars", "set", "blob", "--workflow", "/f.yaml", "--mime-type", "a/b"],
        input=value,
        capture_output=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert (put.returncode, put.stderr) == (0, b"")
    get = subprocess.run(
        [script, "vars", "get", "blob", "--workflow", "/f.yaml"],
        capture_output=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert (get.returncode, get.stderr) == (0, b"")
    assert get.stdout == value
    listing = subprocess.run(
        [script, "vars", "list", "--workflow", "/f.yaml"],
        capture_output=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert listing.returncode == 0
    (entry,) = [json.loads(line) for line in listing.stdout.splitlines()]
    assert (entry["name"], entry["size"], entry["mimeType"]) == ("blob", 3 << 20, "a/b")
    missing = subprocess.run(
        [script, "vars", "get", "nope"], capture_output=True, env=env, timeout=120, check=False
    )
    assert missing.returncode == 1
    assert (
        missing.stderr == b"direktiv-sdk: error: namespace default variable 'nope' does not exist\n"
    )


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
def test_a_failing_stdout_is_an_error_line_not_a_traceback(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("direktiv-sdk")
    env = {**os.environ, "DIREKTIV_STORE_URL": f"file://{tmp_path}/store"}
    open_store(env["DIREKTIV_STORE_URL"]).set(Owner.for_namespace("default").ref("v"), b"x" * 100)
    with Path("/dev/full").open("wb") as full:
        get = subprocess.run(
            [script, "vars", "get", "v"],
            stdout=full,
            stderr=subprocess.PIPE,
            env=env,
            timeout=120,
            check=False,
        )
    assert (get.returncode, get.stderr) == (1, b"direktiv-sdk: error: No space left on device\n")
