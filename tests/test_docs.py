"""docs/tutorial.md runs as a test: its code is the example's code, and its commands pass.

Every fenced ``python`` or ``yaml`` block that starts with ``# file: PATH`` must appear verbatim
in that file (whose tests run here); other ``python`` blocks run as a test module; every
``$ pytest …`` line of a ``console`` block runs and must pass.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent
TUTORIAL = ROOT / "docs" / "tutorial.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.DOTALL | re.MULTILINE)
HEADER = re.compile(r"^# file: (\S+)\n")
TIMEOUT = 300.0
"""Seconds one documented command may take."""


def fenced(language: str) -> list[str]:
    """Return the bodies of the tutorial's fenced blocks in ``language``."""
    return [body for lang, body in FENCE.findall(TUTORIAL.read_text()) if lang == language]


EXCERPTS = [body for lang in ("python", "yaml") for body in fenced(lang) if HEADER.match(body)]
SNIPPETS = [body for body in fenced("python") if not HEADER.match(body)]
COMMANDS = [
    line.removeprefix("$ ")
    for body in fenced("console")
    for line in body.splitlines()
    if line.startswith("$ ")
]


def test_the_tutorial_has_code() -> None:
    assert len(EXCERPTS) >= 10
    assert SNIPPETS
    assert len(COMMANDS) >= 2


@pytest.mark.parametrize("body", EXCERPTS, ids=lambda body: body.splitlines()[1][:50])
def test_each_excerpt_is_copied_from_its_file(body: str) -> None:
    header = HEADER.match(body)
    assert header is not None
    path = ROOT / header.group(1)
    code = body[header.end() :]
    assert code in path.read_text(), f"this block is not (any more) in {header.group(1)}"


def test_the_flow_is_shown_whole() -> None:
    flow = "# file: examples/function/flow.yaml\n"
    shown = [body for body in EXCERPTS if body.startswith(flow)]
    assert [body.removeprefix(flow) for body in shown] == [
        (ROOT / "examples" / "function" / "flow.yaml").read_text()
    ]


def test_the_snippets_pass(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(**{f"test_snippet_{n}": body for n, body in enumerate(SNIPPETS)})
    result = pytester.runpytest_inprocess("--strict-markers", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=len(SNIPPETS))


def run_pytest(*args: str) -> subprocess.CompletedProcess[str]:
    """Run pytest in a new process from the repository root, as a reader would."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", *args, "-q", "-p", "no:cacheprovider"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


@pytest.mark.parametrize("command", COMMANDS)
def test_the_commands_pass(command: str) -> None:
    words = shlex.split(command)
    assert words[0] == "pytest", "only pytest commands are run here"
    done = run_pytest(*words[1:])
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


@pytest.mark.s3
def test_the_example_suite_runs_on_s3(s3_endpoint: str, s3_bucket: str) -> None:
    import s3fs

    # s3_endpoint put the moto server's address and credentials into the environment.
    done = run_pytest("examples/function", "--direktiv-store-url", f"s3://{s3_bucket}/examples")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    fs = s3fs.S3FileSystem(endpoint_url=s3_endpoint, skip_instance_cache=True)
    (run,) = fs.ls(f"{s3_bucket}/examples", refresh=True)  # <run>-<worker>
    prefixes = [path.rpartition("/")[2] for path in fs.ls(run, refresh=True)]
    assert any(
        p.startswith("examples-function-test_textstats.py-test_counts_words") for p in prefixes
    )
