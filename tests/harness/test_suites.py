"""The example suite in real set-ups: pytest-xdist, every store, hard-coded localhost:8889.

Each run is a subprocess, bounded by a timeout. Where the machine allows it, the run gets its
own network namespace (``unshare -rn``), so port 8889 is not shared with whatever else this
machine runs; elsewhere it uses the machine's port 8889.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from door_support import private_network

ROOT = Path(__file__).parents[2]
RUNNER = Path(__file__).with_name("suite") / "run_suite.py"
EXAMPLES = ROOT / "examples" / "function"
TIMEOUT = 600


def run_suite(kind: str, *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """Run pytest with ``args`` on a ``kind`` store in its own namespace; return the result."""
    command = [*private_network(), sys.executable, str(RUNNER), kind, *args]
    return subprocess.run(
        command, cwd=cwd, timeout=TIMEOUT, check=False, capture_output=True, text=True
    )


MODES = {
    "plain": (),
    "n2": ("-n", "2"),
    "each": ("-n", "2", "--dist", "each"),
}


@pytest.mark.slow
@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("kind", ["memory", "file", "s3"])
def test_the_example_suite_passes(kind: str, mode: str) -> None:
    # Issue 9, cases 3 and 4: two workers, 8889 shared through the front door, stores apart.
    result = run_suite(kind, "-q", "-p", "no:randomly", *MODES[mode], str(EXAMPLES))
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    passed = 32 if mode == "each" else 16
    assert f"{passed} passed" in result.stdout, result.stdout[-2000:]


def test_two_cli_runs_at_once_share_the_front_door() -> None:
    # Issue 9, case 6: the second run used to fail with PortInUseError.
    command = [
        *private_network(),
        sys.executable,
        str(RUNNER.with_name("two_runs.py")),
        str(EXAMPLES / "hardcoded.py"),
    ]
    done = subprocess.run(command, timeout=TIMEOUT, check=False, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    runs = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(run["code"], run["out"], run["err"]) for run in runs] == [
        (0, '{"greetings":2}\n', ""),
        (0, '{"greetings":2}\n', ""),
    ]
