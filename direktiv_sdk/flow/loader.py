"""Load a ``workflow/v1`` flow file into the typed model, with the reference's validation.

Decoding follows Direktiv's pipeline (§1.1): yaml.v3 scalars, every value through JSON, strict
keys matched case-insensitively, then each object's validation and the workflow's cross checks.
A flow loaded twice, from the same text or the same unchanged file, is parsed once. On top of
that every template is compiled now, and templates written without ``jq(...)`` are
checked against the rules the runtime would apply, so a flow that loads never fails later for a
reason the loader could have seen. Errors are :class:`~direktiv_sdk.errors.WorkflowLoadError`
naming the file, the line and the state: ``flow.yaml:12: state 'b': transition 'c' does not
exist``.
"""

from __future__ import annotations

import os
import re
import threading
from collections import OrderedDict
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Final

from direktiv_sdk.errors import WorkflowLoadError
from direktiv_sdk.flow._decode import Fields, LoadContext, fold
from direktiv_sdk.flow._load_base import name_ok
from direktiv_sdk.flow._load_states import ALIASES, StateBuilder
from direktiv_sdk.flow._yaml import (
    MappingNode,
    Node,
    ScalarNode,
    SequenceNode,
    YamlError,
    compose,
    line_of,
)
from direktiv_sdk.flow._yaml import mapping_items as _items
from direktiv_sdk.flow._yaml import scalar_value as _scalar
from direktiv_sdk.flow.model import (
    STATE_TYPES,
    Action,
    ActionState,
    EventDef,
    EventState,
    ForeachState,
    FunctionDef,
    ParallelState,
    Start,
    State,
    SwitchState,
    Timeouts,
    Workflow,
)
from direktiv_sdk.store import KEY_PATTERN

if TYPE_CHECKING:
    from direktiv_sdk.expr.jx import JqCache

__all__ = ["load_workflow"]

_TOP: Final = ("direktiv_api", "url", "description", "timeouts")
_SPLIT: Final = ("start", "states", "functions")
_START_FIELDS: Final[dict[str, tuple[str, ...]]] = {
    "default": ("type", "state"),
    "scheduled": ("type", "state", "cron"),
    "event": ("type", "state", "event"),
    "eventsXor": ("type", "state", "events", "lifespan"),
    "eventsAnd": ("type", "state", "events", "lifespan"),
}
_FUNCTION_FIELDS: Final[dict[str, tuple[str, ...]]] = {
    "knative-workflow": ("type", "id", "image", "size", "cmd", "envs", "patches"),
    "knative-namespace": ("type", "id", "service"),
    "knative-system": ("type", "id", "service"),
    "subflow": ("type", "id", "workflow"),
}
_FUNCTION_TYPES: Final = "reusable, knative-workflow, knative-namespace, knative-system, subflow"
_SERVICE_PATH: Final = re.compile(r"^/([^/]+/?)+[^/]*$")


def _is_file(source: str | os.PathLike[str]) -> bool:
    """Return whether ``source`` names a flow file rather than being the YAML text itself."""
    return isinstance(source, os.PathLike) or (
        isinstance(source, str)
        and "\n" not in source
        and (source.endswith((".yaml", ".yml")) or os.path.isfile(source))
    )


def _read(source: str | os.PathLike[str], path: str | None) -> tuple[str, str | None, str]:
    """Return (text, file or None, name for messages)."""
    if _is_file(source):
        file = os.fspath(source)
        name = path or file
        try:
            raw = Path(file).read_bytes()
        except OSError as exc:
            raise WorkflowLoadError(
                f"cannot read the flow file: {exc.strerror or exc}", file=name
            ) from exc
        try:
            return raw.decode("utf-8-sig"), file, name
        except UnicodeDecodeError as exc:
            raise WorkflowLoadError(
                f"the flow file is not UTF-8 text (byte {exc.start})", file=name
            ) from exc
    if not isinstance(source, str):
        raise TypeError(f"source must be YAML text or a path, not {type(source).__name__}")
    return source, None, path or "<workflow>"


