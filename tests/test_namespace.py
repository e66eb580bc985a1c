"""The namespace session: events, event-started flows, async actions, cancellation, deadlines.

Flows are written into a fresh tree per test; time is a VirtualClock unless a test says
otherwise, so timeouts of an hour cost nothing.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from direktiv_sdk import CloudEvent, InstanceInfo, Namespace
from direktiv_sdk.engine import _session
from direktiv_sdk.engine.clock import SystemClock, VirtualClock
from direktiv_sdk.engine.cloudevent import parse_event, parse_events, parse_http_event
from direktiv_sdk.engine.listeners import glob_match, go_lifespan
from direktiv_sdk.engine.states.events import MAX_EVENT_HOPS
from direktiv_sdk.errors import (
    CloudEventError,
    InstanceNotFoundError,
    InvalidOwnerError,
    NamespaceLimitError,
    WaitTimeoutError,
    WorkflowNotFoundError,
)

START = 1_700_000_000.0


def event(kind: str, **attributes: Any) -> dict[str, Any]:
    """Return a structured-mode CloudEvent of ``kind`` (extra attributes as given)."""
    return {"specversion": "1.0", "id": f"id-{kind}", "source": "test", "type": kind, **attributes}


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture
def ns(tree: Path) -> Iterator[Namespace]:
    with Namespace(tree, store="memory://", clock=VirtualClock(START)) as namespace:
        yield namespace


def data(info: InstanceInfo) -> dict[str, Any]:
    """Return the output object of an ended instance."""
    assert isinstance(info.output, dict), info
    return info.output


def write(tree: Path, name: str, text: str) -> None:
    (tree / name).write_text(text, encoding="utf-8")


WAIT = """\
timeouts: {interrupt: PT2H, kill: PT3H}
states:
- id: wait
  type: consumeEvent
  timeout: PT1H
  event:
    type: greeting
    context:
      who: 'jq(.who)'
"""


# ---------------------------------------------------------------------- waiting states


def test_consume_event_stores_the_event_under_its_type(tree: Path, ns: Namespace) -> None:
    write(tree, "wait.yaml", WAIT)
    instance = ns.start("/wait.yaml", {"who": "ann"})
    ns.settle()
    assert ns.get(instance).status == "pending"
    assert ns.send(event("greeting", who="bob")) == []  # the context filter says no
    assert ns.send(event("greeting", who="ann", datacontenttype="application/json", data={"n": 1}))
    info = ns.wait(instance)
    assert info.status == "complete"
    assert info.output == {
        "who": "ann",
        "greeting": {
            "specversion": "1.0", "id": "id-greeting", "source": "test", "type": "greeting",
            "who": "ann", "datacontenttype": "application/json", "data": {"n": 1},
        },
    }  # fmt: skip


def test_a_waiting_state_times_out_on_the_virtual_clock_at_once(tree: Path, ns: Namespace) -> None:
    write(tree, "wait.yaml", WAIT)
    started = time.monotonic()
    info = ns.wait(ns.start("/wait.yaml", {"who": "ann"}))
    assert time.monotonic() - started < 30  # an hour of virtual time, not of real time
    assert (info.status, info.error_code) == ("failed", "direktiv.cancels.timeout.soft")
    assert info.error_message == "operation timed out"
    assert ns.clock.now() == START + 3600 + 5  # timeout + the 5 s short deadline


def test_context_filters_are_go_globs_on_extensions_and_source(tree: Path, ns: Namespace) -> None:
    write(tree, "wait.yaml", """\
states:
- id: wait
  type: consumeEvent
  event:
    type: order
    context: {region: 'eu-*', source: 'shop*', subject: x}
""")  # fmt: skip
    instance = ns.start("/wait.yaml")
    ns.settle()
    # subject is a standard attribute: the reference never finds it among the extensions
    assert ns.send(event("order", region="eu-west", source="shop1", subject="x")) == []
    write(tree, "wait2.yaml", """\
states:
- id: wait
  type: consumeEvent
  event:
    type: order
    context: {region: 'eu-*', source: 'shop*', n: '4*'}
