"""``direktiv-sdk run`` starts quickly: a small run imports only what it needs (bench/cli.py)."""

from __future__ import annotations

import argparse
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

HEAVY = (
    "fsspec",
    "jsonschema",
    "httpx",
    "importlib.metadata",
    "uuid",
    "concurrent.futures",
    "typing_extensions",
    "re2",
    "subprocess",
    "traceback",
    "cloudevents",
    "direktiv_sdk.engine.cloudevent",
    "direktiv_sdk.flow.events",
    "direktiv_sdk.engine.states.events",
    "direktiv_sdk.engine.states.actions",
)
"""Modules a run of getters and setters never needs (each costs 1-6 ms of every start)."""


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


def test_catch_patterns_load_re2(tmp_path: Path) -> None:
    flow = tmp_path / "catch.yaml"
    flow.write_text(
        "states:\n- {id: a, type: noop, catch: [{error: 'x.*', transition: b}]}\n"
        "- {id: b, type: noop}\n"
    )
    assert "re2" in _modules("run", str(flow), "--store", "memory://")


def test_event_and_action_states_load_their_families(tmp_path: Path) -> None:
    flow = tmp_path / "events.yaml"
    flow.write_text(
        "states:\n"
        "- id: a\n  type: generateEvent\n  event: {type: t, source: s}\n  transition: b\n"
        "- id: b\n  type: foreach\n  array: 'jq([])'\n  action: {function: f}\n"
        "functions:\n- {id: f, type: subflow, workflow: /x.yaml}\n"
    )
    loaded = _modules("run", str(flow), "--store", "memory://")
    assert {
        "direktiv_sdk.flow.events",
        "direktiv_sdk.engine.states.events",
        "direktiv_sdk.engine.states.actions",
        "direktiv_sdk.engine.cloudevent",
    } <= loaded


def _command(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    command: argparse.ArgumentParser = subparsers.choices[name]
    return command


def _options(parser: argparse.ArgumentParser, command: str) -> set[str]:
    return {flag for action in _command(parser, command)._actions for flag in action.option_strings}


def test_only_the_command_being_run_gets_its_options() -> None:
    from direktiv_sdk.cli._main import build_parser

    parser = build_parser(["run", "flow.yaml", "--store", "memory://"])
    assert "--virtual-clock" in _options(parser, "run")
    assert _options(parser, "vars") == {"-h", "--help"}
    full = build_parser()
    assert "--virtual-clock" in _options(full, "run")
    assert "--json" in _options(_command(full, "vars"), "list")
