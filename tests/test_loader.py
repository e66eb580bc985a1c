"""The loader's API and the rules the corpus cannot show as one flow each (see tests/corpus)."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path

import pytest

from direktiv_sdk.engine import load_workflow
from direktiv_sdk.errors import WorkflowLoadError
from direktiv_sdk.expr.jx import JqCache
from direktiv_sdk.flow._duration import Duration, parse_duration
from direktiv_sdk.flow._yaml import ScalarNode, YamlError, compose, scalar_value, to_json
from direktiv_sdk.flow.model import (
    ActionState,
    EventState,
    GetterState,
    ParallelState,
    SetterState,
    SwitchState,
    Workflow,
)

FLOW = """\
direktiv_api: workflow/v1
description: demo
functions:
- {id: echo, type: reusable, image: direktiv/echo:v1, size: small}
- {id: child, type: subflow, workflow: child.yaml}
- {id: unused, type: knative-namespace, service: /svc.yaml}
states:
- id: get
  type: getter
  variables:
  - {key: x, scope: workflow}
  - {key: 'jq(.k)', scope: namespace, as: k}
  transition: set
- id: set
  type: setter
  variables:
  - {key: x, scope: workflow, value: 'jq(.var.x)', mimeType: text/plain}
  transition: call
- id: call
  type: parallel
  actions:
  - {function: echo}
  - {function: child}
