"""The loader's rules for action, foreach, parallel and event states (§5.2, §8.3).

The event state classes (:mod:`direktiv_sdk.flow.events`) load with the first event state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from direktiv_sdk.flow._decode import Fields
from direktiv_sdk.flow._load_base import BuilderBase
from direktiv_sdk.flow._yaml import MappingNode, Node, ScalarNode, scalar_value
from direktiv_sdk.flow.model import (
    Action,
    ActionFile,
    ActionState,
    EventDef,
    ForeachState,
    ParallelState,
    Retries,
    State,
)

if TYPE_CHECKING:
    from direktiv_sdk.expr.jx import Template

__all__ = ["ActionBuilder"]

_ACTION_FIELDS: Final = ("function", "input", "secrets", "retries", "files")
_FILE_FIELDS: Final = ("key", "as", "scope", "type", "permissions")


class ActionBuilder(BuilderBase):
    """Builds actions and the states that call them; and the event states."""

    # ------------------------------------------------------------------ actions

    def action(self, f: Fields, node: Node | None, prefix: str) -> Action:
        """Decode an action definition (of an action, foreach or parallel state)."""
        a = f.child_of(node, _ACTION_FIELDS, prefix)
        function = a.string("function")
        if not function:
            a.fail("must define at least one function or workflow", a.line_of("function"))
        retries = None
        if a.has("retries"):
            r = a.child(
                "retries", ("max_attempts", "delay", "multiplier", "codes"), prefix="retries: "
            )
            max_attempts = int(r.number("max_attempts", integer=True))
            if max_attempts <= 0:
                r.fail("maxAttempts required to be more than 0", r.line_of("max_attempts"))
            codes = tuple(r.strings("codes"))
            if not codes:
                r.fail("retry policy requires at least one defined code", r.line_of("codes"))
            patterns = tuple(self.pattern(r, c, "retry code", r.line_of("codes")) for c in codes)
            retries = Retries(
                max_attempts=max_attempts,
                codes=codes,
                delay=self.duration(r, "delay"),
                multiplier=float(r.number("multiplier")),
                line=r.line or 0,
                patterns=patterns,
            )
        files: list[ActionFile] = []
        for i, file_node in enumerate(a.items("files")):
            ff = a.child_of(file_node, _FILE_FIELDS, f"function file {i}: ")
            if not ff.string("key"):
                ff.fail("key required", ff.line_of("key"))
            for name in _FILE_FIELDS:
                ff.string(name)  # type check: every field is a string
            entry = ActionFile(
                key=self.template(ff, "key"),
                as_name=self.template(ff, "as") if ff.string("as") else None,
                scope=self.template(ff, "scope") if ff.string("scope") else None,
                type=self.template(ff, "type") if ff.string("type") else None,
                permissions=self.template(ff, "permissions") if ff.string("permissions") else None,
                raw_scope=ff.string("scope"),
                line=ff.line or 0,
            )
            problem = self.checks.action_file(entry, i, files)
            if problem:
                ff.report("V205" if problem.startswith("invalid 'type'") else "V204", problem)
            files.append(entry)
        secrets = []
        for k, secret in enumerate(a.items("secrets")):
            value = scalar_value(secret) if isinstance(secret, ScalarNode) else None
            if isinstance(value, str) and value:
                secrets.append(value)
                continue
            s = a.child_of(secret, ("name", "path", "source"), f"secrets[{k}]: ")
            if not s.string("name"):
                s.fail("a secret needs a name")
            secrets.append(s.string("name"))
        return Action(
            function=function,
            input=self.template(a, "input") if a.has("input") else None,
            secrets=tuple(secrets),
            retries=retries,
            files=tuple(files),
            line=a.line or 0,
        )

    def _action(self, f: Fields, common: dict[str, object]) -> State:
        if not f.has("action"):
            f.fail("action required")
        return ActionState(
            action=self.action(f, f.node_of("action"), "action: "),
            timeout=self.duration(f, "timeout"),
            async_=f.boolean("async"),
            **common,  # type: ignore[arg-type]
        )

    def _foreach(self, f: Fields, common: dict[str, object]) -> State:
        if f.json("array") == "":
            f.fail("array required", f.line_of("array"))
        array = self.template(f, "array")
        problem = self.checks.non_array(array)
        if problem:
            f.report("V202", f"array {problem}", "array")
        if not f.has("action"):
            f.fail("action required")
        return ForeachState(
            array=array,
            action=self.action(f, f.node_of("action"), "action: "),
            timeout=self.duration(f, "timeout"),
            **common,  # type: ignore[arg-type]
        )

    def _parallel(self, f: Fields, common: dict[str, object]) -> State:
        nodes = f.items("actions")
        if not nodes:
            f.fail("actions required", f.line_of("actions"))
        actions = tuple(
            self.action(f, node, f"action[{i}] is invalid: ") for i, node in enumerate(nodes)
        )
        mode = f.string("mode") or "and"
        if mode not in ("and", "or"):
            f.fail(f"mode {mode!r} is not a branch mode: use 'and' or 'or'", f.line_of("mode"))
        return ParallelState(
            actions=actions,
            mode=mode,
            timeout=self.duration(f, "timeout"),
            **common,  # type: ignore[arg-type]
        )

    # ------------------------------------------------------------------ events

    def event_def(
        self, f: Fields, node: Node | None, prefix: str, extra: tuple[str, ...] = ()
    ) -> Fields:
        """Check one event definition (``type`` required, ``context`` a mapping); return it."""
        e = f.child_of(node, ("type", "context", *extra), prefix)
        if not e.string("type"):
            e.fail("type required")
        if e.has("context"):
            if not isinstance(e.json("context"), dict):
                e.fail(
                    "context must be a mapping of attribute names to values", e.line_of("context")
                )
            self.template(e, "context")
        return e

    def _context(self, e: Fields) -> tuple[tuple[str, Template], ...]:
        """Compile each ``context`` value (keys in the order written)."""
        node = e.node_of("context")
        if not isinstance(node, MappingNode):
            return ()
        return tuple(
            (str(scalar_value(key)), self.compile(e, value, f"context {scalar_value(key)}"))
            for key, value in node.value
        )

    def _listened(self, f: Fields, node: Node | None, prefix: str) -> EventDef:
        e = self.event_def(f, node, prefix)
        raw = e.json("context")
        return EventDef(
            type=e.string("type"),
            context=self._context(e),
            raw_context=tuple(raw.items()) if isinstance(raw, dict) else (),
            line=e.line or 0,
        )

    def _consumeevent(self, f: Fields, common: dict[str, object]) -> State:
        from direktiv_sdk.flow.events import ConsumeEventState  # noqa: PLC0415 - loaded by the first event state

        if not f.has("event"):
            f.fail("event required")
        return ConsumeEventState(
            definition=f.json("event"),
            event=self._listened(f, f.node_of("event"), "event: "),
            timeout=self.duration(f, "timeout"),
            **common,  # type: ignore[arg-type]
        )

    def _eventsand(self, f: Fields, common: dict[str, object]) -> State:
        from direktiv_sdk.flow.events import EventsAndState  # noqa: PLC0415 - loaded by the first event state

        events = f.items("events")
        if not events:
            f.fail("events required", f.line_of("events"))
        return EventsAndState(
            definition=f.json("events"),
            events=tuple(
                self._listened(f, node, f"events[{k}]: ") for k, node in enumerate(events)
            ),
            timeout=self.duration(f, "timeout"),
            **common,  # type: ignore[arg-type]
        )

    def _eventsxor(self, f: Fields, common: dict[str, object]) -> State:
        from direktiv_sdk.flow.events import EventsXorEntry, EventsXorState  # noqa: PLC0415 - loaded by the first event state

        events = f.items("events")
        if not events:
            f.fail("events required", f.line_of("events"))
        entries = []
        for k, node in enumerate(events):
            x = f.child_of(node, ("event", "transform", "transition"), f"events[{k}]: ")
            entries.append(
                EventsXorEntry(
                    event=self._listened(x, x.node_of("event"), "event: "),
                    transform=self.transform(x),
                    transition=x.string("transition"),
                    line=x.line or 0,
                )
            )
        return EventsXorState(
            definition=f.json("events"),
            events=tuple(entries),
            timeout=self.duration(f, "timeout"),
            **common,  # type: ignore[arg-type]
        )

    def _generateevent(self, f: Fields, common: dict[str, object]) -> State:
        from direktiv_sdk.flow.events import GenerateEventDef, GenerateEventState  # noqa: PLC0415 - loaded by the first event state

        if not f.has("event"):
            f.fail("event required")
        e = self.event_def(f, f.node_of("event"), "event: ", ("source", "data", "datacontenttype"))
        if not e.string("source"):
            e.fail("source required")
        delay_text = f.string("delay")
        delay = None if delay_text in ("", "immediate") else self.duration(f, "delay")
        event = GenerateEventDef(
            type=e.string("type"),
            source=e.string("source"),
            data=self.template(e, "data") if e.has("data") else None,
            datacontenttype=e.string("datacontenttype"),
            context=self._context(e),
        )
        return GenerateEventState(
            definition=f.json("event"),
            event=event,
            delay=delay,
            **common,  # type: ignore[arg-type]
        )
