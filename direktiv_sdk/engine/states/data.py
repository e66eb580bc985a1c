"""The logic of each state type (§3, §4, §8.2, §8.3); actions live in :mod:`_actions`.

Each function takes the instance, the state and the trace record, does the state's work and
returns ``(transform, next state)``; the instance applies the transform and moves on.
"""

from __future__ import annotations

import base64
import errno
from typing import TYPE_CHECKING, Final

from direktiv_sdk.engine._api import (
    SHORT_DEADLINE,
    SOFT_CODE,
    SOFT_MESSAGE,
    InstanceView,
    Outcome,
    Record,
    new_id,
)
from direktiv_sdk.engine.namespace_files import read_namespace_file
from direktiv_sdk.engine.results import VariableWrite
from direktiv_sdk.errors import (
    CatchableError,
    InternalError,
    NestingTooDeepError,
)
from direktiv_sdk.expr import gojson
from direktiv_sdk.expr._gofmt import sprintf
from direktiv_sdk.expr.jx import Snapshot, Template, truth
from direktiv_sdk.flow._checks import decode_base64, file_path, key_error
from direktiv_sdk.flow.model import (
    DelayState,
    ErrorState,
    GetterState,
    SetterState,
    State,
    SwitchState,
    ValidateState,
)

if TYPE_CHECKING:
    from direktiv_sdk.expr.gojson import JSON, JSONObject

__all__ = ["delay", "error", "getter", "noop", "setter", "switch", "validate"]

_TEXT_PLAIN: Final = ("text/plain", "text/plain; charset=utf-8")
_DEFAULT_MIME: Final = "application/json"


def _deadline_passed(inst: InstanceView, record: Record) -> None:
    """Raise the soft timeout when a one-shot state took longer than its 5 s deadline."""
    if inst.clock.now() - record.started > SHORT_DEADLINE:
        raise CatchableError(SOFT_CODE, SOFT_MESSAGE)


def _key(template: Template, snap: Snapshot, index: int) -> str:
    key = template.evaluate(snap)
    if not isinstance(key, str) or not key:
        raise CatchableError(
            "direktiv.jq.notString",
            f"failed to evaluate key as a string for variable at index [{index}]",
        )
    return key


def _decode(data: bytes | None, key: str) -> JSON:
    """Return a stored value as a getter sees it: JSON if it parses, else base64 (§3.2 step 6)."""
    if not data:
        return None
    if len(data) < 16 and data.isdigit() and (data[0] != 48 or len(data) == 1):
        return float(data)  # the common counter case, without the JSON parser
    try:
        return gojson.loads(data)
    except NestingTooDeepError as exc:
        raise InternalError(f"cannot decode variable {key!r}: {exc}") from exc
    except ValueError:
        return base64.b64encode(data).decode("ascii")


def getter(inst: InstanceView, state: State, record: Record) -> Outcome:
    """Read variables into a fresh ``.var`` (system values first, then the others)."""
    assert isinstance(state, GetterState)
    snap: Snapshot | None = None
    system: JSONObject = {}
    batched: list[tuple[str, str, str]] = []
    for index, variable in enumerate(state.variables):
        key = variable.fixed_key
        if key is None:
            if snap is None:
                snap = Snapshot(inst.data)
            key = _key(variable.key, snap, index)
            if variable.scope != "file":
                error = key_error(key)
                if error is not None:
                    raise error
        scope = variable.scope
        if scope == "system":
            system[variable.as_name or key] = _system_value(inst, key)
        else:
            batched.append((variable.as_name or key, scope, key))
    values: JSONObject = system
    store = inst.engine.store
    for name, scope, key in batched:
        if scope == "file":
            values[name] = _decode(_read_file(inst, key), key)
        else:
            found = store.get(inst.ref(scope, key))
            values[name] = None if found is None else _decode(found.data, key)
    _deadline_passed(inst, record)
    inst.data = {**inst.data, "var": values}
    record.var = values
    return state.transform, state.transition


def _system_value(inst: InstanceView, key: str) -> JSON:
    if key == "instance":
        return inst.instance_id
    if key == "uuid":
        return new_id()
    if key == "epoch":
        return int(inst.clock.now())
    if key == "trace":
        return ""
    raise InternalError(f"unknown system key {key} (use instance, uuid, epoch or trace)")


