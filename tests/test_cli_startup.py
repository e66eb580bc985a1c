"""``direktiv-sdk run`` starts quickly: a small run imports only what it needs (bench/cli.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PROBE = """
import json, sys
from direktiv_sdk.cli import main
code = main(sys.argv[1:])
sys.stdout.flush()
print(json.dumps(sorted(sys.modules)))
"""

HEAVY = ("fsspec", "jsonschema", "httpx", "importlib.metadata", "uuid", "concurrent.futures")


def _modules(*args: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=ROOT,
    )
    return set(json.loads(done.stdout.splitlines()[-1]))


def test_a_counter_run_on_memory_imports_nothing_heavy() -> None:
    loaded = _modules("run", "examples/counter.yaml", "--store", "memory://")
    assert "jq" in loaded
    assert "yaml" in loaded
    assert [name for name in HEAVY if name in loaded] == []
    assert {"backends.memory"} <= loaded
    assert not {"backends.local", "backends.s3", "harness"} & loaded


def test_what_a_run_needs_is_still_loaded_when_it_needs_it(tmp_path: Path) -> None:
    flow = tmp_path / "validate.yaml"
    flow.write_text("states:\n- {id: a, type: validate, schema: {type: object}}\n")
    loaded = _modules("run", str(flow), "--store", "memory://")
    assert "jsonschema" in loaded
