"""The Python API of the interpreter: run_workflow's arguments, results, traces, threads, clocks."""

from __future__ import annotations

import gc
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from direktiv_sdk import InvalidOwnerError, Owner, open_store
from direktiv_sdk.engine._runtime import Engine
from direktiv_sdk.engine.clock import SystemClock, VirtualClock, current_clock
from direktiv_sdk.engine.functions import FunctionCall, FunctionOutcome
from direktiv_sdk.engine.interpreter import InstanceResult, StateTrace, load_workflow, run_workflow
from direktiv_sdk.errors import DirektivError, FunctionNotMappedError
from direktiv_sdk.expr._gofmt import sprintf
from direktiv_sdk.expr.gojson import JSON
from direktiv_sdk.store import VariableStore

COUNTER = Path(__file__).resolve().parent.parent / "examples" / "counter.yaml"
ONE_ACTION = """
functions: [{id: f, type: knative-workflow, image: f:1}]
states:
- {id: a, type: action, action: {function: f}}
"""


class Echo:
    """A FunctionRunner answering with its input; records calls (thread-safe)."""

    def __init__(self) -> None:
        self.calls: list[FunctionCall] = []
        self.lock = threading.Lock()

    def call(self, call: FunctionCall) -> FunctionOutcome:
        with self.lock:
            self.calls.append(call)
        return FunctionOutcome(output=call.input)


class Together:
    """A runner whose calls wait for each other: only concurrent calls get past the barrier."""

    def __init__(self, parties: int) -> None:
        self.barrier = threading.Barrier(parties, timeout=10)
        self.lock = threading.Lock()
        self.running = 0
        self.most = 0

    def call(self, call: FunctionCall) -> FunctionOutcome:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            self.barrier.wait()
        except threading.BrokenBarrierError:
            return FunctionOutcome(error_code="test.not-concurrent", error_message="barrier broke")
        finally:
            with self.lock:
                self.running -= 1
        return FunctionOutcome(output=call.input)


@pytest.fixture
def store() -> VariableStore:
    return open_store("memory://")


# ---------------------------------------------------------------------- arguments


def test_yaml_text_runs_as_workflow_yaml(store: VariableStore) -> None:
    result = run_workflow(
        "states:\n- {id: a, type: setter, variables: [{key: v, scope: workflow, value: 1}]}\n",
        store=store,
        namespace="team",
        instance_id="i-1",
    )
    assert (result.status, result.path, result.namespace, result.instance_id) == (
        "complete",
        "/workflow.yaml",
        "team",
        "i-1",
    )
    assert store.get(Owner.for_workflow("team", "/workflow.yaml").ref("v")) is not None


def test_store_url_is_opened_and_closed(tmp_path: Path) -> None:
    url = f"file://{tmp_path / 'store'}"
    for expected in (1, 2):
        result = run_workflow(COUNTER, store=url)
        assert result.output == {"var": {"x": expected}}
    with open_store(url) as reopened:
        found = reopened.get(Owner.for_workflow("default", "/counter.yaml").ref("x"))
        assert found is not None
        assert found.data == b"2"


def test_default_store_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIREKTIV_STORE_URL", f"file://{tmp_path / 'env-store'}")
    assert run_workflow(COUNTER).output == {"var": {"x": 1}}
    assert run_workflow(COUNTER).output == {"var": {"x": 2}}
    assert (tmp_path / "env-store").is_dir()


def test_path_defaults_to_the_file_under_root(tmp_path: Path, store: VariableStore) -> None:
    flow = tmp_path / "flows" / "count.yaml"
    flow.parent.mkdir()
    flow.write_text(COUNTER.read_text())
    assert run_workflow(flow, store=store, root=tmp_path).path == "/flows/count.yaml"
    assert run_workflow(flow, store=store).path == "/count.yaml"
    assert run_workflow(flow, store=store, path="/other.yaml").path == "/other.yaml"
    owner = Owner.for_workflow("default", "/flows/count.yaml")
    assert [m.name for m in store.list(owner)] == ["x"]


