"""Tests of greeter, a function that hard-codes ``http://localhost:8889``.

The same suite passes under ``pytest``, ``pytest -n 2`` and ``pytest -n 2 --dist each``, on
any store (``--direktiv-store-url``): each process has its own sidecar and the front door on
port 8889 routes every request to the sidecar of its call.
"""

from __future__ import annotations

import selectors
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hardcoded import app
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from direktiv_sdk.store import Owner
from harness import Sidecar
from harness.testing.pytest_plugin import FunctionCaller, WorkflowRunner

FLOW = """\
direktiv_api: workflow/v1
functions:
- id: greeter
  type: knative-workflow
  image: localhost:5000/greeter:v1
states:
- id: greet
  type: action
  action:
    function: greeter
    input:
      name: 'jq(.name)'
  transform: 'jq({greetings: .return.greetings})'
"""


def test_the_app_reaches_the_sidecar_at_8889(direktiv_call: FunctionCaller) -> None:
    result = direktiv_call(app, {"name": "Ada"})

    assert result.value == {"greetings": 1}
    greeting = result.written("greeting")
    assert greeting is not None
    assert greeting.data == b"hello Ada"
    assert [(r.method, r.key, r.status) for r in result.requests] == [
        ("GET", "greetings", 404),
        ("POST", "greetings", 200),
        ("POST", "greeting", 200),
    ]


def test_the_count_lives_in_the_tests_store(direktiv_call: FunctionCaller) -> None:
    for expected in (1, 2, 3):
        assert direktiv_call(app, {"name": "Bo"}).value == {"greetings": expected}
    stored = direktiv_call.store.get(
        Owner.for_workflow("default", "/workflow.yaml").ref("greetings")
    )
    assert stored is not None
    assert stored.data == b"3"


def test_a_flow_calls_it(direktiv_run: WorkflowRunner) -> None:
    first = direktiv_run(FLOW, input={"name": "Cy"}, functions={"greeter": app})
    second = direktiv_run(FLOW, input={"name": "Cy"}, functions={"greeter": app})

    assert first.ok, first.error_json()
    assert (first.output, second.output) == ({"greetings": 1}, {"greetings": 2})


# Each example gets a fresh store: a count left by one example never leaks into the next.
@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(names=st.lists(st.text(min_size=1, max_size=10), min_size=1, max_size=3))
def test_each_example_starts_from_an_empty_store(
    direktiv_call: FunctionCaller, names: list[str]
) -> None:
    call = direktiv_call.fresh()
    counts = [call(app, {"name": name}).value for name in names]

    assert counts == [{"greetings": n} for n in range(1, len(names) + 1)]


@pytest.fixture(scope="module")
def served(direktiv_sidecar_server: Sidecar) -> Iterator[str]:
    """Run greeter as its own process, with nothing of this process's environment."""
    # The function is told where its sidecar is, but greeter ignores it and uses 8889.
    env = {"DIREKTIV_SIDECAR_URL": direktiv_sidecar_server.url}
    command = [sys.executable, str(Path(__file__).with_name("hardcoded.py")), "--port", "0"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env) as server:
        try:
            assert server.stdout is not None
            with selectors.DefaultSelector() as selector:
                selector.register(server.stdout, selectors.EVENT_READ)
                assert selector.select(timeout=30), "greeter did not start within 30 s"
            line = server.stdout.readline()  # "greeter listening on http://127.0.0.1:PORT"
            assert line.startswith("greeter listening on "), line
            yield line.split()[-1]
        finally:
            server.terminate()
            server.wait(timeout=30)


def test_the_server_process_reaches_the_sidecar_at_8889(
    served: str, direktiv_call: FunctionCaller
) -> None:
    result = direktiv_call(served, {"name": "Di"})

    assert result.value == {"greetings": 1}
    greeting = result.written("greeting")
    assert greeting is not None
    assert greeting.data == b"hello Di"


def test_the_server_process_in_a_flow(served: str, direktiv_run: WorkflowRunner) -> None:
    result = direktiv_run(FLOW, input={"name": "Ed"}, functions={"greeter": served})

    assert result.ok, result.error_json()
    assert result.output == {"greetings": 1}
