"""The interpreter corpus: every folder of ``tests/corpus`` is one case (format: docs/corpus.md).

Run cases execute on the memory, local and S3 stores (S3 through the moto server, marked
``s3``); load-error cases only load. Function stubs are declared in ``case.yaml`` and played
by :class:`StubRunner`, a real :class:`~direktiv_sdk.engine.functions.FunctionRunner`.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Final

import pytest

from direktiv_sdk.engine.clock import VirtualClock, current_clock
from direktiv_sdk.engine.functions import FunctionCall, FunctionOutcome
from direktiv_sdk.engine.interpreter import InstanceResult, load_workflow, run_workflow
from direktiv_sdk.engine.namespace import Namespace
from direktiv_sdk.errors import WorkflowLoadError
from direktiv_sdk.expr import gojson
from direktiv_sdk.flow._yaml import compose, to_json
from direktiv_sdk.store import Owner, VariableStore
from direktiv_sdk.store.registry import open_store

CORPUS: Final = Path(__file__).parent / "corpus"
START: Final = 1_700_000_000.0
"""Where every case's virtual clock starts."""

_CASE_KEYS: Final = {
    "description", "flow", "namespace", "before", "functions", "secrets", "runs",
    "load_error", "load_error_regex", "backends", "strict_load_error", "lint",
}  # fmt: skip
_RUN_KEYS: Final = {
    "input", "input_text", "input_base64", "flow", "instance_id", "expect", "events", "start",
}  # fmt: skip
_EXPECT_KEYS: Final = {
    "status", "output", "output_json", "error", "logs", "metadata", "visited", "elapsed",
    "calls", "store", "children", "instances",
}  # fmt: skip
_INSTANCE_KEYS: Final = {"status", "output", "error_code", "invoker"}
_STUB_KEYS: Final = {
    "echo", "output", "output_text", "output_base64", "error", "fail_times", "crash", "sleep",
    "sleep_from_input", "error_when_input", "log", "set",
}  # fmt: skip


def _parse(path: Path) -> Any:
    return to_json(compose(path.read_text(encoding="utf-8")))


def _cases() -> dict[str, dict[str, Any]]:
    found = {}
    for folder in sorted(CORPUS.iterdir()) if CORPUS.is_dir() else ():
        if (folder / "case.yaml").is_file():
            found[folder.name] = _parse(folder / "case.yaml")
    return found


CASES: Final = _cases()
RUN_CASES: Final = sorted(name for name, case in CASES.items() if "runs" in case)
LOAD_CASES: Final = sorted(
    name for name, case in CASES.items() if "load_error" in case or "load_error_regex" in case
)
STRICT_CASES: Final = sorted(name for name, case in CASES.items() if "strict_load_error" in case)
LINT_CASES: Final = sorted(name for name, case in CASES.items() if "lint" in case)


def _check_keys(what: str, value: Mapping[str, Any], allowed: set[str]) -> None:
    unknown = set(value) - allowed
    assert not unknown, f"{what}: unknown keys {sorted(unknown)} (allowed: {sorted(allowed)})"


def _same(actual: Any, expected: Any) -> bool:
    """Compare JSON values the way Go-JSON prints them (so 1 == 1.0 but True != 1)."""
    return bool(gojson.dumps(actual) == gojson.dumps(expected))


# ---------------------------------------------------------------------- stored values


def _value_bytes(spec: Any) -> tuple[bytes, str | None]:
    """Return (bytes, mime or None) of a store value spec (docs/corpus.md)."""
    if isinstance(spec, dict) and spec and all(k.startswith("$") for k in spec):
        mime = spec.get("$mime")
        if "$text" in spec:
            return spec["$text"].encode(), mime
        if "$base64" in spec:
            return base64.b64decode(spec["$base64"]), mime
        return gojson.dumps(spec["$json"]).encode(), mime
    return gojson.dumps(spec).encode(), None


def _owner(scope: str, namespace: str, path: str, instance: str) -> Owner:
    kind, _, explicit = scope.partition(":")
    if kind == "namespace":
        return Owner.for_namespace(namespace)
    if kind == "workflow":
        return Owner.for_workflow(namespace, explicit or path)
    if kind == "instance":
        return Owner.for_instance(namespace, explicit or instance)
    raise AssertionError(f"unknown store scope {scope!r}")