def load_workflow(
    source: str | os.PathLike[str],
    *,
    path: str | None = None,
    cache: JqCache | None = None,
    strict: bool = False,
) -> Workflow:
    """Load and validate a flow from a file path or YAML text.

    Args:
        source: a path (``str`` ending in ``.yaml``/``.yml`` or naming a file, or a
            ``PathLike``), or the YAML text itself.
        path: the name messages use for the flow (default: the file path, or ``<workflow>``).
        cache: the jq program cache templates use (default: the shared one).
        strict: also refuse flows with problems Direktiv only meets when the state runs
            (the errors of ``direktiv-sdk lint``); without it they are kept in
            ``Workflow.findings`` and raised when, and if, that state runs.

    Raises:
        WorkflowLoadError: the flow does not load; the message names file, line and state.
    """
    key = _cache_key(source, path, strict) if cache is None else None
    if key is not None:
        with _LOADED_LOCK:
            loaded = _LOADED.get(key)
            if loaded is not None:
                _LOADED.move_to_end(key)
                return loaded
    text, file, name = _read(source, path)
    ctx = LoadContext(name, strict=strict)
    try:
        root = compose(text)
    except YamlError as exc:
        raise WorkflowLoadError(f"invalid YAML: {exc}", file=name, line=exc.line) from exc
    workflow = _Loader(ctx, cache).workflow(root, text, file)
    if key is not None:
        with _LOADED_LOCK:
            _LOADED[key] = workflow
            if len(_LOADED) > LOADED_CACHE_SIZE:
                _LOADED.popitem(last=False)
    return workflow


LOADED_CACHE_SIZE: Final = 256
"""Flows kept loaded, by text or by unchanged file (models are frozen, so sharing is safe)."""

_LOADED: OrderedDict[tuple[object, ...], Workflow] = OrderedDict()
_LOADED_LOCK: Final = threading.Lock()


def _cache_key(
    source: str | os.PathLike[str], path: str | None, strict: bool
) -> tuple[object, ...] | None:
    """Return what identifies this load: the text, or the file as it is now (``None``: unknown)."""
    if not _is_file(source):
        return ("text", source, path, strict) if isinstance(source, str) else None
    file = os.path.abspath(os.fspath(source))
    try:
        st = os.stat(file)
    except (OSError, ValueError):
        return None  # the load itself reports why the file cannot be read
    return ("file", file, st.st_ino, st.st_size, st.st_mtime_ns, path, strict)