def test_flow_outside_root_needs_a_path(tmp_path: Path, store: VariableStore) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with pytest.raises(ValueError, match="is not inside root") as caught:
        run_workflow(COUNTER, store=store, root=elsewhere)
    assert str(caught.value) == (
        f"flow file {str(COUNTER)!r} is not inside root {str(elsewhere)!r}: pass "
        "path='/name.yaml' or a root that contains the file"
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"namespace": "bad ns"}, "invalid namespace 'bad ns'"),
        ({"path": "relative.yaml"}, "invalid workflow path 'relative.yaml'"),
        ({"instance_id": "-x"}, "invalid instance id '-x'"),
    ],
)
def test_bad_owner_arguments(kwargs: dict[str, str], message: str, store: VariableStore) -> None:
    with pytest.raises(InvalidOwnerError) as caught:
        run_workflow(COUNTER, store=store, **kwargs)  # type: ignore[arg-type]
    assert str(caught.value).startswith(message + ": ")


def test_a_reused_instance_id_starts_with_no_instance_variables(store: VariableStore) -> None:
    flow = """
states:
- {id: get, type: getter, variables: [{key: n, scope: instance}], transition: set}
- id: set
  type: setter
  variables: [{key: n, scope: instance, value: 'jq((.var.n // 0) + 1)'}]
  transform: 'jq({n: .var.n})'
"""
    other = Owner.for_instance("default", "other")
    store.set(other.ref("n"), b"41")
    first = run_workflow(flow, store=store, instance_id="fixed")
    again = run_workflow(flow, store=store, instance_id="fixed")
    assert first.output == again.output == {"n": None}
    assert store.get(Owner.for_instance("default", "fixed").ref("n")).data == b"1"  # type: ignore[union-attr]
    assert store.get(other.ref("n")).data == b"41"  # type: ignore[union-attr]


def test_unmapped_function_fails_before_the_instance_starts(store: VariableStore) -> None:
    flow = """
functions:
- {id: echo, type: knative-workflow, image: e:1}
- {id: child, type: subflow, workflow: c.yaml}
states:
- id: first
  type: setter
  variables: [{key: touched, scope: namespace, value: 1}]
  transition: call
- id: call
  type: action
  action: {function: echo}
"""
    with pytest.raises(FunctionNotMappedError) as caught:
        run_workflow(flow, store=store)
    assert str(caught.value) == (
        "function 'echo' has no target: map it with --function echo=URL or functions={'echo': ...}"
    )
    assert store.list(Owner.for_namespace("default")) == []
    result = run_workflow(flow, store=store, functions={"echo": Echo(), "unrelated": Echo()})
    assert result.output == {"return": {}}


@pytest.mark.parametrize(
    ("value", "data"),
    [
        (None, {}),
        ({"a": 1}, {"a": 1}),
        ([1, "x"], {"input": [1, "x"]}),
        ("text", {"input": "text"}),
        (True, {"input": True}),
        (b'{"b": 2}', {"b": 2}),
        (bytearray(b"raw bytes"), {"input": "cmF3IGJ5dGVz"}),
        (memoryview(b""), {"input": ""}),
    ],
)
def test_input_forms(value: object, data: object, store: VariableStore) -> None:
    result = run_workflow("states:\n- {id: a, type: noop}\n", input=value, store=store)  # type: ignore[arg-type]
    assert result.output == data


def test_input_must_be_json(store: VariableStore) -> None:
    with pytest.raises(ValueError, match="NaN"):
        run_workflow("states:\n- {id: a, type: noop}\n", input={"x": float("nan")}, store=store)


def test_secrets_reach_the_function(store: VariableStore) -> None:
    echo = Echo()
    flow = """
functions: [{id: f, type: knative-workflow, image: f:1}]
states:
- {id: a, type: action, action: {function: f, secrets: [token], input: 'jq(.secrets.token)'}}
"""
    result = run_workflow(flow, store=store, functions={"f": echo}, secrets={"token": "t0k"})
    assert result.output == {"return": "t0k"}
    assert echo.calls[0].input == b'"t0k"'


# ---------------------------------------------------------------------- results and traces