def _fill(store: VariableStore, before: Mapping[str, Any], namespace: str, path: str) -> None:
    for scope, values in before.items():
        owner = _owner(scope, namespace, path, "before")
        for key, spec in values.items():
            data, mime = _value_bytes(spec)
            store.set(owner.ref(key), data, mime_type="application/json" if mime is None else mime)


def _check_store(
    store: VariableStore, expected: Mapping[str, Any], namespace: str, path: str, instance: str
) -> None:
    for scope, values in expected.items():
        owner = _owner(scope, namespace, path, instance)
        names = sorted(meta.name for meta in store.list(owner))
        assert names == sorted(values), f"{scope}: variables {names}, expected {sorted(values)}"
        for key, spec in values.items():
            found = store.get(owner.ref(key))
            assert found is not None
            want, mime = _value_bytes(spec)
            if (
                isinstance(spec, dict)
                and "$json" not in spec
                and any(k in spec for k in ("$text", "$base64"))
            ):
                assert found.data == want, (
                    f"{scope} {key}: stored {found.data!r}, expected {want!r}"
                )
            else:
                try:
                    decoded = gojson.loads(found.data)
                except ValueError:
                    pytest.fail(f"{scope} {key}: stored {found.data!r} is not JSON")
                assert _same(decoded, gojson.loads(want)), f"{scope} {key}: stored {found.data!r}"
            if mime is not None:
                assert found.mime_type == mime, f"{scope} {key}: mime {found.mime_type!r}"


# ---------------------------------------------------------------------- function stubs


class StubRunner:
    """A FunctionRunner playing one declarative stub of a case (docs/corpus.md)."""

    def __init__(
        self, function_id: str, spec: Mapping[str, Any], calls: list[dict[str, Any]]
    ) -> None:
        _check_keys(f"function {function_id}", spec, _STUB_KEYS)
        self.function_id = function_id
        self.spec = spec
        self.calls = calls
        self.count = 0

    def call(self, call: FunctionCall) -> FunctionOutcome:
        spec = self.spec
        self.count += 1
        try:
            given: Any = gojson.loads(call.input)
        except ValueError:
            given = call.input.decode()
        self.calls.append(
            {
                "function": call.function_id,
                "input": given,
                "iterator": call.iterator,
                "files": [
                    {
                        "key": f.key,
                        "scope": f.scope,
                        "as": f.as_name,
                        "type": f.type,
                        "permissions": f.permissions,
                    }
                    for f in call.files
                ],
                "timeout": call.timeout,
            }
        )
        if "log" in spec:
            call.log(spec["log"])
        seconds = spec.get("sleep", 0)
        if "sleep_from_input" in spec and isinstance(given, dict):
            seconds = given.get(spec["sleep_from_input"], 0)
        current_clock().sleep(seconds)
        for scope, values in spec.get("set", {}).items():
            owner = _owner(scope, call.namespace, call.workflow, call.instance)
            for key, value in values.items():
                data, mime = _value_bytes(value)
                call.store.set(owner.ref(key), data, mime_type=mime or "")
        when = spec.get("error_when_input")
        failing = "error" in spec and (
            ("fail_times" not in spec and when is None)
            or ("fail_times" in spec and self.count <= spec["fail_times"])
            or (
                when is not None
                and isinstance(given, dict)
                and _same(given.get(when["key"]), when["equals"])
            )
        )
        if failing:
            return FunctionOutcome(
                error_code=spec["error"]["code"], error_message=spec["error"].get("message", "")
            )
        if "crash" in spec:
            return FunctionOutcome(crash=spec["crash"])
        if "output" in spec:
            return FunctionOutcome(output=gojson.dumps(spec["output"]).encode())
        if "output_text" in spec:
            return FunctionOutcome(output=spec["output_text"].encode())
        if "output_base64" in spec:
            return FunctionOutcome(output=base64.b64decode(spec["output_base64"]))
        return FunctionOutcome(output=call.input)


# ---------------------------------------------------------------------- running a case