class _Loader:
    def __init__(self, ctx: LoadContext, cache: JqCache | None) -> None:
        self.ctx = ctx
        self.builder = StateBuilder(ctx, cache)

    def workflow(self, root: Node | None, text: str, file: str | None) -> Workflow:
        ctx = self.ctx
        if root is None or (isinstance(root, ScalarNode) and _scalar(root) is None):
            ctx.fail("states required", 1)
        if not isinstance(root, MappingNode):
            ctx.fail("a flow must be a mapping with a 'states:' list", line_of(root))
        try:
            items = {key: (key_node, value) for key, key_node, value in _items(root)}
        except YamlError as exc:
            ctx.fail(str(exc), exc.line)
        for key, (key_node, _) in items.items():
            if key not in _SPLIT and fold(key) in _SPLIT:
                ctx.fail(f'field "{key}" must be spelled "{fold(key)}"', line_of(key_node))
        start = self.start(items["start"][1]) if "start" in items else None
        if "states" not in items:
            ctx.fail("states required", line_of(root))
        rest = MappingNode(
            root.tag,
            [(k, v) for name, (k, v) in items.items() if name not in _SPLIT],
            root.start_mark,
            root.end_mark,
        )
        top = Fields(ctx, rest, _TOP)
        timeouts = self.timeouts(top)
        states_node = items["states"][1]
        if not isinstance(states_node, SequenceNode):
            ctx.fail("invalid type for states: write a list of states", line_of(states_node))
        state_nodes = list(states_node.value)
        if not state_nodes:
            ctx.fail("workflow has no defined states", line_of(states_node))
        states = tuple(self.state(node, i) for i, node in enumerate(state_nodes))
        functions: tuple[FunctionDef, ...] = ()
        if "functions" in items:
            functions_node = items["functions"][1]
            if isinstance(functions_node, SequenceNode):
                function_nodes = list(functions_node.value)
            elif isinstance(functions_node, ScalarNode) and _scalar(functions_node) is None:
                function_nodes = []
            else:
                ctx.fail("invalid type for functions: write a list", line_of(functions_node))
            functions = tuple(self.function(node, i) for i, node in enumerate(function_nodes))
        workflow = Workflow(
            states=states,
            functions=functions,
            start=start,
            timeouts=timeouts,
            description=top.string("description"),
            url=top.string("url"),
            direktiv_api=top.string("direktiv_api"),
            file=file,
            source=text,
            state_map=MappingProxyType({s.id: s for s in states}),
            function_map=MappingProxyType({fn.id: fn for fn in functions}),
            findings=tuple(ctx.findings),
        )
        self.cross_check(workflow)
        return workflow

    # ------------------------------------------------------------------ blocks

    def _typed(self, node: Node, what: str) -> tuple[str, int]:
        """Return the exact-case ``type`` of a state/function/start mapping and its line."""
        if not isinstance(node, MappingNode):
            self.ctx.fail(f"{what}: invalid: expected a mapping", line_of(node))
        for key_node, value in node.value:
            if isinstance(key_node, ScalarNode) and key_node.value == "type":
                try:
                    kind = _scalar(value) if isinstance(value, ScalarNode) else None
                except YamlError as exc:
                    self.ctx.fail(f"{what}: {exc}", exc.line)
                if not isinstance(kind, str):
                    self.ctx.fail(f"{what}: bad data-format for 'type' field", line_of(value))
                return kind, line_of(value)
        raise self.ctx.error(f"{what}: missing 'type' field", line_of(node))

    def start(self, node: Node) -> Start:
        kind, line = self._typed(node, "bad start")
        if kind not in _START_FIELDS:
            choices = "scheduled, event, eventsXor, eventsAnd, default"
            reason = "type required" if not kind else f"type unrecognized {kind!r}"
            self.ctx.fail(f"start: {reason} (use one of {choices})", line)
        f = Fields(self.ctx, node, _START_FIELDS[kind], prefix="start invalid: ")
        if kind == "scheduled" and not f.string("cron"):
            f.fail("cron required")
        events: list[EventDef] = []
        if kind == "event":
            e = f.child("event", ("type", "context", "filters"))
            if not e.string("type"):
                e.fail("event type required")
            events.append(self._start_event(f, f.node_of("event"), ""))
        if kind in ("eventsXor", "eventsAnd"):
            nodes = f.items("events")
            if not nodes:
                f.fail("events required", f.line_of("events"))
            for k, event in enumerate(nodes):
                events.append(self._start_event(f, event, f"events[{k}]: "))
            self.builder.duration(f, "lifespan")
        return Start(
            type=kind,
            state=f.string("state"),
            line=f.line or 0,
            events=tuple(events),
            lifespan=f.string("lifespan") if kind == "eventsAnd" else "",
        )

    def _start_event(self, f: Fields, node: Node | None, prefix: str) -> EventDef:
        e = f.child_of(node, ("type", "context", "filters"), prefix)
        if not e.string("type"):
            e.fail("type required")
        raw = e.json("context")
        if raw is not None and not isinstance(raw, dict):
            e.fail("context must be a mapping of attribute names to values", e.line_of("context"))
        return EventDef(
            type=e.string("type"),
            raw_context=tuple(raw.items()) if isinstance(raw, dict) else (),
            line=e.line or 0,
        )

    def timeouts(self, top: Fields) -> Timeouts:
        if not top.has("timeouts"):
            return Timeouts()
        t = top.child("timeouts", ("interrupt", "kill"), prefix="timeouts: ")
        return Timeouts(
            interrupt=self.builder.duration(t, "interrupt"), kill=self.builder.duration(t, "kill")
        )

    def state(self, node: Node, index: int) -> State:
        kind, line = self._typed(node, f"state[{index}]")
        if ALIASES.get(kind, kind) not in STATE_TYPES:
            what = "type required" if not kind else f"type unrecognized {kind!r}"
            self.ctx.fail(f"state[{index}]: {what} (use one of {', '.join(STATE_TYPES)})", line)
        return self.builder.state(node, index, kind, _peek_id(node))

    def function(self, node: Node, index: int) -> FunctionDef:
        kind, line = self._typed(node, f"function[{index}]")
        canonical = "knative-workflow" if kind == "reusable" else kind
        if canonical not in _FUNCTION_FIELDS:
            what = "type required" if not kind else f"type unrecognized {kind!r}"
            self.ctx.fail(f"function[{index}]: {what} (use one of {_FUNCTION_TYPES})", line)
        peek = _peek_id(node)
        prefix = f"function {peek!r}: " if peek else f"function[{index}]: "
        f = Fields(self.ctx, node, _FUNCTION_FIELDS[canonical], prefix=prefix)
        fid = f.string("id")
        if not fid:
            f.fail("id required")
        if not name_ok(fid):
            f.fail(f"function id must match regex: {KEY_PATTERN}", f.line_of("id"))
        f.prefix = f"function {fid!r}: "
        envs: list[tuple[str, str]] = []
        if canonical == "knative-workflow":
            if not f.string("image"):
                f.fail("image required")
            size = f.string("size")
            if size not in ("", "small", "medium", "large"):
                f.fail(f"size {size!r} is not one of small, medium, large", f.line_of("size"))
            f.string("cmd")
            for k, env in enumerate(f.items("envs")):
                e = f.child_of(env, ("name", "value"), f"envs[{k}]: ")
                envs.append((e.string("name"), e.string("value")))
            for k, patch in enumerate(f.items("patches")):
                p = f.child_of(patch, ("op", "path", "value"), f"patches[{k}]: ")
                p.string("op")
                p.string("path")
                p.json("value")
        elif canonical == "subflow":
            if not f.string("workflow"):
                f.fail("workflow required")
        else:
            service = f.string("service")
            if not service:
                f.fail("service required")
            if not _SERVICE_PATH.match(service):
                f.fail(f"'{service}' is a valid service file path", f.line_of("service"))
        return FunctionDef(
            id=fid,
            type=canonical,
            image=f.string("image") if canonical == "knative-workflow" else "",
            size=f.string("size") if canonical == "knative-workflow" else "",
            cmd=f.string("cmd") if canonical == "knative-workflow" else "",
            service=f.string("service") if "service" in _FUNCTION_FIELDS[canonical] else "",
            workflow=f.string("workflow") if canonical == "subflow" else "",
            envs=tuple(envs),
            line=f.line or 0,
        )

    # ------------------------------------------------------------------ cross checks

    def cross_check(self, workflow: Workflow) -> None:
        fail = self.ctx.fail
        seen: dict[str, State] = {}
        for state in workflow.states:
            if state.id in seen:
                fail(f"state id '{state.id}' is used in more than one state", state.line)
            seen[state.id] = state
        functions: dict[str, FunctionDef] = {}
        for fn in workflow.functions:
            if fn.id in functions:
                fail(f"function id '{fn.id}' is used in more than one function", fn.line)
            functions[fn.id] = fn
        start = workflow.start
        if start is not None and start.state and start.state not in seen:
            fail(
                f"start targets state that does not exist: {start.state!r}",
                start.line,
                None,
                "D002",
            )
        for state in workflow.states:
            for slot, target, line in _transitions(state):
                if target not in seen:
                    fail(f"{slot} '{target}' does not exist", line, state.id, "D002")
            for action in _actions(state):
                if action.function not in functions:
                    fail(
                        f"actions function '{action.function}' does not exist "
                        f"(define it under functions:)",
                        action.line,
                        state.id,
                        "D003",
                    )