def test_result_of_a_complete_instance(store: VariableStore) -> None:
    result = run_workflow(COUNTER, store=store, clock=VirtualClock())
    assert isinstance(result, InstanceResult)
    assert result.ok
    assert result.output_json == '{"var":{"x":1}}'
    assert result.error_json() is None
    assert (result.error_code, result.error_message, result.children) == (None, None, ())
    getter, setter = result.trace
    assert isinstance(getter, StateTrace)
    assert (getter.state, getter.type, getter.input, getter.var) == ("a", "getter", {}, {"x": None})
    assert getter.transform == {"var": {"x": 1}}
    assert (getter.next, getter.writes, getter.error_code) == ("b", (), None)
    assert setter.input is getter.transform
    assert [tuple(w) for w in setter.writes] == [
        ("workflow", "x", b"1", "application/json", "setter")
    ]
    assert setter.next == ""


def test_result_of_a_failed_instance(store: VariableStore) -> None:
    flow = """
states:
- id: a
  type: noop
  log: starting
  transform: 'jq(.nope)'
  catch: [{error: 'x^'}]
"""
    result = run_workflow(flow, store=store)
    assert not result.ok
    assert (result.status, result.output, result.output_json) == ("failed", None, None)
    assert result.error_json() == (
        '{"error":{"code":"direktiv.jq.badCommand","message":"unable to apply transform: failed '
        'to evaluate jq/js: error in jq query .nope: no results"}}'
    )
    (step,) = result.trace
    assert (step.error_code, step.caught, step.transform, step.logs) == (
        "direktiv.jq.badCommand",
        False,
        None,
        ("starting",),
    )
    assert result.logs == ("starting",)


def test_caught_error_is_traced(store: VariableStore) -> None:
    flow = """
states:
- {id: a, type: error, error: app.e, message: m, transition: b}
- {id: b, type: error, error: app.f, message: n, catch: [{error: '.*', transition: c}]}
- {id: c, type: noop}
"""
    result = run_workflow(flow, store=store)
    assert [(t.state, t.error_code, t.caught, t.next) for t in result.trace] == [
        ("a", None, False, "b"),
        ("b", "direktiv.workflow.multipleErrors", True, "c"),
        ("c", None, False, ""),
    ]
    assert (result.status, result.error_code, result.error_message) == ("failed", "app.e", "m")


def test_subflow_results_are_children(tmp_path: Path, store: VariableStore) -> None:
    (tmp_path / "child.yaml").write_text("states:\n- {id: c, type: noop, transform: {ok: true}}\n")
    (tmp_path / "parent.yaml").write_text(
        "functions: [{id: c, type: subflow, workflow: child.yaml}]\n"
        "states:\n- {id: p, type: action, action: {function: c}}\n"
    )
    result = run_workflow(tmp_path / "parent.yaml", store=store, instance_id="parent")
    (child,) = result.children
    assert child.path == "/child.yaml"
    assert child.instance_id not in ("parent", "")
    assert child.output == {"ok": True}
    assert result.output == {"return": {"ok": True}}


def test_unmapped_function_of_a_subflow_is_raised(tmp_path: Path, store: VariableStore) -> None:
    (tmp_path / "child.yaml").write_text(
        ONE_ACTION.replace("id: f,", "id: g,").replace("function: f", "function: g")
    )
    (tmp_path / "parent.yaml").write_text(
        "functions: [{id: c, type: subflow, workflow: child.yaml}]\n"
        "states:\n- {id: p, type: action, action: {function: c}}\n"
    )
    with pytest.raises(FunctionNotMappedError) as caught:
        run_workflow(tmp_path / "parent.yaml", store=store, functions={"f": Echo()})
    assert caught.value.function_id == "g"


def test_runner_that_raises_crashes_the_instance(store: VariableStore) -> None:
    class Broken:
        def call(self, call: FunctionCall) -> FunctionOutcome:
            raise RuntimeError("boom")

    flow = ONE_ACTION
    result = run_workflow(flow, store=store, functions={"f": Broken()})
    assert (result.status, result.error_code, result.error_message) == (
        "crashed",
        "direktiv.internal.error",
        "function 'f' failed: RuntimeError: boom",
    )


