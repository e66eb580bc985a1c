"""The CLI without surprises: read-only commands create nothing, store options in the URL,
clear URL errors, one vocabulary, a terminal gets tables and hints (the installed command)."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from direktiv_sdk import open_store
from direktiv_sdk.errors import InvalidMimeTypeError, InvalidStoreURLError
from direktiv_sdk.store import MAX_MIME_TYPE, Owner

CLI = str(Path(sys.executable).with_name("direktiv-sdk"))
ROOT = Path(__file__).resolve().parent.parent
COUNTER = str(ROOT / "examples" / "counter.yaml")


def _cli(
    *args: str, cwd: Path | None = None, stdin: bytes = b""
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [CLI, *args], cwd=cwd, input=stdin, capture_output=True, timeout=60, check=False
    )


def _on_terminal(args: list[str], cwd: Path, *, stdin_tty: bool = False) -> tuple[int, str]:
    """Run the command with stdout (or stdin) on a pseudo-terminal; return (code, all output)."""
    leader, follower = pty.openpty()
    try:
        process = subprocess.Popen(
            [CLI, *args],
            cwd=cwd,
            stdin=follower if stdin_tty else subprocess.DEVNULL,
            stdout=subprocess.PIPE if stdin_tty else follower,
            stderr=follower,
        )
        os.close(follower)
        if stdin_tty:
            os.write(leader, b"typed\n\x04")  # a line, then one Ctrl-D
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the other side is closed
                break
            if not chunk:
                break
            chunks.append(chunk)
        code = process.wait(timeout=60)
        if process.stdout is not None:
            chunks.append(process.stdout.read())
            process.stdout.close()
        return code, b"".join(chunks).decode()
    finally:
        os.close(leader)


# ---------------------------------------------------------------------- read-only commands


@pytest.mark.parametrize("action", [["list"], ["get", "x"], ["delete", "x"], ["owners"]])
def test_read_only_commands_create_nothing(tmp_path: Path, action: list[str]) -> None:
    missing = tmp_path / "nonexistent" / "dir"
    done = _cli("vars", *action, "--store", f"file://{missing}")
    assert done.returncode == 1
    assert done.stderr.decode() == (
        f"direktiv-sdk: error: no store at {missing} (create it with `vars set` or pass --create)\n"
    )
    assert not (tmp_path / "nonexistent").exists()


def test_create_and_set_make_the_store(tmp_path: Path) -> None:
    done = _cli("vars", "list", "--store", f"file://{tmp_path}/a", "--create")
    assert (done.returncode, done.stdout) == (0, b"")
    assert (tmp_path / "a" / ".direktiv-store.json").is_file()
    assert _cli("vars", "set", "k", "--store", f"file://{tmp_path}/b", stdin=b"1").returncode == 0
    assert _cli("vars", "get", "k", "--store", f"file://{tmp_path}/b").stdout == b"1"


# ---------------------------------------------------------------------- store URLs


def test_store_options_in_the_url_query(tmp_path: Path) -> None:
    url = "file://./sc?metadata=sidecar&fsync=true"
    assert _cli("vars", "set", "k", "--store", url, cwd=tmp_path, stdin=b"v").returncode == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sc"]  # no 'sc?metadata=sidecar'
    marker = json.loads((tmp_path / "sc" / ".direktiv-store.json").read_text())
    assert marker["metadata"] == "sidecar"
    assert _cli("vars", "get", "k", "--store", url, cwd=tmp_path).stdout == b"v"


def test_unknown_url_options_list_the_known_ones(tmp_path: Path) -> None:
    done = _cli("vars", "list", "--store", "file://./x?colour=red", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.decode() == (
        "direktiv-sdk: error: cannot open store 'file://./x?colour=red': unknown option "
        "'colour'; known options: create, fsync, metadata\n"
    )
    with pytest.raises(InvalidStoreURLError, match=r"known options: anon, endpoint_url, region$"):
        open_store("s3://bucket/p?key=AKIA")
    with pytest.raises(InvalidStoreURLError, match="option 'fsync' must be true or false"):
        open_store(f"file://{tmp_path}/y?fsync=maybe")
    with pytest.raises(InvalidStoreURLError, match="option 'fsync' is in the URL and given"):
        open_store(f"file://{tmp_path}/y?fsync=true", fsync=False)


@pytest.mark.s3
def test_s3_endpoint_and_region_in_the_url(
    s3_endpoint: str, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL")  # only the URL names the server now
    url = f"s3://{s3_bucket}/p?endpoint_url={s3_endpoint}&region=us-east-1"
    assert _cli("vars", "set", "k", "--store", url, stdin=b"42").returncode == 0
    assert _cli("vars", "get", "k", "--store", url).stdout == b"42"
    store = open_store(f"s3://{s3_bucket}/p", endpoint_url=s3_endpoint)
    with store:
        assert store.get(Owner.for_namespace("default").ref("k")).data == b"42"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("file:///srv/x\x00y", "a path cannot contain a NUL character; remove it"),
        (
            "file://user:pw@host/srv/x",
            "a file URL has no user or password: write file:///path or file://./path",
        ),
        ("file:///x#f", "a store URL has no fragment: remove the '#' part"),
        ("memory://a#b", "a store URL has no fragment: remove the '#' part"),
    ],
)
def test_bad_file_urls_are_clear_errors(url: str, reason: str) -> None:
    with pytest.raises(InvalidStoreURLError) as caught:
        open_store(url)
    assert str(caught.value) == f"cannot open store {url!r}: {reason}"


def test_file_localhost_is_the_local_root(tmp_path: Path) -> None:
    with open_store(f"file://localhost{tmp_path}/s") as store:
        assert store.root == f"{tmp_path}/s"  # type: ignore[attr-defined]


def test_a_huge_mime_type_is_a_clear_error(tmp_path: Path) -> None:
    huge = "text/" + "x" * 100_000
    done = _cli("vars", "set", "k", "--store", f"file://{tmp_path}/s", "--mime-type", huge)
    assert done.returncode == 2
    assert done.stderr.decode().startswith("direktiv-sdk: error: mime type 'text/xxx")
    assert f"is {len(huge)} characters long; use at most {MAX_MIME_TYPE}" in done.stderr.decode()
    with open_store("memory://") as store, pytest.raises(InvalidMimeTypeError):
        store.set(Owner.for_namespace("n").ref("k"), b"", mime_type=huge)


# ---------------------------------------------------------------------- terminal or pipe


def test_vars_list_is_a_table_at_a_terminal_and_json_lines_in_a_pipe(tmp_path: Path) -> None:
    url = f"file://{tmp_path}/s"
    _cli("vars", "set", "greeting", "--store", url, "--mime-type", "text/plain", stdin=b"hi")
    piped = _cli("vars", "list", "--store", url)
    (line,) = piped.stdout.decode().splitlines()
    assert json.loads(line)["name"] == "greeting"
    code, shown = _on_terminal(["vars", "list", "--store", url], tmp_path)
    assert code == 0
    header, row = shown.splitlines()
    assert header.split() == ["NAME", "SIZE", "MIME", "TYPE", "UPDATED"]
    assert row.split()[:4] == ["greeting", "2", "B", "text/plain"]
    code, forced = _on_terminal(["vars", "list", "--store", url, "--json"], tmp_path)
    assert json.loads(forced.strip())["mimeType"] == "text/plain"


def test_vars_set_at_a_terminal_says_it_reads_stdin(tmp_path: Path) -> None:
    url = f"file://{tmp_path}/s"
    code, shown = _on_terminal(["vars", "set", "k", "--store", url], tmp_path, stdin_tty=True)
    assert code == 0
    assert "reading the value of 'k' from stdin; end it with Ctrl-D (or pass --file PATH)" in shown
    assert _cli("vars", "get", "k", "--store", url).stdout == b"typed\n"
    piped = _cli("vars", "set", "k", "--store", url, stdin=b"quiet")
    assert piped.stderr == b""


# ---------------------------------------------------------------------- one vocabulary


def test_run_and_vars_speak_the_same_words(tmp_path: Path) -> None:
    url = f"file://{tmp_path}/s"
    done = _cli("run", COUNTER, "--store", url, "--workflow", "/c.yaml", "--instance", "i-1")
    assert (done.returncode, done.stdout) == (0, b'{"var":{"x":1}}\n')
    assert _cli("vars", "get", "x", "--store", url, "--workflow", "/c.yaml").stdout == b"1"
    old = _cli("run", COUNTER, "--store", url, "--path", "/c.yaml", "--instance-id", "i-2")
    assert old.stdout == b'{"var":{"x":2}}\n'
    assert _cli("vars", "get", "x", "--store", url, "--path", "/c.yaml").stdout == b"2"


def test_vars_owners_and_clear(tmp_path: Path) -> None:
    url = f"file://{tmp_path}/s"
    for args in (["--workflow", "/a.yaml"], ["--instance", "i1"], []):
        assert _cli("vars", "set", "k", "--store", url, *args, stdin=b"1").returncode == 0
    _cli("vars", "set", "k", "--store", url, "--namespace", "other", stdin=b"1")
    owners = [json.loads(line) for line in _cli("vars", "owners", "--store", url).stdout.split()]
    assert owners == [
        {"namespace": "default", "scope": "namespace"},
        {"namespace": "default", "scope": "workflow", "workflow": "/a.yaml"},
        {"namespace": "default", "scope": "instance", "instance": "i1"},
    ]
    every = _cli("vars", "owners", "--store", url, "--all").stdout.split()
    assert len(every) == 4
    cleared = _cli("vars", "clear", "--store", url, "--workflow", "/a.yaml")
    assert cleared.returncode == 0
    assert cleared.stderr == b"deleted 1 variable of workflow default:/a.yaml\n"
    assert _cli("vars", "list", "--store", url, "--workflow", "/a.yaml").stdout == b""
    assert len(_cli("vars", "owners", "--store", url).stdout.split()) == 2
