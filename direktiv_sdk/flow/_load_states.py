"""Decode and validate one state of a flow (the loader's per-type rules, §1.3, §3.1, §4.1, §8)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from direktiv_sdk.expr.gojson import dumps
from direktiv_sdk.flow._decode import Fields
from direktiv_sdk.flow._load_actions import ActionBuilder
from direktiv_sdk.flow._load_base import name_ok
from direktiv_sdk.flow._yaml import Node
from direktiv_sdk.flow.model import (
    DelayState,
    ErrorState,
    GetterState,
    GetterVariable,
    NoopState,
    SetterState,
    SetterVariable,
    State,
    SwitchCondition,
    SwitchState,
    ValidateState,
)
from direktiv_sdk.store import KEY_PATTERN

if TYPE_CHECKING:
    from direktiv_sdk.expr.gojson import JSON

__all__ = ["ALIASES", "StateBuilder"]

_COMMON: Final = ("id", "type", "log", "metadata", "catch")
_FLOW: Final = ("transform", "transition")
_FIELDS: Final[dict[str, tuple[str, ...]]] = {
    "action": (*_COMMON, *_FLOW, "action", "async", "timeout"),
    "consumeEvent": (*_COMMON, *_FLOW, "event", "timeout"),
    "delay": (*_COMMON, *_FLOW, "duration"),
    "error": (*_COMMON, *_FLOW, "error", "message", "args"),
    "eventsAnd": (*_COMMON, *_FLOW, "events", "timeout"),
    "eventsXor": (*_COMMON, "events", "timeout"),
    "foreach": (*_COMMON, *_FLOW, "array", "action", "timeout"),
    "generateEvent": (*_COMMON, *_FLOW, "event", "delay"),
    "getter": (*_COMMON, *_FLOW, "variables"),
    "noop": (*_COMMON, *_FLOW),
    "parallel": (*_COMMON, *_FLOW, "actions", "mode", "timeout"),
    "setter": (*_COMMON, *_FLOW, "variables"),
    "switch": (*_COMMON, "conditions", "defaultTransform", "defaultTransition"),
    "validate": (*_COMMON, *_FLOW, "subject", "schema"),
}
ALIASES: Final = {"eventAnd": "eventsAnd", "eventXor": "eventsXor"}
_GETTER_SCOPES: Final = ("namespace", "workflow", "instance", "system", "file")
_SETTER_SCOPES: Final = ("namespace", "workflow", "instance")


def _choices(scopes: tuple[str, ...]) -> str:
    quoted = [f"'{s}'" for s in scopes]
    return ", ".join(quoted[:-1]) + ", or " + quoted[-1]


class StateBuilder(ActionBuilder):
    """Builds one state of any type from its YAML mapping."""

    # ------------------------------------------------------------------ states

    def state(self, node: Node, index: int, state_type: str, peek_id: str | None) -> State:
        """Decode state number ``index`` whose ``type`` is ``state_type``."""
        state_type = ALIASES.get(state_type, state_type)
        prefix = "" if peek_id else f"state[{index}]: "
        f = Fields(self.ctx, node, _FIELDS[state_type], state=peek_id, prefix=prefix)
        raw_id = f.string("id")
        if not raw_id:
            f.fail("id required")
        if not name_ok(raw_id):
            f.fail(f"state id must match the regex pattern `{KEY_PATTERN}`", f.line_of("id"))
        f.state, f.prefix = raw_id, ""
        common = {
            "id": raw_id,
            "type": state_type,
            "index": index,
            "line": f.line or 0,
            "catch": self.catches(f),
            "log": self.template(f, "log") if f.has("log") else None,
            "metadata": self.template(f, "metadata") if f.has("metadata") else None,
        }
        if state_type not in ("switch", "eventsXor"):
            common["transform"] = self.transform(f)
            common["transition"] = f.string("transition")
            common["transition_line"] = f.line_of("transition") or 0
        elif state_type == "switch":
            common["transition_line"] = f.line_of("defaultTransition") or 0
        build = getattr(self, "_" + state_type.lower())
        state: State = build(f, common)
        return state

    def _noop(self, f: Fields, common: dict[str, object]) -> State:
        return NoopState(**common)  # type: ignore[arg-type]

    def _delay(self, f: Fields, common: dict[str, object]) -> State:
        duration = self.duration(f, "duration", required=True)
        assert duration is not None
        return DelayState(duration=duration, **common)  # type: ignore[arg-type]

    def _error(self, f: Fields, common: dict[str, object]) -> State:
        code = f.string("error")
        if not code:
            f.fail("error required", f.line_of("error"))
        if f.json("message") in (None, ""):
            f.fail("message required", f.line_of("message"))
        message = self.template(f, "message")
        args = tuple(self.compile(f, node, f"args[{i}]") for i, node in enumerate(f.items("args")))
        return ErrorState(error=code, message=message, args=args, **common)  # type: ignore[arg-type]

    def _validate(self, f: Fields, common: dict[str, object]) -> State:
        schema = f.json("schema")
        if not isinstance(schema, dict | bool):
            if schema is None:
                f.fail("schema required", f.line_of("schema"))
            f.fail(f"invalid schema: {dumps(schema)} is not a JSON Schema", f.line_of("schema"))
        # jsonschema takes longer to import than the rest of a small run: only validate needs it.
        from jsonschema import exceptions, validators  # noqa: PLC0415

        cls = validators.validator_for(schema, default=validators.Draft7Validator)
        try:
            cls.check_schema(schema)  # type: ignore[arg-type]
        except exceptions.SchemaError as exc:
            f.fail(f"invalid schema: {exc.message}", f.line_of("schema"))
        subject = None if f.json("subject") in (None, "") else self.template(f, "subject")
        return ValidateState(
            schema=schema,
            subject=subject,
            validator=cls(schema),
            **common,  # type: ignore[arg-type]
        )

    def _switch(self, f: Fields, common: dict[str, object]) -> State:
        conditions = []
        for k, node in enumerate(f.items("conditions")):
            c = f.child_of(node, ("condition", "transform", "transition"), f"conditions[{k}]: ")
            if c.json("condition") == "":
                c.fail("condition required")
            conditions.append(
                SwitchCondition(
                    condition=self.template(c, "condition"),
                    transform=self.transform(c),
                    transition=c.string("transition"),
                    line=c.line_of("transition") or 0,
                )
            )
        if not conditions:
            f.fail("conditions required", f.line_of("conditions"))
        return SwitchState(
            conditions=tuple(conditions),
            default_transform=self.transform(f, "defaultTransform"),
            default_transition=f.string("defaultTransition"),
            **common,  # type: ignore[arg-type]
        )

    def _getter(self, f: Fields, common: dict[str, object]) -> State:
        variables = []
        for i, node in enumerate(f.items("variables")):
            v = f.child_of(node, ("scope", "key", "as"), f"variables[{i}] is invalid: ")
            scope = v.string("scope")
            if scope == "thread":
                v.fail(f"unsupported scope 'thread' (choose {_choices(_GETTER_SCOPES)})")
            if scope not in _GETTER_SCOPES:
                v.fail(f"bad scope {scope!r} (choose {_choices(_GETTER_SCOPES)})")
            if v.json("key") in (None, ""):
                v.fail("key required", v.line_of("key"))
            key = self.template(v, "key")
            problem = self.checks.getter_key(key, scope)
            if problem:
                v.report("V203", problem, "key")
            variables.append(
                GetterVariable(
                    key=key,
                    scope=scope,
                    as_name=v.string("as"),
                    line=v.line or 0,
                    fixed_key=None if problem else self.checks.fixed_string(key),
                )
            )
        if not variables:
            f.fail("variables required", f.line_of("variables"))
        return GetterState(variables=tuple(variables), **common)  # type: ignore[arg-type]

    def _setter(self, f: Fields, common: dict[str, object]) -> State:
        variables = []
        for i, node in enumerate(f.items("variables")):
            v = f.child_of(
                node, ("scope", "key", "value", "mimeType"), f"variables[{i}] is invalid: ", False
            )
            scope = v.string("scope")
            if scope == "file":
                v.fail("'file' scope variables cannot be written to from workflows'")
            if scope == "thread":
                v.fail(f"unsupported scope 'thread' (choose {_choices(_SETTER_SCOPES)})")
            if scope not in _SETTER_SCOPES:
                v.fail(f"bad scope {scope!r} (choose {_choices(_SETTER_SCOPES)})")
            if v.json("key") in (None, ""):
                v.fail("key required", v.line_of("key"))
            raw_value = v.json("value")
            if raw_value == "":
                v.fail("value required: write null to delete the variable", v.line_of("value"))
            key = self.template(v, "key")
            value = self.template(v, "value")
            raw_mime: JSON = v.json("mimeType")
            mime = self.template(v, "mimeType") if raw_mime not in (None, "") else None
            problem = self.checks.setter_key(key)
            if problem:
                v.report("V203", problem)
            bad_value = self.checks.setter_value(value, raw_mime)
            if bad_value:
                v.report("V206", bad_value)
            variables.append(
                SetterVariable(
                    key=key,
                    scope=scope,
                    value=value,
                    mime_type=mime,
                    raw_mime_type=raw_mime,
                    line=v.line or 0,
                    fixed_key=None if problem else self.checks.fixed_string(key),
                )
            )
        if not variables:
            f.fail("variables required", f.line_of("variables"))
        return SetterState(variables=tuple(variables), **common)  # type: ignore[arg-type]