def test_a_loop_that_never_ends_is_stopped(store: VariableStore) -> None:
    flow = "states:\n- {id: a, type: noop, transition: a}\n"
    result = run_workflow(flow, store=store, clock=VirtualClock())
    assert (result.status, result.error_code) == ("crashed", "direktiv.internal.error")
    assert result.error_message == (
        "the instance made 10000 state transitions: a loop that never ends? "
        "(direktiv-sdk stops instances after that many)"
    )
    assert len(result.trace) == 10000


def test_trace_keeps_each_states_input(store: VariableStore) -> None:
    flow = """
states:
- {id: a, type: noop, transform: {n: 1}, transition: b}
- {id: b, type: noop, transform: 'jq(.n += 1)', transition: c}
- {id: c, type: noop}
"""
    result = run_workflow(flow, store=store)
    assert [t.input for t in result.trace] == [{}, {"n": 1}, {"n": 2}]
    assert result.output == {"n": 2}


# ---------------------------------------------------------------------- threads and clocks


def test_parallel_branches_run_at_the_same_time_on_a_real_clock(store: VariableStore) -> None:
    runner = Together(3)
    flow = """
functions: [{id: f, type: knative-workflow, image: f:1}]
states:
- id: p
  type: parallel
  actions: [{function: f, input: 1}, {function: f, input: 2}, {function: f, input: 3}]
"""
    result = run_workflow(flow, store=store, functions={"f": runner})
    assert result.output == {"return": [1, 2, 3]}, result.error_message
    assert runner.most == 3


def test_foreach_runs_at_most_three_at_a_time(store: VariableStore) -> None:
    runner = Together(3)
    flow = """
functions: [{id: f, type: knative-workflow, image: f:1}]
states:
- {id: e, type: foreach, array: 'jq(.items)', action: {function: f, input: 'jq(.n)'}}
"""
    items: list[JSON] = [{"n": i} for i in range(6)]
    result = run_workflow(flow, input={"items": items}, store=store, functions={"f": runner})
    assert result.output == {"items": items, "return": [0, 1, 2, 3, 4, 5]}, result.error_message
    assert runner.most == 3


def test_threaded_branch_error_fails_the_state(store: VariableStore) -> None:
    class FailSecond:
        def call(self, call: FunctionCall) -> FunctionOutcome:
            if call.input == b"2":
                return FunctionOutcome(error_code="app.two", error_message="two failed")
            return FunctionOutcome(output=call.input)

    flow = """
functions: [{id: f, type: knative-workflow, image: f:1}]
states:
- {id: e, type: foreach, array: [{n: 1}, {n: 2}, {n: 3}], action: {function: f, input: 'jq(.n)'}}
"""
    result = run_workflow(flow, store=store, functions={"f": FailSecond()})
    assert (result.status, result.error_code, result.error_message) == (
        "failed",
        "app.two",
        "two failed",
    )


def test_threaded_or_keeps_one_success(store: VariableStore) -> None:
    flow = """
functions: [{id: f, type: knative-workflow, image: f:1}]
states:
- id: p
  type: parallel
  mode: or
  actions: [{function: f, input: one}, {function: f, input: two}]
"""
    result = run_workflow(flow, store=store, functions={"f": Echo()})
    assert result.output in ({"return": ["one", None]}, {"return": [None, "two"]})


def test_runners_see_the_instance_clock(store: VariableStore) -> None:
    seen: list[object] = []

    class Look:
        def call(self, call: FunctionCall) -> FunctionOutcome:
            seen.append(current_clock())
            return FunctionOutcome()

    clock = VirtualClock()
    flow = ONE_ACTION
    run_workflow(flow, store=store, functions={"f": Look()}, clock=clock)
    run_workflow(flow, store=store, functions={"f": Look()})
    assert seen[0] is clock
    assert isinstance(seen[1], SystemClock)
    assert isinstance(current_clock(), SystemClock)