def _peek_id(node: Node) -> str | None:
    """Return the state's id when it is a valid one, so early errors can name the state."""
    assert isinstance(node, MappingNode)
    for key_node, value in node.value:
        if isinstance(key_node, ScalarNode) and fold(str(key_node.value)) == "id":
            try:
                candidate = _scalar(value) if isinstance(value, ScalarNode) else None
            except YamlError:
                return None
            return candidate if name_ok(candidate) else None  # type: ignore[return-value]
    return None


def _transitions(state: State) -> list[tuple[str, str, int]]:
    found: list[tuple[str, str, int]] = []
    if state.transition:
        found.append(("transition", state.transition, state.transition_line or state.line))
    found.extend(
        (f"catch[{k}] transition", c.transition, c.line)
        for k, c in enumerate(state.catch)
        if c.transition
    )
    if isinstance(state, SwitchState):
        found.extend(
            (f"conditions[{k}] transition", c.transition, c.line)
            for k, c in enumerate(state.conditions)
            if c.transition
        )
        if state.default_transition:
            found.append(
                ("defaultTransition", state.default_transition, state.transition_line or state.line)
            )
    if isinstance(state, EventState) and state.type == "eventsXor":
        events = state.definition if isinstance(state.definition, list) else []
        for k, event in enumerate(events):
            target = event.get("transition") if isinstance(event, dict) else None
            if isinstance(target, str) and target:
                found.append((f"events[{k}] transition", target, state.line))
    return found


def _actions(state: State) -> list[Action]:
    if isinstance(state, ActionState | ForeachState):
        return [state.action]
    if isinstance(state, ParallelState):
        return list(state.actions)
    return []