""")  # fmt: skip
    second = ns.start("/wait2.yaml")
    ns.settle()
    assert ns.send(event("order", region="us-east", source="shop1", n=42)) == []
    assert ns.send(event("order", region="eu-west", source="shop1", n=42)) == [second]
    assert ns.wait(second).status == "complete"
    assert ns.get(instance).status == "pending"


@pytest.mark.parametrize(
    ("pattern", "text", "match"),
    [
        ("*", "", True), ("", "", True), ("a", "a", True), ("a", "ab", False),
        ("a*", "abc", True), ("*c", "abc", True), ("a*c", "abbbc", True), ("a*c", "abcd", False),
        ("a*b*c", "axbyc", True), ("a*b*c", "acb", False), ("*x*", "axb", True),
    ],
)  # fmt: skip
def test_glob_match_is_go_glob(pattern: str, text: str, match: bool) -> None:
    assert glob_match(pattern, text) is match


def test_events_and_collects_one_event_per_type(tree: Path, ns: Namespace) -> None:
    write(tree, "and.yaml", """\
states:
- id: both
  type: eventsAnd
  events:
  - type: a
  - type: b
""")  # fmt: skip
    instance = ns.start("/and.yaml")
    ns.settle()
    ns.send(event("a", n="first"))
    ns.send(event("a", n="second"))  # a type already collected: dropped
    ns.settle()
    assert ns.get(instance).status == "pending"
    ns.send(event("b", n="b"))
    output = data(ns.wait(instance))
    assert (output["a"]["n"], output["b"]["n"]) == ("first", "b")


def test_events_xor_takes_the_transition_of_the_first_event(tree: Path, ns: Namespace) -> None:
    write(tree, "xor.yaml", """\
states:
- id: either
  type: eventsXor
  events:
  - event: {type: yes}
    transition: said-yes
  - event: {type: no}
    transform: {answer: no}
- id: said-yes
  type: noop
  transform: {answer: yes}
""")  # fmt: skip
    first = ns.start("/xor.yaml")
    ns.settle()
    ns.send(event("no"))
    assert ns.wait(first).output == {"answer": "no"}
    second = ns.start("/xor.yaml")
    ns.settle()
    ns.send(event("yes"))
    assert ns.wait(second).output == {"answer": "yes"}


# ---------------------------------------------------------------------- generate → consume


GENERATE = """\
states:
- id: send
  type: generateEvent
  event:
    type: note
    source: generator
    data: 'jq(.payload)'
    datacontenttype: '{ctype}'
    context: {{tag: 'jq(.tag)', Bad: x}}
"""


@pytest.mark.parametrize(
    ("ctype", "payload", "key", "stored", "stored_type"),
    [
        ("", {"a": 1}, "data", {"a": 1}, "application/json"),
        ("text/plain", "aGk=", "data_base64", "aGk=", "text/plain"),
        ("text/plain", "not base64!", "data", "not base64!", "application/json"),
        ("application/json", "aGk=", "data", "aGk=", "application/json"),
    ],
)
def test_generated_events_reach_other_flows(  # noqa: PLR0917 - one row of the table
    tree: Path, ns: Namespace, ctype: str, payload: Any, key: str, stored: Any, stored_type: str
) -> None:
    write(tree, "gen.yaml", GENERATE.format(ctype=ctype))
    write(
        tree,
        "on-note.yaml",
        "start: {type: event, event: {type: note}}\nstates:\n- {id: a, type: noop}\n",
    )
    generator = ns.wait(ns.start("/gen.yaml", {"payload": payload, "tag": 7}))
    assert generator.status == "complete"
    assert generator.result is not None
    assert any("'Bad'" in line for line in generator.result.logs)  # refused by the SDK: dropped
    (started,) = ns.instances("/on-note.yaml")
    note = data(ns.wait(started.instance_id))["note"]
    assert (note[key], note["datacontenttype"], note["tag"]) == (stored, stored_type, 7)
    assert "Bad" not in note


def test_a_delayed_event_waits_for_the_clock(tree: Path, ns: Namespace) -> None:
    write(
        tree,
        "gen.yaml",
        (
            "states:\n"
            "- id: s\n"
            "  type: generateEvent\n"
            "  delay: PT10M\n"
            "  event: {type: later, source: s}\n"
        ),
    )
    write(tree, "wait.yaml", "states:\n- id: w\n  type: consumeEvent\n  event: {type: later}\n")
    waiting = ns.start("/wait.yaml")
    ns.settle()
    ns.wait(ns.start("/gen.yaml"))
    assert ns.get(waiting).status == "pending"
    assert ns.wait(waiting).status == "complete"
    assert ns.clock.now() == START + 600


def test_an_async_subflow_generates_the_event_its_parent_waits_for(
    tree: Path, ns: Namespace
) -> None:
    write(
        tree,
        "child.yaml",
        (
            "states:\n"
            "- {id: d, type: delay, duration: PT1S, transition: g}\n"
            "- id: g\n"
            "  type: generateEvent\n"
            "  event: {type: done, source: child}\n"
        ),
    )
    write(tree, "parent.yaml", """\