def test_subflows_in_parallel_on_a_real_clock(tmp_path: Path, store: VariableStore) -> None:
    # The branches' threads ask for the run's session at the same time: one is opened.
    runner = Together(3)
    (tmp_path / "child.yaml").write_text(
        ONE_ACTION.replace("{function: f}", "{function: f, input: 'jq(.n)'}")
    )
    (tmp_path / "parent.yaml").write_text(
        "functions: [{id: c, type: subflow, workflow: child.yaml}]\n"
        "states:\n- id: p\n  type: parallel\n  actions:\n"
        + "".join(f"  - {{function: c, input: {{n: {n}}}}}\n" for n in range(3))
    )
    result = run_workflow(tmp_path / "parent.yaml", store=store, functions={"f": runner})
    assert result.output == {
        "return": [{"n": 0, "return": 0}, {"n": 1, "return": 1}, {"n": 2, "return": 2}]
    }, result.error_message
    assert [c.status for c in result.children] == ["complete"] * 3
    assert runner.most == 3


def test_a_wait_after_other_states_runs_on_the_virtual_clock(store: VariableStore) -> None:
    clock = VirtualClock(1000.0)
    flow = """
states:
- {id: a, type: noop, transform: {n: 1}, transition: d}
- {id: d, type: delay, duration: PT10M, transition: w}
- id: w
  type: consumeEvent
  timeout: PT1M
  event: {type: never}
  catch: [{error: direktiv.cancels.timeout.soft, transition: e}]
- {id: e, type: noop, transform: 'jq(.n += 1)'}
"""
    result = run_workflow(flow, store=store, clock=clock)
    error = {"code": "direktiv.cancels.timeout.soft", "msg": "operation timed out"}
    assert result.output == {"n": 2, "error": error}, result.error_message
    assert clock.now() == 1000.0 + 600 + 65
    assert clock.sleeps == ()


