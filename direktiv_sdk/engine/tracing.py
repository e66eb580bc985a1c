"""A live trace of running instances: one block (text) or one JSON line per state, as it ends.

:class:`TraceWriter` is a :class:`~direktiv_sdk.engine.observe.RunObserver`: the engine calls it
when an instance starts, after every state, and when the instance ends; it writes to a text
stream and flushes, so a person (or ``jq``) sees each state the moment it finishes.
:func:`state_record` builds the JSON object of one state; its field names are stable and
documented in ``docs/interpreter.md``.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Final, Literal, TextIO

from direktiv_sdk._compat import override
from direktiv_sdk.engine.observe import ObservedInstance, RunObserver
from direktiv_sdk.expr.gojson import dumps

if TYPE_CHECKING:
    from direktiv_sdk.engine.results import CallTrace, InstanceResult, StateTrace, VariableWrite
    from direktiv_sdk.expr.gojson import JSON, JSONObject
    from direktiv_sdk.flow.model import Workflow

__all__ = [
    "TRACE_FORMATS",
    "TraceWriter",
    "end_record",
    "result_block",
    "start_record",
    "state_block",
    "state_record",
]

TRACE_FORMATS: Final = ("text", "json")
TraceFormat = Literal["text", "json"]
_SHORT: Final = 2000
_BYTES_SHOWN: Final = 200

_BOLD: Final = "\x1b[1m"
_RED: Final = "\x1b[31m"
_GREEN: Final = "\x1b[32m"
_DIM: Final = "\x1b[2m"
_RESET: Final = "\x1b[0m"


# ---------------------------------------------------------------------- JSON records


def _write_record(write: VariableWrite) -> JSONObject:
    return {
        "scope": write.scope,
        "key": write.key,
        "size": None if write.data is None else len(write.data),
        "mime_type": write.mime_type,
        "via": write.via,
        "deleted": write.data is None,
    }


def _call_record(call: CallTrace) -> JSONObject:
    return {
        "function": call.function,
        "target": call.target,
        "attempt": call.attempt,
        "input": call.input,
        "files": [{"name": f.name, "type": f.type, "size": f.size} for f in call.files],
        "output": call.output,
        "error": None
        if call.error_code is None
        else {"code": call.error_code, "message": call.error_message},
        "writes": [_write_record(w) for w in call.writes],
        "retry_wait": call.retry_wait,
    }


def _base(info: ObservedInstance, event: str) -> JSONObject:
    return {
        "event": event,
        "instance": info.instance_id,
        "parent": info.parent_id,
        "depth": info.depth,
        "path": info.path,
    }


def start_record(info: ObservedInstance) -> JSONObject:
    """Return the ``start`` record of an instance."""
    return {**_base(info, "start"), "namespace": info.namespace}


def state_record(info: ObservedInstance, step: StateTrace) -> JSONObject:
    """Return the ``state`` record of one finished state (the fields are documented)."""
    return {
        **_base(info, "state"),
        "state": step.state,
        "type": step.type,
        "started": step.started,
        "finished": step.finished,
        "input": step.input,
        "var": step.var,
        "writes": [_write_record(w) for w in step.writes],
        "calls": [_call_record(c) for c in step.calls],
        "transform": step.transform,
        "logs": list(step.logs),
        "error": None
        if step.error_code is None
        else {"code": step.error_code, "message": step.error_message, "caught": step.caught},
        "branch": step.branch,
        "next": step.next,
    }


def end_record(info: ObservedInstance, result: InstanceResult) -> JSONObject:
    """Return the ``end`` record of an instance: its status and error."""
    return {
        **_base(info, "end"),
        "status": result.status,
        "error": None
        if result.error_code is None
        else {"code": result.error_code, "message": result.error_message},
    }


# ---------------------------------------------------------------------- text blocks


def _short(value: JSON) -> str:
    text = dumps(value)
    return text if len(text) <= _SHORT else text[:_SHORT] + f"... ({len(text)} characters)"


def _size(size: int) -> str:
    return f"{size} byte" if size == 1 else f"{size} bytes"


class _Painter:
    def __init__(self, color: bool) -> None:
        self.color = color

    def __call__(self, code: str, text: str) -> str:
        return f"{code}{text}{_RESET}" if self.color else text


def _write_line(write: VariableWrite) -> tuple[str, str]:
    """Return the label and text of one variable write."""
    via = "" if write.via == "setter" else f" via {write.via}"
    if write.data is None:
        return "delete:", f"{write.scope} {write.key}{via}"
    shown = write.data.decode("utf-8", "replace")
    if len(shown) > _BYTES_SHOWN:
        shown = shown[:_BYTES_SHOWN] + "..."
    mime = write.mime_type or '""'
    return "set:", f"{write.scope} {write.key} = {shown} ({mime}, {_size(len(write.data))}){via}"


def _call_lines(call: CallTrace, paint: _Painter) -> list[str]:
    lines = [f"call:      {call.function} -> {call.target} (attempt {call.attempt})"]
    lines.append(f"  send:    {_short(call.input)}")
    for file in call.files:
        kind = file.type or "plain"
        lines.append(f"  file:    {file.name} ({kind}, {_size(file.size)})")
    for write in call.writes:
        label, text = _write_line(write)
        lines.append(f"  {label:<8} {text}")
    if call.error_code is not None:
        lines.append(paint(_RED, f"  error:   {call.error_code}: {call.error_message}"))
    else:
        lines.append(f"  return:  {_short(call.output)}")
    if call.retry_wait is not None:
        lines.append(f"  retry:   after {call.retry_wait:g} s")
    return lines


def state_block(step: StateTrace, color: bool = False) -> list[str]:
    """Return the lines of one state's block (without indentation)."""
    paint = _Painter(color)
    lines = [paint(_BOLD, f"-- state {step.state} ({step.type})")]
    body = [f"input:     {_short(step.input)}"]
    body.extend(f"log:       {line}" for line in step.logs)
    if step.var is not None:
        body.append(f"var:       {_short(step.var)}")
    for call in step.calls:
        body.extend(_call_lines(call, paint))
    for write in step.writes:
        if write.via == "setter":
            label, text = _write_line(write)
            body.append(f"{label:<10} {text}")
    if step.transform is not None:
        body.append(f"transform: {_short(step.transform)}")
    if step.error_code is not None:
        how = "caught" if step.caught else "not caught"
        body.append(paint(_RED, f"error:     {step.error_code}: {step.error_message} ({how})"))
    body.append(f"next:      {step.next or '(end)'}")
    return lines + ["   " + line for line in body]