functions:
- {id: child, type: subflow, workflow: child.yaml}
states:
- id: spin
  type: action
  async: true
  action: {function: child}
  transition: listen
- id: listen
  type: consumeEvent
  timeout: PT1M
  event: {type: done}
  transform: {result: x}
""")  # fmt: skip
    parent = ns.start("/parent.yaml")
    assert ns.wait(parent).output == {"result": "x"}
    (child,) = ns.instances("/child.yaml")
    assert (child.invoker, child.parent, child.status) == ("async", parent, "complete")


# ---------------------------------------------------------------------- event-started flows


def test_an_event_starts_a_flow_with_the_event_as_data(tree: Path, ns: Namespace) -> None:
    write(
        tree,
        "start.yaml",
        (
            "start: {type: event, event: {type: hello, context: {lang: en}}}\n"
            "states:\n"
            "- {id: a, type: noop}\n"
        ),
    )
    assert ns.send(event("hello", lang="de")) == []
    (started,) = ns.send(event("hello", lang="en", data={"x": 1}))
    output = data(ns.wait(started))
    assert output["hello"]["data"] == {"x": 1}
    assert [i.invoker for i in ns.instances("/start.yaml")] == ["cloudevent"]


def test_starting_an_event_flow_by_hand_fails_as_in_direktiv(tree: Path, ns: Namespace) -> None:
    write(
        tree,
        "start.yaml",
        "start: {type: event, event: {type: hello}}\nstates:\n- {id: a, type: noop}\n",
    )
    info = ns.wait(ns.start("/start.yaml"))
    assert (info.status, info.error_code) == ("failed", "direktiv.workflow.invoke")
    assert info.error_message == "cannot manually invoke event-based workflow"


def test_events_and_start_respects_lifespan(tree: Path, ns: Namespace) -> None:
    write(
        tree,
        "and.yaml",
        (
            "start:\n"
            "  type: eventsAnd\n"
            "  lifespan: PT1M\n"
            "  events: [{type: a}, {type: b}]\n"
            "states:\n"
            "- {id: s, type: noop}\n"
        ),
    )
    assert ns.send(event("a")) == []
    assert isinstance(ns.clock, VirtualClock)
    ns.clock.advance(120)  # the first a is too old when b comes
    assert ns.send(event("b")) == []
    (started,) = ns.send(event("a"))
    assert set(data(ns.wait(started))) == {"a", "b"}


def test_lifespan_is_converted_the_reference_way() -> None:
    assert go_lifespan("PT1H30M") == 5400
    assert go_lifespan("P1M") == 60  # the reference turns a month into a minute
    assert go_lifespan("P1D") is None  # Go's ParseDuration has no days: no start listener


def test_a_bad_lifespan_is_reported_as_a_problem(tree: Path, ns: Namespace) -> None:
    write(
        tree,
        "and.yaml",
        (
            "start:\n"
            "  type: eventsAnd\n"
            "  lifespan: P1D\n"
            "  events: [{type: a}, {type: b}]\n"
            "states:\n"
            "- {id: s, type: noop}\n"
        ),
    )
    ns.send(event("a"))
    assert ns.send(event("b")) == []
    assert any("/and.yaml: lifespan 'P1D'" in p for p in ns.problems)


# ---------------------------------------------------------------------- cancellation, deadlines


def test_cancel_ends_an_instance_with_cancels_api(tree: Path, ns: Namespace) -> None:
    write(
        tree,
        "delay.yaml",
        (
            "states:\n"
            "- id: a\n"
            "  type: delay\n"
            "  duration: PT5S\n"
            "  catch: [{error: direktiv.cancels.api}]\n"
        ),
    )
    instance = ns.start("/delay.yaml")
    assert ns.cancel(instance) is True
    assert ns.cancel(instance) is False  # twice: already cancelled
    info = ns.wait(instance)
    assert (info.status, info.error_code, info.error_message) == (
        "cancelled", "direktiv.cancels.api", "cancelled by api request",
    )  # fmt: skip
    assert ns.cancel(instance) is False  # a finished instance
    with pytest.raises(InstanceNotFoundError, match="no instance 'nope'"):
        ns.cancel("nope")


def test_cancel_reaches_running_subflows_as_cancels_parent(tree: Path) -> None:
    write(tree, "child.yaml", "states:\n- {id: d, type: delay, duration: PT1H}\n")
    write(
        tree,
        "parent.yaml",
        (
            "functions:\n"
            "- {id: c, type: subflow, workflow: child.yaml}\n"
            "states:\n"
            "- {id: a, type: action, action: {function: c}}\n"
        ),
    )
    with Namespace(tree, store="memory://", clock=SystemClock()) as ns:
        parent = ns.start("/parent.yaml")
        for _ in range(200):
            if ns.instances("/child.yaml"):
                break
            time.sleep(0.01)
        ns.cancel(parent)
        assert ns.wait(parent, timeout=10).status == "cancelled"
        (child,) = ns.instances("/child.yaml")
        assert (child.status, child.error_code) == ("cancelled", "direktiv.cancels.parent")


FAN = """\
{timeouts}functions:
- {{id: next, type: subflow, workflow: {child}}}
states:
- id: fan
  type: foreach
  array: 'jq([1, 2, 3])'
  action: {{function: next}}