def test_a_run_without_waits_leaves_no_reference_cycles(store: VariableStore) -> None:
    # A session ties the engine, the instance and their records in a cycle: garbage that only
    # the cycle collector frees. A flow that never waits runs without one.
    flow = load_workflow(COUNTER)
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for clock in (VirtualClock(), SystemClock()):
            result = flow.run(store=store, path="/counter.yaml", root=COUNTER.parent, clock=clock)
            assert result.status == "complete"
        gc.collect()
        cyclic = [o for o in gc.garbage if isinstance(o, Engine)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert cyclic == []


def test_delay_on_the_system_clock(store: VariableStore) -> None:
    result = run_workflow("states:\n- {id: d, type: delay, duration: PT0S}\n", store=store)
    assert result.ok


def test_virtual_clock() -> None:
    clock = VirtualClock(100.0)
    clock.sleep(5)
    clock.sleep(-1)
    clock.advance(2.5)
    assert clock.now() == 107.5
    assert list(clock.sleeps) == [5.0, 0.0]
    fork = clock.fork()
    fork.sleep(10)
    late = clock.fork(at=110.0)
    clock.join([fork, late])
    assert clock.now() == 117.5
    assert list(clock.sleeps) == [5.0, 0.0, 10.0]
    assert repr(clock) == "VirtualClock(117.5)"
    with pytest.raises(ValueError, match="cannot move a clock backwards") as caught:
        clock.advance(-1)
    assert str(caught.value) == "cannot move a clock backwards by -1 seconds"
    system = SystemClock()
    system.sleep(0)
    assert repr(system) == "SystemClock()"


# ---------------------------------------------------------------------- integration


def test_harness_callable_targets_run_in_flows(store: VariableStore) -> None:
    flow = """
functions: [{id: double, type: knative-workflow, image: d:1}]
states:
- {id: a, type: action, action: {function: double, input: 'jq(.n)'}}
"""

    def double(value: int) -> int:
        return value * 2

    result = run_workflow(flow, input={"n": 21}, store=store, functions={"double": double})
    assert result.output == {"n": 21, "return": 42}, result.error_message


def test_importing_the_package_does_not_import_jq() -> None:
    code = (
        "import sys, direktiv_sdk; "
        "assert 'jq' not in sys.modules and 'direktiv_sdk.engine.interpreter' not in sys.modules; "
        "direktiv_sdk.run_workflow; assert 'jq' in sys.modules; print('ok')"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.stdout.strip() == "ok", done.stderr


def test_errors_are_direktiv_errors() -> None:
    assert issubclass(FunctionNotMappedError, DirektivError)
    assert load_workflow(COUNTER).file == str(COUNTER)


# ---------------------------------------------------------------------- Go's Sprintf


@pytest.mark.parametrize(
    ("template", "args", "text"),
    [
        ("100%", [], "100%!(NOVERB)"),
        ("%d", [], "%!d(MISSING)"),
        ("%s", ["a", "b"], "a%!(EXTRA string=b)"),
        ("%v|%v|%v", [1234567.0, 123456.0, 0.00001], "1.234567e+06|123456|1e-05"),
        ("%d %d", [5.0, 5], "%!d(float64=5) 5"),
        ("%s %v", [None, None], "%!s(<nil>) <nil>"),
        ("%v", [[1.0, "a", None]], "[1 a <nil>]"),
        ("%v", [{"b": 1.0, "a": "x"}], "map[a:x b:1]"),
        ("%d", [[1.0]], "[%!d(float64=1)]"),
        ("%5.2f|%-6s|%06d|%+d|% d", [3.14159, "ab", 42, 3, 4], " 3.14|ab    |000042|+3| 4"),
        ("%x %X %o %O %b %#x %#o", [255, 255, 8, 8, 5, 255, 8], "ff FF 10 0o10 101 0xff 010"),
        ("%q %#q", ['a"\n', "b"], '"a\\"\\n" `b`'),
        ("%t %5t", [True, False], "true false"),
        (
            "%T %T %T %T %T %T",
            [1.0, "a", None, 1, [], {}],
            "float64 string <nil> int []interface {} map[string]interface {}",
        ),
        ("%[2]s %[1]s", ["a", "b"], "b a"),
        ("%[3]s", ["a"], "%!s(BADINDEX)"),
        (
            "%e %E %.3g %g",
            [1234.5, 0.5, 1234.5678, 1e21],
            "1.234500e+03 5.000000E-01 1.23e+03 1e+21",
        ),
        ("%x %x %X", [1.5, "hi", "hi"], "0x1.8p+00 6869 6869"),
        ("%*d|%-*d|%.*f", [5, 3, 4, 7, 2, 3.14159], "    3|7   |3.14"),
        ("%*d", [1.5, 3], "%!(BADWIDTH)3"),
        ("%z", ["a"], "%!z(string=a)"),
        ("%c %U %#U %q", [65, 65, 65, 66], "A U+0041 U+0041 'A' 'B'"),
        ("%05s %.2s %#v", ["ab", "hello", "q"], '000ab he "q"'),
        ("%b %v %v", [1.0, -0.0, 1e-07], "4503599627370496p-52 -0 1e-07"),
        ("%8.3e|%-8.1f|%08.2f", [-1234.5, 2.25, -3.5], "-1.234e+03|2.2     |-0003.50"),
        ("%p", [[1]], "%!p([]interface {}=[1])"),
        ("%%%d%%", [1], "%1%"),
        ("%.0f %.1f", [0.5, 0.25], "0 0.2"),
    ],
)
def test_sprintf(template: str, args: list[object], text: str) -> None:
    assert sprintf(template, args) == text  # type: ignore[arg-type]


def test_docs_examples_run(monkeypatch: pytest.MonkeyPatch) -> None:
    docs = COUNTER.parent.parent / "docs" / "interpreter.md"
    blocks = docs.read_text(encoding="utf-8").split("```python\n")[1:]
    assert len(blocks) == 2
    monkeypatch.chdir(COUNTER.parent.parent)
    for block in blocks:
        exec(compile(block.split("```")[0], str(docs), "exec"), {})


def test_strict_run_workflow_refuses_a_subflow_with_lint_errors(tmp_path: Path) -> None:
    (tmp_path / "child.yaml").write_text("states:\n- {id: c, type: noop, transform: 'jq(.a'}\n")
    parent = tmp_path / "parent.yaml"
    parent.write_text(
        "functions:\n- {id: child, type: subflow, workflow: /child.yaml}\n"
        "states:\n- {id: a, type: action, action: {function: child}}\n"
    )
    lenient = run_workflow(parent, store="memory://")
    assert lenient.error_code == "direktiv.jq.badCommand"
    strict = run_workflow(parent, store="memory://", strict=True)
    assert strict.error_code == "direktiv.workflow.invalid"
    assert "child.yaml:2" in (strict.error_message or "")