def _read_file(inst: InstanceView, key: str) -> bytes | None:
    clean = file_path(key)
    if clean is None:
        raise InternalError(f"invalid file path {key!r}: every segment must be a valid name")
    try:
        # Through descriptors from the root, no link followed, a FIFO never opened.
        return read_namespace_file(inst.engine.root, clean.split("/")[1:])
    except IsADirectoryError as exc:
        raise InternalError(f"target is not a file: {clean}") from exc
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise InternalError(
                f"cannot read {clean}: {exc.filename!r} is a symbolic link; namespace files "
                "cannot be links"
            ) from exc
        raise InternalError(f"cannot read {clean}: {exc.strerror or exc}") from exc


def _encode(value: JSON, raw_mime: JSON, key: str) -> bytes:
    """Return the bytes a setter stores for ``value`` (§4.2 step 4, decided by the raw mimeType)."""
    if raw_mime == "application/octet-stream" and isinstance(value, str):
        data = decode_base64(value)
        if data is None:
            raise InternalError(
                f"could not decode variable '{key}' base64 string: illegal base64 data"
            )
        return data
    if raw_mime in _TEXT_PLAIN:
        return gojson.format_v(value).encode("utf-8", "surrogatepass")
    if type(value) is int:
        return str(value).encode("ascii")
    return gojson.dumps(value).encode("utf-8", "surrogatepass")


def setter(inst: InstanceView, state: State, record: Record) -> Outcome:
    """Evaluate and encode every entry, then write them; only ``null`` deletes (§9.1)."""
    assert isinstance(state, SetterState)
    snap = Snapshot(inst.data)
    writes: list[VariableWrite] = []
    for index, variable in enumerate(state.variables):
        key = variable.fixed_key
        if key is None:
            key = _key(variable.key, snap, index)
            error = key_error(key)
            if error is not None:
                raise error
        mime = _DEFAULT_MIME
        if variable.mime_type is not None:
            evaluated = variable.mime_type.evaluate(snap)
            mime = evaluated if isinstance(evaluated, str) else ""
        value = variable.value.evaluate(snap)
        data = None if value is None else _encode(value, variable.raw_mime_type, key)
        writes.append(VariableWrite(variable.scope, key, data, mime))
    _deadline_passed(inst, record)
    store = inst.engine.store
    for scope, key, data, mime, _ in writes:
        if data is None:
            store.delete(inst.ref(scope, key))
        else:
            store.set(inst.ref(scope, key), data, mime_type=mime)
    record.writes = tuple(writes)
    return state.transform, state.transition


def switch(inst: InstanceView, state: State, record: Record) -> Outcome:
    """Pick the first condition that is true (§2.8), else the defaults."""
    assert isinstance(state, SwitchState)
    snap = Snapshot(inst.data)
    for index, condition in enumerate(state.conditions):
        try:
            value = condition.condition.evaluate(snap)
        except CatchableError as exc:
            raise CatchableError(
                exc.code, f"switch condition {index} condition failed to run: {exc.message}"
            ) from exc
        if truth(value):
            record.branch = f"condition:{index}"
            return condition.transform, condition.transition
    record.branch = "default"
    return state.default_transform, state.default_transition


def error(inst: InstanceView, state: State, record: Record) -> Outcome:
    """Set the instance error once; the flow goes on and ends as ``failed``."""
    assert isinstance(state, ErrorState)
    if inst.error is not None:
        raise CatchableError(
            "direktiv.workflow.multipleErrors",
            "the workflow instance tried to throw multiple errors",
        )
    snap = Snapshot(inst.data)
    message = state.message.evaluate(snap)
    text = message if isinstance(message, str) else gojson.format_v(message)
    args = [arg.evaluate(snap) for arg in state.args]
    inst.error = (state.error, sprintf(text, args))
    return state.transform, state.transition


def validate(inst: InstanceView, state: State, record: Record) -> Outcome:
    """Check the subject against the state's JSON Schema."""
    assert isinstance(state, ValidateState)
    assert state.validator is not None
    if state.subject is None:
        subject: JSON = inst.data
    else:
        subject = state.subject.evaluate(Snapshot(inst.data))
    if not state.validator.is_valid(subject):
        raise CatchableError(
            "direktiv.schema.failed", "subject failed its JSONSchema validation: <nil>"
        )
    return state.transform, state.transition


def delay(inst: InstanceView, state: State, record: Record) -> Outcome:
    """Wait the state's duration on the clock."""
    assert isinstance(state, DelayState)
    now = inst.clock.now()
    seconds = state.duration.total_seconds(now)
    inst.wait(seconds, inst.clock, deadline=now + seconds + SHORT_DEADLINE)
    return state.transform, state.transition


def noop(inst: InstanceView, state: State, record: Record) -> Outcome:
    """Do nothing."""
    return state.transform, state.transition
