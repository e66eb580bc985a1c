"""Tests of the textstats function, with direktiv-sdk's pytest fixtures and strategies.

Run them with ``pytest examples/function``; add ``--direktiv-store-url file://`` (or an
``s3://`` URL) to run the same tests on another store.
"""

from __future__ import annotations

import io
import json
import os
import selectors
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from textstats import app

from direktiv_sdk.expr.gojson import JSON
from direktiv_sdk.store import Owner, VariableStore
from harness import Sidecar
from harness.testing.pytest_plugin import FunctionCaller, WorkflowRunner
from harness.testing.strategies import action_inputs, variable_values

FLOW = Path(__file__).with_name("flow.yaml")
DOCUMENT = {"key": "document", "scope": "workflow", "as": "document.txt"}
"""The flow's files: entry: the workflow variable ``document`` as ``document.txt``."""


@pytest.fixture(autouse=True)
def sidecar_url(direktiv_sidecar: Sidecar, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point the function at the test's sidecar instead of localhost:8889."""
    monkeypatch.setenv("DIREKTIV_SIDECAR_URL", direktiv_sidecar.url)


def store_document(store: VariableStore, text: bytes) -> None:
    """Store ``text`` as the workflow variable the function reads."""
    ref = Owner.for_workflow("default", "/workflow.yaml").ref("document")
    store.set(ref, text, mime_type="text/plain")


def test_counts_words_and_sets_variables(
    direktiv_call: FunctionCaller, direktiv_store: VariableStore
) -> None:
    store_document(direktiv_store, b"The cat and the hat.\nThe end.")

    result = direktiv_call(app, {"top": 2}, files=[DOCUMENT])

    assert result.value == {"lines": 2, "words": 7, "top": [["the", 3], ["and", 1]]}
    # Set through POST /var:
    wordcount = result.written("wordcount", "instance")
    assert wordcount is not None
    assert (wordcount.data, wordcount.mime_type, wordcount.via) == (b"7", "text/plain", "var")
    # Written under out/workflow and out/namespace:
    last = result.written("last-document", "workflow")
    assert last is not None
    assert last.data == b"The cat and the hat.\nThe end."
    report = direktiv_store.get(Owner.for_namespace("default").ref("report"))
    assert report is not None
    with tarfile.open(fileobj=io.BytesIO(report.data), mode="r:gz") as tar:
        names = sorted(member.name for member in tar)
        summary = tar.extractfile("/summary.json")
        assert summary is not None
        assert json.load(summary) == {"lines": 2, "words": 7}
    assert names == ["", "/summary.json", "/words", "/words/top.txt"]


def test_a_missing_document_is_an_error_code(direktiv_call: FunctionCaller) -> None:
    result = direktiv_call(app, {}, files=[DOCUMENT])

    assert result.error_code == "textstats.noDocument"
    assert result.error_message == "document.txt is missing or empty"
    assert result.writes == ()


@pytest.mark.parametrize("bad", [{"top": 0}, {"top": "3"}, [1, 2], "hello"])
def test_bad_input_is_an_error_code(
    direktiv_call: FunctionCaller, direktiv_store: VariableStore, bad: JSON
) -> None:
    store_document(direktiv_store, b"text")

    result = direktiv_call(app, bad, files=[DOCUMENT])

    assert result.error_code == "textstats.badInput"


# direktiv_call.fresh() gives each example its own empty store: nothing one example stores
# is seen by the next, so the function-scoped fixture is safe here.
@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=variable_values(min_size=1), payload=st.one_of(action_inputs(), st.just({})))
def test_never_crashes_and_reports_what_it_stored(
    direktiv_call: FunctionCaller, text: bytes, payload: JSON
) -> None:
    call = direktiv_call.fresh()
    store_document(call.store, text)

    result = call(app, payload, files=[DOCUMENT])

    if result.error_code:
        assert result.error_code == "textstats.badInput"
        return
    stats = json.loads(result.output)
    wordcount = result.written("wordcount")
    assert wordcount is not None
    assert int(wordcount.data) == stats["words"]
    counts = [n for _, n in stats["top"]]
    assert counts == sorted(counts, reverse=True)
    assert sum(counts) <= stats["words"]


@pytest.fixture(scope="module")
def served(direktiv_sidecar_server: Sidecar) -> Iterator[str]:
    """Run textstats as its own process, as in its container; yield its URL."""
    env = {**os.environ, "DIREKTIV_SIDECAR_URL": direktiv_sidecar_server.url}
    command = [sys.executable, str(Path(__file__).with_name("textstats.py")), "--port", "0"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env) as server:
        try:
            assert server.stdout is not None
            with selectors.DefaultSelector() as selector:
                selector.register(server.stdout, selectors.EVENT_READ)
                assert selector.select(timeout=30), "textstats did not start within 30 s"
            line = server.stdout.readline()  # "textstats listening on http://127.0.0.1:PORT"
            assert line.startswith("textstats listening on "), line
            yield line.split()[-1]
        finally:
            server.terminate()
            server.wait(timeout=30)


def test_the_function_as_a_server(
    served: str, direktiv_call: FunctionCaller, direktiv_store: VariableStore
) -> None:
    store_document(direktiv_store, b"one two two")

    result = direktiv_call(served, {"top": 1}, files=[DOCUMENT])

    assert result.value == {"lines": 1, "words": 3, "top": [["two", 2]]}
    assert [(r.method, r.key, r.status) for r in result.requests] == [("POST", "wordcount", 200)]


def test_the_flow_calls_the_function(
    direktiv_run: WorkflowRunner, direktiv_store: VariableStore
) -> None:
    result = direktiv_run(
        FLOW, input={"text": "to be or not to be", "top": 1}, functions={"textstats": app}
    )

    assert result.ok, result.error_json()
    assert result.output == {"words": 6, "top": [["be", 2]], "stored": 6}
    stored = direktiv_store.get(Owner.for_workflow("default", "/flow.yaml").ref("last-document"))
    assert stored is not None
    assert stored.data == b"to be or not to be"


def test_the_flow_catches_a_missing_document(direktiv_run: WorkflowRunner) -> None:
    result = direktiv_run(FLOW, input={"text": ""}, functions={"textstats": app})

    assert result.output == {"words": 0, "top": [], "error": "textstats.noDocument"}