_BACKENDS: Final = ("memory", "local", "s3")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run each case on the backends it declares (default: all), and only on those."""
    if metafunc.function.__name__ != "test_corpus_case":
        return
    pairs = []
    for name in RUN_CASES:
        declared = CASES[name].get("backends", _BACKENDS)
        unknown = sorted(set(declared) - set(_BACKENDS))
        if unknown:
            raise ValueError(f"case {name}: unknown backends {unknown} (use {list(_BACKENDS)})")
        for backend in declared:
            marks = [pytest.mark.s3] if backend == "s3" else []
            pairs.append(pytest.param(name, backend, id=f"{name}-{backend}", marks=marks))
    metafunc.parametrize(("name", "corpus_store"), pairs, indirect=["corpus_store"])


@pytest.fixture
def corpus_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VariableStore]:
    """Yield an empty store of the backend kind a case runs on (``pytest_generate_tests``)."""
    if request.param == "memory":
        url = "memory://"
    elif request.param == "local":
        url = f"file://{tmp_path / 'store'}"
    else:
        url = request.getfixturevalue("s3_store_url")
    with open_store(url) as store:
        yield store


def _raw_input(run: Mapping[str, Any]) -> Any:
    if "input_text" in run:
        return run["input_text"].encode()
    if "input_base64" in run:
        return base64.b64decode(run["input_base64"])
    return run.get("input")


def _check_result(
    result: InstanceResult,
    expect: Mapping[str, Any],
    *,
    clock: VirtualClock,
    started: float,
    calls: list[dict[str, Any]],
) -> None:
    where = f"{result.status} {result.error_code}: {result.error_message}"
    assert result.status == expect.get("status", "complete"), where
    if "output" in expect:
        assert _same(result.output, expect["output"]), f"output {result.output_json}"
    if "output_json" in expect:
        assert result.output_json == expect["output_json"]
    if "error" in expect:
        error = expect["error"]
        assert result.error_code == error["code"], where
        if "message" in error:
            assert result.error_message == error["message"]
        if "message_regex" in error:
            assert re.search(error["message_regex"], result.error_message or ""), (
                result.error_message
            )
    elif expect.get("status", "complete") == "complete":
        assert result.error_code is None, where
    if "logs" in expect:
        assert list(result.logs) == expect["logs"]
    if "metadata" in expect:
        assert result.metadata == expect["metadata"]
    if "visited" in expect:
        assert [t.state for t in result.trace] == expect["visited"]
    if "elapsed" in expect:
        assert clock.now() - started == expect["elapsed"]
    if "calls" in expect:
        assert len(calls) == len(expect["calls"]), f"calls: {calls}"
        for actual, wanted in zip(calls, expect["calls"], strict=True):
            for key, value in wanted.items():
                assert _same(actual[key], value), f"call {key}: {actual[key]!r} != {value!r}"
    if "children" in expect:
        got = [
            {"status": c.status, "path": c.path, "error_code": c.error_code}
            for c in result.children
        ]
        assert len(got) == len(expect["children"]), got
        for actual, wanted in zip(got, expect["children"], strict=True):
            for key, value in wanted.items():
                assert actual[key] == value, f"child {key}: {actual!r}"


def test_corpus_has_cases() -> None:
    assert len(RUN_CASES) >= 60, "the corpus lost its run cases"
    assert len(LOAD_CASES) >= 20, "the corpus lost its load-error cases"
    assert len(STRICT_CASES) >= 10, "the corpus lost its strict-mode cases"


def test_corpus_case(name: str, corpus_store: VariableStore) -> None:
    case = CASES[name]
    _check_keys(name, case, _CASE_KEYS)
    folder = CORPUS / name
    namespace = case.get("namespace", "default")
    default_flow = case.get("flow", "flow.yaml")
    _fill(corpus_store, case.get("before", {}), namespace, "/" + default_flow)
    clock = VirtualClock(START)
    for index, run in enumerate(case["runs"]):
        _check_keys(f"{name} run {index}", run, _RUN_KEYS)
        expect = run.get("expect", {})
        _check_keys(f"{name} run {index} expect", expect, _EXPECT_KEYS)
        calls: list[dict[str, Any]] = []
        stubs = {
            fid: StubRunner(fid, spec or {}, calls)
            for fid, spec in case.get("functions", {}).items()
        }
        flow = run.get("flow", default_flow)
        instance = run.get("instance_id", f"run-{index + 1}")
        started = clock.now()
        if "events" in run or "instances" in expect or run.get("start") is False:
            _run_in_namespace(case, run, folder, corpus_store, stubs, clock, calls)
            continue
        result = run_workflow(
            folder / flow,
            input=_raw_input(run),
            store=corpus_store,
            namespace=namespace,
            root=folder,
            instance_id=instance,
            functions=stubs,
            clock=clock,
            secrets=case.get("secrets"),
        )
        _check_result(result, expect, clock=clock, started=started, calls=calls)
        if "store" in expect:
            _check_store(corpus_store, expect["store"], namespace, "/" + flow, instance)


def _run_in_namespace(  # noqa: PLR0917 - the parts of one run
    case: Mapping[str, Any],
    run: Mapping[str, Any],
    folder: Path,
    store: VariableStore,
    stubs: Mapping[str, StubRunner],
    clock: VirtualClock,
    calls: list[dict[str, Any]],
) -> None:
    """Run one step in a namespace session: start the flow, deliver the events, compare."""
    expect = run.get("expect", {})
    namespace = case.get("namespace", "default")
    started = clock.now()
    with Namespace(
        folder, store=store, namespace=namespace, functions=stubs, secrets=case.get("secrets"),
        clock=clock,
    ) as ns:  # fmt: skip
        main = None
        if run.get("start", True):
            flow = run.get("flow", case.get("flow", "flow.yaml"))
            main = ns.start("/" + flow, _raw_input(run), instance_id=run.get("instance_id"))
        for event in run.get("events", ()):
            ns.settle()  # the event comes once the instances wait
            ns.send(event)
        if main is not None:
            result = ns.wait(main).result
            assert result is not None
            _check_result(result, expect, clock=clock, started=started, calls=calls)
        ns.settle()
        for path, wanted in expect.get("instances", {}).items():
            found = ns.instances(path)
            assert len(found) == len(wanted), f"{path}: {found}"
            for info, spec in zip(found, wanted, strict=True):
                _check_keys(f"instance of {path}", spec, _INSTANCE_KEYS)
                for key, value in spec.items():
                    actual = info.output if key == "output" else getattr(info, key)
                    assert _same(actual, value), f"{path} {key}: {actual!r} != {value!r}"


@pytest.mark.parametrize("name", LOAD_CASES)
def test_corpus_load_error(name: str) -> None:
    case = CASES[name]
    _check_keys(name, case, _CASE_KEYS)
    folder = CORPUS / name
    flow = case.get("flow", "flow.yaml")
    with pytest.raises(WorkflowLoadError) as caught:
        load_workflow(folder / flow, path=flow)
    if "load_error" in case:
        assert str(caught.value) == case["load_error"]
    if "load_error_regex" in case:
        assert re.search(case["load_error_regex"], str(caught.value)), str(caught.value)


@pytest.mark.parametrize("name", STRICT_CASES)
def test_corpus_strict_load_error(name: str) -> None:
    """Direktiv loads the flow (it fails only when the state runs); --strict refuses it."""
    case = CASES[name]
    _check_keys(name, case, _CASE_KEYS)
    folder = CORPUS / name
    flow = case.get("flow", "flow.yaml")
    with pytest.raises(WorkflowLoadError) as caught:
        load_workflow(folder / flow, path=flow, strict=True)
    assert str(caught.value) == case["strict_load_error"]
    assert caught.value.rule == case["lint"][0]


@pytest.mark.parametrize("name", LINT_CASES)
def test_corpus_lint_findings(name: str) -> None:
    """A flow that loads keeps what it will meet at run time as findings, in order."""
    case = CASES[name]
    folder = CORPUS / name
    flow = case.get("flow", "flow.yaml")
    loaded = load_workflow(folder / flow, path=flow)
    assert [finding.code for finding in loaded.findings] == case["lint"]