"""


# ---------------------------------------------------------------------- sources


def test_load_from_text_builds_the_model() -> None:
    flow = load_workflow(FLOW, path="demo.yaml")
    assert isinstance(flow, Workflow)
    assert flow.file is None
    assert flow.source == FLOW
    assert flow.direktiv_api == "workflow/v1"
    assert [s.id for s in flow.states] == ["get", "set", "call"]
    assert flow.start_state is flow.states[0]
    assert flow.state("set") is flow.states[1]
    getter = flow.states[0]
    assert isinstance(getter, GetterState)
    assert [(v.scope, v.fixed_key, v.as_name) for v in getter.variables] == [
        ("workflow", "x", ""),
        ("namespace", None, "k"),
    ]
    setter = flow.states[1]
    assert isinstance(setter, SetterState)
    assert setter.variables[0].raw_mime_type == "text/plain"
    assert flow.function("echo").type == "knative-workflow"
    assert [f.id for f in flow.used_functions()] == ["echo", "child"]
    assert isinstance(flow.states[2], ParallelState)


def test_load_from_path_and_pathlike(tmp_path: Path) -> None:
    file = tmp_path / "flow.yaml"
    file.write_text(FLOW, encoding="utf-8")
    by_str = load_workflow(str(file))
    by_path = load_workflow(file)
    assert by_str.file == by_path.file == str(file)
    assert [s.id for s in by_str.states] == [s.id for s in by_path.states] == ["get", "set", "call"]


def test_a_single_line_that_is_not_a_file_is_yaml_text() -> None:
    with pytest.raises(WorkflowLoadError) as caught:
        load_workflow("states: []")
    assert str(caught.value) == "<workflow>:1: workflow has no defined states"


def test_missing_file() -> None:
    with pytest.raises(WorkflowLoadError) as caught:
        load_workflow("does/not/exist.yaml")
    assert str(caught.value) == (
        "does/not/exist.yaml: cannot read the flow file: No such file or directory"
    )
    assert caught.value.file == "does/not/exist.yaml"
    assert caught.value.line is None


def test_file_that_is_not_utf8(tmp_path: Path) -> None:
    file = tmp_path / "bad.yaml"
    file.write_bytes(b"states:\n- id: \xff\n")
    with pytest.raises(WorkflowLoadError) as caught:
        load_workflow(file, path="bad.yaml")
    assert str(caught.value) == "bad.yaml: the flow file is not UTF-8 text (byte 14)"


def test_source_must_be_text_or_path() -> None:
    with pytest.raises(TypeError) as caught:
        load_workflow(b"states: []")  # type: ignore[arg-type]
    assert str(caught.value) == "source must be YAML text or a path, not bytes"


def test_error_attributes() -> None:
    with pytest.raises(WorkflowLoadError) as caught:
        load_workflow("states:\n- id: a\n  type: noop\n  transition: b\n", path="f.yaml")
    error = caught.value
    assert (error.file, error.line, error.state) == ("f.yaml", 4, "a")
    assert error.detail == "transition 'b' does not exist"
    assert isinstance(error, ValueError)


def test_cache_is_used_by_every_template() -> None:
    cache = JqCache(8)
    load_workflow(FLOW, cache=cache)
    assert cache.misses == 2  # .k and .var.x, compiled once each at load


def test_a_loaded_flow_is_reused_without_reparsing() -> None:
    flow = load_workflow("states:\n- {id: a, type: noop, transform: {n: 'jq(.n + 1)'}}\n")
    first = flow.run(input={"n": 1}, store="memory://")
    second = flow.run(input={"n": 2}, store="memory://")
    assert (first.output, second.output) == ({"n": 2}, {"n": 3})


# ---------------------------------------------------------------------- decoding rules


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "states:\n- {id: a, ID: b, type: noop}\n",
            '<workflow>:2: state \'a\': fields "id" and "ID" both set "id": keep one',
        ),
        ("states:\n- [a, b]\n", "<workflow>:2: state[0]: invalid: expected a mapping"),
        ("- a\n- b\n", "<workflow>:1: a flow must be a mapping with a 'states:' list"),
        ("", "<workflow>:1: states required"),
        (
            "states:\n- {id: a, type: noop}\nfunctions: {a: 1}\n",
            "<workflow>:3: invalid type for functions: write a list",
        ),
        (
            "states:\n- {id: a, type: noop, timeout: PT1M}\n",
            "<workflow>:2: state 'a': unknown field \"timeout\" (known fields: catch, id, log, "
            "metadata, transform, transition, type)",
        ),
        (
            "states:\n- id: s\n  type: switch\n  transform: {a: 1}\n"
            "  conditions: [{condition: true}]\n",
            "<workflow>:4: state 's': unknown field \"transform\" (known fields: catch, "
            "conditions, defaultTransform, defaultTransition, id, log, metadata, type)",
        ),
        (
            "states:\n- id: a\n  type: noop\n  catch: {error: x}\n",
            "<workflow>:4: state 'a': cannot unmarshal object into field \"catch\" of type array",
        ),
        (
            "start: {state: a}\nstates:\n- {id: a, type: noop}\n",
            "<workflow>:1: bad start: missing 'type' field",
        ),
        (
            "start: {type: cron}\nstates:\n- {id: a, type: noop}\n",
            "<workflow>:1: start: type unrecognized 'cron' (use one of scheduled, event, "
            "eventsXor, eventsAnd, default)",
        ),
        (
            "start: {type: scheduled}\nstates:\n- {id: a, type: noop}\n",
            "<workflow>:1: start invalid: cron required",
        ),
        (
            "functions:\n- {id: f, type: knative-workflow, image: i, size: huge}\n"
            "states:\n- {id: a, type: noop}\n",
            "<workflow>:2: function 'f': size 'huge' is not one of small, medium, large",
        ),
        (
            "functions:\n- {id: f, type: knative-namespace, service: no-slash}\n"
            "states:\n- {id: a, type: noop}\n",
            "<workflow>:2: function 'f': 'no-slash' is a valid service file path",
        ),
        (
            "states:\n- {id: a, type: foreach, array: 'jq(.x)'}\n",
            "<workflow>:2: state 'a': action required",
        ),
        (
            "states:\n- {id: a, type: getter, variables: []}\n",
            "<workflow>:2: state 'a': variables required",
        ),
    ],
)
def test_load_errors(text: str, message: str) -> None:
    with pytest.raises(WorkflowLoadError) as caught:
        load_workflow(text)
    assert str(caught.value) == message


def test_run_time_problems_are_findings_or_strict_load_errors() -> None:
    text = "states:\n- {id: a, type: noop, log: 'jq(.x'}\n"
    message = (
        "<workflow>:2: state 'a': log: jq/js script missing bracket: 'jq(.x' has a 'jq(' "
        "without its closing ')'; add the ')'"
    )
    with pytest.raises(WorkflowLoadError) as caught:
        load_workflow(text, strict=True)
    assert str(caught.value) == message
    assert caught.value.rule == "J101"
    flow = load_workflow(text)  # Direktiv loads it and fails only when 'a' runs
    [finding] = flow.findings
    assert (finding.line, finding.column, finding.code, finding.state) == (2, 28, "J101", "a")
    assert str(finding) == (
        "<workflow>:2:28: J101 state 'a': log: jq/js script missing bracket: 'jq(.x' has a "
        "'jq(' without its closing ')'; add the ')'"
    )
    assert finding.severity == "error"


def test_event_states_and_starts_load() -> None:
    flow = load_workflow(
        """