def result_block(result: InstanceResult, color: bool = False) -> list[str]:
    """Return the blocks of every state of ``result`` and its subflows, after the fact."""
    lines = [f"instance {result.instance_id} {result.path} ({result.status})"]
    for step in result.trace:
        lines.extend(state_block(step, color))
    for child in result.children:
        lines.extend("   " + line for line in result_block(child, color))
    error = result.error_json()
    if error is not None:
        lines.append(f"-- {error}")
    return lines


class TraceWriter(RunObserver):
    """Write each state of every instance to ``stream`` as it finishes, then flush."""

    def __init__(self, stream: TextIO, fmt: TraceFormat = "text", *, color: bool = False) -> None:
        if fmt not in TRACE_FORMATS:
            raise ValueError(f"unknown trace format {fmt!r}; use one of {', '.join(TRACE_FORMATS)}")
        self.stream = stream
        self.format = fmt
        self.color = color and fmt == "text"
        self._lock = threading.Lock()

    def _emit(self, depth: int, lines: list[str]) -> None:
        indent = "    " * depth
        with self._lock:
            self.stream.write("".join(f"{indent}{line}\n" for line in lines))
            self.stream.flush()

    def _json(self, record: JSONObject) -> None:
        with self._lock:
            self.stream.write(dumps(record) + "\n")
            self.stream.flush()

    @override
    def instance_started(self, info: ObservedInstance, workflow: Workflow) -> None:
        if self.format == "json":
            self._json(start_record(info))
        else:
            self._emit(info.depth, [f"instance {info.instance_id} {info.path} ({info.namespace})"])

    @override
    def state_finished(self, info: ObservedInstance, step: StateTrace) -> None:
        if self.format == "json":
            self._json(state_record(info, step))
        else:
            self._emit(info.depth, state_block(step, self.color))

    @override
    def instance_finished(
        self, info: ObservedInstance, workflow: Workflow, result: InstanceResult
    ) -> None:
        if self.format == "json":
            self._json(end_record(info, result))
            return
        lines: list[str] = []
        if sum(len(step.logs) for step in result.trace) != len(result.logs):
            # Some lines belong to no state (a crash outside one): show the whole log once.
            lines.extend(f"   log:       {line}" for line in result.logs)
        end = result.status
        if result.error_code:
            end += f": {result.error_code}: {result.error_message}"
        code = _GREEN if result.ok else _RED
        lines.append(_Painter(self.color)(code, f"-- {end}"))
        self._emit(info.depth, lines)
