"""The README's examples run as written (a README that lies is worse than none)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"```python\n(.*?)```", README, re.S)
SHELL = re.findall(r"```sh\n(.*?)```", README, re.S)

pytest_plugins = ["pytester"]


def test_the_readme_has_its_examples() -> None:
    assert len(BLOCKS) == 3
    assert any("make demo" in block for block in SHELL)


def test_the_store_example_prints_what_it_says(capsys: pytest.CaptureFixture[str]) -> None:
    exec(compile(BLOCKS[0], "README.md", "exec"), {})
    assert capsys.readouterr().out == "complete {'var': {'greeting': 'hello'}}\n"


def test_the_events_example_prints_what_it_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "wait.yaml").write_text(
        "states:\n- id: w\n  type: consumeEvent\n  event: {type: greeting}\n"
    )
    monkeypatch.chdir(tmp_path)
    exec(compile(BLOCKS[1], "README.md", "exec"), {})
    assert capsys.readouterr().out == "complete\n"


def test_the_function_example_passes_with_the_plugin(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_shout=BLOCKS[2])
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_the_cli_example_prints_the_counter(tmp_path: Path) -> None:
    flow = tmp_path / "counter.yaml"
    flow.write_text((ROOT / "examples" / "counter.yaml").read_text(encoding="utf-8"))
    cli = [sys.executable, "-m", "direktiv_sdk.cli"]
    run = subprocess.run(
        [*cli, "run", str(flow)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (run.returncode, run.stdout) == (0, '{"var":{"x":1}}\n')
    got = subprocess.run(
        [*cli, "vars", "get", "x", "--workflow", "/counter.yaml"],
        cwd=tmp_path,
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (got.returncode, got.stdout) == (0, "1")