"""


def _fan_out(tree: Path, kill: str) -> None:
    write(tree, "l0.yaml", FAN.format(timeouts=f"timeouts: {{kill: {kill}}}\n", child="l1.yaml"))
    write(tree, "l1.yaml", FAN.format(timeouts="", child="l2.yaml"))
    write(tree, "l2.yaml", FAN.format(timeouts="", child="l3.yaml"))
    write(tree, "l3.yaml", "states:\n- {id: d, type: delay, duration: PT2M}\n")


def test_a_kill_deadline_ends_a_4_level_fan_out_of_subflows_in_time(
    tree: Path, ns: Namespace
) -> None:
    _fan_out(tree, "PT10S")
    info = ns.wait(ns.start("/l0.yaml"))
    assert (info.status, info.error_code) == ("failed", "direktiv.cancels.timeout.hard")
    assert ns.clock.now() - START <= 11  # not the 2 minutes the leaves would sleep, 27 times


def test_a_kill_deadline_stops_real_sleeping_subflows(tree: Path) -> None:
    _fan_out(tree, "PT1S")
    with Namespace(tree, store="memory://", clock=SystemClock()) as ns:
        started = time.monotonic()
        info = ns.wait(ns.start("/l0.yaml"), timeout=60)
        took = time.monotonic() - started
    assert (info.status, info.error_code) == ("failed", "direktiv.cancels.timeout.hard")
    assert took < 60  # the leaves' 2-minute delays were cut short by the parent's deadline


# ---------------------------------------------------------------------- hostile input


_BASE = '"specversion":"1.0","id":"1","source":"s","type":"t"'


@pytest.mark.parametrize(
    ("raw", "attribute", "words"),
    [
        (b"[1]", "event", "JSON object"),
        (b"{", "event", "not JSON"),
        (b'{"specversion":"1.0","source":"s","type":"t"}', "id", "missing required attribute 'id'"),
        (b'{"specversion":"1.0","id":"1","type":"t"}', "source", "missing required"),
        (b'{"specversion":"0.3","id":"1","source":"s","type":"t"}', "specversion", "be '1.0'"),
        (b'{"specversion":"1.0","id":"","source":"s","type":"t"}', "id", "must not be None"),
        (("{" + _BASE + ',"Up":1}').encode(), "Up", "lowercase"),
        (("{" + _BASE + ',"x":{}}').encode(), "x", "string, number or bool"),
        (("{" + _BASE + ',"time":"noon"}').encode(), "time", "RFC 3339"),
        (("{" + _BASE + ',"data_base64":"%%"}').encode(), "data_base64", "base64"),
    ],
)  # fmt: skip
def test_malformed_events_name_the_bad_attribute(raw: bytes, attribute: str, words: str) -> None:
    with pytest.raises(CloudEventError, match="invalid CloudEvent") as caught:
        parse_event(raw)
    assert caught.value.attribute == attribute
    assert words in str(caught.value)


def test_a_bad_event_in_a_batch_delivers_nothing(tree: Path, ns: Namespace) -> None:
    write(
        tree,
        "start.yaml",
        "start: {type: event, event: {type: hello}}\nstates:\n- {id: a, type: noop}\n",
    )
    with pytest.raises(CloudEventError, match="missing required attribute 'type'"):
        ns.send_all([event("hello"), {"specversion": "1.0", "id": "2", "source": "s"}])
    assert ns.instances() == []
    with pytest.raises(CloudEventError, match=r"line 2: missing required attribute 'id'"):
        parse_events(
            b'{"specversion":"1.0","id":"1","source":"s","type":"t"}\n'
            b'{"specversion":"1.0","source":"s","type":"t"}\n'
        )


def test_binary_mode_http_events_use_the_headers() -> None:
    headers = {
        "ce-specversion": "1.0",
        "ce-id": "9",
        "ce-source": "s",
        "ce-type": "t",
        "ce-lang": "en",
        "Content-Type": "application/json",
    }
    parsed = parse_http_event(headers, b'{"a": 1}')
    assert isinstance(parsed, CloudEvent)
    assert parsed.as_data() == {
        "specversion": "1.0",
        "id": "9",
        "source": "s",
        "type": "t",
        "lang": "en",
        "datacontenttype": "application/json",
        "data": {"a": 1},
    }
    with pytest.raises(
        CloudEventError, match=r"missing required attribute 'source' \(header ce-source\)"
    ):
        parse_http_event({"ce-specversion": "1.0", "ce-id": "9", "ce-type": "t"}, b"")


def test_unknown_namespaces_flows_and_ids_are_clear_errors(tree: Path, ns: Namespace) -> None:
    with pytest.raises(InvalidOwnerError):
        Namespace(tree, namespace="no such/namespace", store="memory://")
    with pytest.raises(WorkflowNotFoundError, match=r"workflow not found: /missing\.yaml"):
        ns.start("/missing.yaml")
    with pytest.raises(InstanceNotFoundError):
        ns.wait("missing")
    assert ns.send(event("nobody.listens")) == []


def test_a_flood_of_events_into_waiting_instances_stays_bounded(tree: Path, ns: Namespace) -> None:
    write(tree, "wait.yaml", WAIT)
    ids = [ns.start("/wait.yaml", {"who": f"w{k}"}) for k in range(100)]
    ns.settle()
    for n in range(10_000):
        assert ns.send(event("greeting", who=f"stranger{n}")) == []
    assert ns.send(event("greeting", who="w7")) == [ids[7]]
    assert ns.wait(ids[7]).status == "complete"
    assert sum(i.status == "pending" for i in ns.instances()) == 99
    assert ns._session._parked.__len__() == 99  # no listener leaked for the woken one


def test_flows_generating_each_others_events_end_with_a_clear_error(
    tree: Path, ns: Namespace
) -> None:
    for me, other in (("ping", "pong"), ("pong", "ping")):
        write(
            tree,
            f"{me}.yaml",
            f"start: {{type: event, event: {{type: {me}}}}}\n"
            "states:\n"
            "- id: g\n"
            "  type: generateEvent\n"
            f"  event: {{type: {other}, source: {me}}}\n",
        )
    ns.send(event("ping"))
    for _ in range(MAX_EVENT_HOPS + 5):
        ns.settle()
    infos = ns.instances()
    assert len(infos) == MAX_EVENT_HOPS + 1
    failed = [i for i in infos if i.status == "failed"]
    assert [i.error_code for i in failed] == ["direktiv.limits.events"]
    assert "in a loop" in (failed[0].error_message or "")


def test_too_many_pending_instances_is_a_clear_error(
    tree: Path, ns: Namespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_session, "MAX_LIVE_INSTANCES", 3)
    write(tree, "wait.yaml", WAIT)
    for k in range(3):
        ns.start("/wait.yaml", {"who": k})
    with pytest.raises(NamespaceLimitError, match="at most 3 at once"):
        ns.start("/wait.yaml", {"who": 9})


def test_cancel_wakes_an_instance_waiting_for_an_event(tree: Path, ns: Namespace) -> None:
    write(tree, "wait.yaml", WAIT)
    instance = ns.start("/wait.yaml", {"who": "x"})
    ns.settle()
    assert ns.cancel(instance)
    assert ns.wait(instance).error_code == "direktiv.cancels.api"
    assert ns.clock.now() == START  # woken by the cancel, not by its timeout
    assert ns.send(event("greeting", who="x")) == []  # its listener is gone


def test_waiting_is_bounded_in_real_time(tree: Path) -> None:
    write(tree, "wait.yaml", WAIT)
    with Namespace(tree, store="memory://", clock=SystemClock()) as ns:
        instance = ns.start("/wait.yaml", {"who": "x"})
        with pytest.raises(
            WaitTimeoutError, match=rf"instance {instance} did not finish within 0\.2 s"
        ):
            ns.wait(instance, timeout=0.2)
        ns.settle(timeout=10)  # it waits for an event: the namespace is settled
        assert ns.get(instance).status == "pending"
    assert ns.get(instance).status == "cancelled"  # closing cancels what is pending


def test_a_failing_branch_cancels_the_running_subflows(tree: Path) -> None:
    write(tree, "slow.yaml", "states:\n- {id: d, type: delay, duration: PT1H}\n")
    write(tree, "bad.yaml", "states:\n- {id: e, type: error, error: my.error, message: boom}\n")
    write(
        tree,
        "parent.yaml",
        "functions:\n"
        "- {id: slow, type: subflow, workflow: slow.yaml}\n"
        "- {id: bad, type: subflow, workflow: bad.yaml}\n"
        "states:\n"
        "- id: both\n  type: parallel\n  actions: [{function: slow}, {function: bad}]\n"
        "  catch: [{error: my.error}]\n",
    )
    with Namespace(tree, store="memory://", clock=SystemClock()) as ns:
        parent = ns.wait(ns.start("/parent.yaml"), timeout=30)
        assert parent.status == "complete"  # the error was caught, the child cancelled anyway
        (slow,) = ns.instances("/slow.yaml")
        assert (slow.status, slow.error_code) == ("cancelled", "direktiv.cancels.parent")


def test_instances_sleeping_at_the_same_time_overlap_in_virtual_time(
    tree: Path, ns: Namespace
) -> None:
    write(tree, "nap.yaml", "states:\n- {id: d, type: delay, duration: PT10S}\n")
    first, second = ns.start("/nap.yaml"), ns.start("/nap.yaml")
    assert ns.wait(first).status == ns.wait(second).status == "complete"
    assert ns.clock.now() == START + 10


def test_a_generated_event_that_would_start_too_many_fails_its_state(
    tree: Path, ns: Namespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_session, "MAX_LIVE_INSTANCES", 2)
    write(tree, "wait.yaml", WAIT)
    write(
        tree, "on.yaml", "start: {type: event, event: {type: go}}\nstates:\n- {id: a, type: noop}\n"
    )
    write(
        tree,
        "gen.yaml",
        "states:\n- id: g\n  type: generateEvent\n  event: {type: go, source: s}\n",
    )
    ns.start("/wait.yaml", {"who": 1})
    ns.settle()
    info = ns.wait(ns.start("/gen.yaml"))  # 2 pending with it: the event cannot start a third
    assert (info.status, info.error_code) == ("failed", "direktiv.limits.instances")
    assert "at most 2" in (info.error_message or "")
