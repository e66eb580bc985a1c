"""``make demo`` does what the README says, every time: it prints 1, 2, 3."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_demo_prints_1_2_3_every_time(tmp_path: Path) -> None:
    command = [
        "make", "-s", "-C", str(ROOT), "demo",
        f"BIN={Path(sys.executable).parent}", "STAMP=", f"DEMO_STORE=file://{tmp_path}/demo",
    ]  # fmt: skip
    for _ in range(2):
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        assert (done.returncode, done.stdout, done.stderr) == (0, "1\n2\n3\n", "")