start:
  type: eventsAnd
  lifespan: PT1H
  events:
  - {type: a, context: {k: v}}
  - {type: b}
states:
- id: wait
  type: eventAnd
  events: [{type: a}]
  transition: send
- id: send
  type: generateEvent
  delay: immediate
  event: {type: x, source: s, data: 'jq(.)', DataContentType: application/json}
"""
    )
    assert flow.start is not None
    assert flow.start.is_event_start
    wait, send = flow.states
    assert isinstance(wait, EventState)
    assert wait.type == "eventsAnd"
    assert isinstance(send, EventState)
    assert send.type == "generateEvent"


def test_action_model() -> None:
    flow = load_workflow(
        """
functions:
- {id: f, type: knative-workflow, image: f:1}
states:
- id: a
  type: action
  async: true
  timeout: PT2M
  action:
    function: f
    input: {x: 1}
    secrets: [one, {name: two, path: p}]
    retries: {max_attempts: 2, delay: PT1S, multiplier: 1.5, codes: ['a\\.', b]}
    files: [{key: k, scope: workflow, as: n, type: tar, permissions: '644'}]
"""
    )
    state = flow.states[0]
    assert isinstance(state, ActionState)
    assert state.async_
    assert state.timeout is not None
    assert state.timeout.minutes == 2
    action = state.action
    assert action.secrets == ("one", "two")
    assert action.retries is not None
    assert action.retries.matches("xa.y")
    assert not action.retries.matches("a")
    assert action.retries.delay_seconds(2, 0.0) == 1.0 * 1.5**2
    assert action.files[0].raw_scope == "workflow"


def test_switch_without_conditions_is_an_error() -> None:
    with pytest.raises(WorkflowLoadError) as caught:
        load_workflow("states:\n- {id: s, type: switch, defaultTransition: s}\n")
    assert str(caught.value) == "<workflow>:2: state 's': conditions required"


def test_switch_model() -> None:
    flow = load_workflow(
        "states:\n- {id: s, type: switch, conditions: [{condition: 'jq(.a)', transition: s}]}\n"
    )
    state = flow.states[0]
    assert isinstance(state, SwitchState)
    assert state.conditions[0].transition == "s"
    assert state.transform is None


# ---------------------------------------------------------------------- YAML layer


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("yes", "yes"),
        ("No", "No"),
        ("on", "on"),
        ("true", True),
        ("TRUE", True),
        ("tRue", "tRue"),
        ("~", None),
        ("Null", None),
        ("1e5", 100000.0),
        ("0x1F", 31),
        ("-0o17", -15),
        ("1_000", 1000),
        ("0755", 493),
        ("08", 8.0),
        ("0b101", 5),
        (".5", 0.5),
        ("-.5e1", -5.0),
        ("2001-12-14", "2001-12-14"),
        ("1:30", "1:30"),
        ("'5'", "5"),
        ("!!str 5", "5"),
        ("!!int '7'", 7),
        ("!!float 1", 1.0),
        ("!!binary aGk=", "hi"),
        ("!custom 5", "5"),
        ("99999999999999999999", 1e20),
    ],
)
def test_scalars_resolve_like_yaml_v3(text: str, value: object) -> None:
    node = compose(f"v: {text}\n")
    assert node is not None
    scalar = node.value[0][1]
    assert isinstance(scalar, ScalarNode)
    result = scalar_value(scalar)
    assert result == value
    assert type(result) is type(value)


def test_special_floats_resolve_but_do_not_convert() -> None:
    node = compose("v: -.Inf\n")
    assert node is not None
    assert scalar_value(node.value[0][1]) == -math.inf
    with pytest.raises(YamlError) as caught:
        to_json(node)
    assert str(caught.value) == "unsupported value '-.Inf': JSON has no infinity or NaN"
    assert caught.value.line == 1


def test_bad_explicit_tag() -> None:
    node = compose("v: !!int abc\n")
    assert node is not None
    with pytest.raises(YamlError) as caught:
        to_json(node)
    assert str(caught.value) == "cannot decode !!int 'abc'"


def test_recursive_alias_is_an_error() -> None:
    with pytest.raises(WorkflowLoadError) as caught:
        load_workflow("states:\n- id: a\n  type: noop\n  transform: &t {x: *t}\n")
    assert str(caught.value) == "<workflow>:4: state 'a': recursive alias: a node contains itself"


def test_excessive_aliasing_is_an_error() -> None:
    lines = [
        "states:",
        "- id: a",
        "  type: noop",
        "  transform:",
        "    l0: &l0 [x, x, x, x, x, x, x, x, x, x]",
    ]
    lines += [f"    l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 7)]
    with pytest.raises(WorkflowLoadError) as caught:
        load_workflow("\n".join(lines) + "\n")
    assert str(caught.value).endswith("state 'a': document contains excessive aliasing")


# ---------------------------------------------------------------------- durations


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("P", {}),
        ("PT", {}),
        ("PT30S", {"seconds": 30}),
        ("P2W", {"weeks": 2}),
        (
            "P1Y2M3W4DT5H6M7S",
            {
                "years": 1,
                "months": 2,
                "weeks": 3,
                "days": 4,
                "hours": 5,
                "minutes": 6,
                "seconds": 7,
            },
        ),
    ],
)
def test_durations(text: str, parts: dict[str, int]) -> None:
    assert parse_duration(text) == Duration(text, **parts)


@pytest.mark.parametrize("text", ["", "PT1.5S", "1D", "P1H", "pt1s", "P-1D", "P1D\n", " P1D", 5])
def test_invalid_durations(text: object) -> None:
    assert parse_duration(text) is None


def test_duration_shift_is_calendar_arithmetic() -> None:
    jan31 = datetime(2023, 1, 31, tzinfo=UTC).timestamp()
    month = parse_duration("P1M")
    assert month is not None
    # Go's AddDate: 31 February 2023 normalises to 3 March.
    assert datetime.fromtimestamp(month.shift(jan31), UTC) == datetime(2023, 3, 3, tzinfo=UTC)
    mixed = parse_duration("P1DT1H")
    assert mixed is not None
    assert mixed.total_seconds(0.0) == 90000.0
    assert str(mixed) == "P1DT1H"


def test_the_same_text_is_loaded_once() -> None:
    text = "states:\n- id: a\n  type: noop\n  transform: 'jq({n: 1})'\n"
    first = load_workflow(text)
    assert load_workflow(text) is first
    assert load_workflow(text, path="other.yaml") is not first  # messages name another file


def test_an_unchanged_file_is_loaded_once_and_a_changed_one_again(tmp_path: Path) -> None:
    file = tmp_path / "flow.yaml"
    file.write_text("states:\n- id: a\n  type: noop\n")
    first = load_workflow(file)
    assert load_workflow(str(file)) is first
    file.write_text("states:\n- id: b\n  type: noop\n")
    second = load_workflow(file)
    assert second is not first
    assert [s.id for s in second.states] == ["b"]


def test_a_private_jq_cache_bypasses_the_loaded_flows() -> None:
    text = "states:\n- id: a\n  type: noop\n"
    assert load_workflow(text, cache=JqCache(0)) is not load_workflow(text, cache=JqCache(0))


def test_a_flow_that_does_not_load_fails_every_time() -> None:
    for _ in range(2):
        with pytest.raises(WorkflowLoadError, match="states required"):
            load_workflow("description: no states\n")


def test_the_loaded_flows_are_bounded() -> None:
    from direktiv_sdk.flow import loader

    first = load_workflow("states:\n- id: s0\n  type: noop\n")
    for i in range(1, loader.LOADED_CACHE_SIZE + 1):
        load_workflow(f"states:\n- id: s{i}\n  type: noop\n")
    assert len(loader._LOADED) <= loader.LOADED_CACHE_SIZE
    assert load_workflow("states:\n- id: s0\n  type: noop\n") is not first


def test_a_pure_model_runs_through_run_workflow() -> None:
    from direktiv_sdk.engine import Workflow, run_workflow
    from direktiv_sdk.flow import loader

    store = "memory://"
    model = loader.load_workflow("states:\n- id: a\n  type: noop\n  transform: 'jq({n: 1})'\n")
    assert not isinstance(model, Workflow)
    assert run_workflow(model, store=store).output == {"n": 1}
    assert Workflow.of(model).run(store=store).output == {"n": 1}


def test_the_first_unknown_field_is_named_in_sorted_order_as_direktiv_does() -> None:
    with pytest.raises(WorkflowLoadError) as caught:
        load_workflow("states:\n- id: a\n  type: noop\n  zeta: 1\n  beta: 2\n")
    assert str(caught.value) == (
        "<workflow>:5: state 'a': unknown field \"beta\" (known fields: catch, id, log, "
        "metadata, transform, transition, type)"
    )
