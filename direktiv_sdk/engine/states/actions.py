"""Action, foreach and parallel states: input, files, retries, function calls and subflows (§5).

Knative functions are called through the
:class:`~direktiv_sdk.engine.functions.FunctionRunner` mapped to their id; subflow functions
run a child instance in-process (:meth:`~direktiv_sdk.engine._api.InstanceView.run_child`).
Foreach and parallel branches are scheduled by :mod:`direktiv_sdk.engine.states.branches`.
"""

from __future__ import annotations

import base64
import posixpath
import threading
from typing import TYPE_CHECKING, Final

from direktiv_sdk.engine._api import (
    MAX_SUBFLOW_DEPTH,
    SOFT_CODE,
    SOFT_MESSAGE,
    InstanceView,
    Outcome,
    Record,
    new_id,
    roundtrip,
)
from direktiv_sdk.engine.clock import Clock, VirtualClock, _reset_current, _set_current
from direktiv_sdk.engine.functions import (
    FunctionCall,
    FunctionFile,
    require_runners,
)
from direktiv_sdk.engine.results import CallTrace, FileInfo, VariableWrite
from direktiv_sdk.engine.states.branches import Task, run_branches
from direktiv_sdk.errors import (
    CatchableError,
    FlowError,
    InternalError,
    NestingTooDeepError,
    UncatchableError,
)
from direktiv_sdk.expr import gojson
from direktiv_sdk.expr.jx import Snapshot
from direktiv_sdk.flow._checks import check_file
from direktiv_sdk.flow.model import (
    Action,
    ActionState,
    ForeachState,
    FunctionDef,
    ParallelState,
    State,
)

if TYPE_CHECKING:
    from direktiv_sdk.expr.gojson import JSON, JSONObject
    from direktiv_sdk.flow._duration import Duration

__all__ = ["child_path", "run_action", "run_foreach", "run_parallel"]

DEFAULT_TIMEOUT: Final = 900.0
"""Seconds an action may take when its state has no ``timeout`` (15 minutes)."""
FOREACH_LIMIT: Final = 3
"""Foreach branches running at the same time."""


class _FunctionError(CatchableError):
    """An error the function (or a child instance) reported: the only kind retries apply to."""


def run_action(inst: InstanceView, state: State, record: Record) -> Outcome:
    """Call the action's function once (with retries) and store its result as ``.return``."""
    assert isinstance(state, ActionState)
    if state.async_:
        _fire_and_forget(inst, state)
        return state.transform, state.transition
    result = _call(
        inst,
        record,
        state.action,
        source=inst.data,
        iterator=inst.iterator,
        timeout=state.timeout,
        clock=inst.clock,
        cancel=None,
    )
    inst.data = {**inst.data, "return": result}
    return state.transform, state.transition


def _fire_and_forget(inst: InstanceView, state: ActionState) -> None:
    """Start the action in the background (the state moves on at once); log how it ended."""
    hub = inst.engine.hub
    # On a virtual clock the call takes its time on its own fork: the instance does not wait.
    clock = inst.clock.fork() if isinstance(inst.clock, VirtualClock) else inst.clock
    source = inst.data

    def work() -> None:
        token = _set_current(clock)
        try:
            _call(
                inst,
                Record(0),  # its own: the state's record is finished before the call ends
                state.action,
                source=source,
                iterator=inst.iterator,
                timeout=state.timeout,
                clock=clock,
                cancel=None,
                invoker="async",
            )
        except (_FunctionError, InternalError) as exc:
            inst.log(f"async action {state.action.function!r} ended with {exc.code}: {exc.message}")
        except FlowError as exc:
            inst.log(f"async action {state.action.function!r} ended with {exc.code}: {exc.message}")
        finally:
            _reset_current(token)

    if hub is None:
        work()
    else:
        hub.spawn(f"direktiv-async-{state.id}", work)


def run_foreach(inst: InstanceView, state: State, record: Record) -> Outcome:
    """Call the action once per element (the element is the data), at most 3 at a time."""
    assert isinstance(state, ForeachState)
    array = state.array.evaluate(Snapshot(inst.data))
    if not isinstance(array, list):
        raise CatchableError("direktiv.foreach.badArray", "jq produced non-array output")
    if not array:
        return state.transform, state.transition
    tasks = [
        _task(inst, record, state.action, element, index, state.timeout)
        for index, element in enumerate(array)
    ]
    results = run_branches(inst.clock, tasks, FOREACH_LIMIT, "and")
    inst.data = {**inst.data, "return": results}
    return state.transform, state.transition


def run_parallel(inst: InstanceView, state: State, record: Record) -> Outcome:
    """Call every action at once; ``and`` waits for all, ``or`` for the first success."""
    assert isinstance(state, ParallelState)
    tasks = [_task(inst, record, action, inst.data, 0, state.timeout) for action in state.actions]
    results = run_branches(inst.clock, tasks, None, state.mode)
    inst.data = {**inst.data, "return": results}
    return state.transform, state.transition


def _task(  # noqa: PLR0917 - one branch's call, as _call takes it
    inst: InstanceView,
    record: Record,
    action: Action,
    source: JSON,
    iterator: int,
    timeout: Duration | None,
) -> Task:
    def task(clock: Clock, cancel: threading.Event) -> JSON:
        return _call(
            inst,
            record,
            action,
            source=source,
            iterator=iterator,
            timeout=timeout,
            clock=clock,
            cancel=cancel,
        )

    return task


# ---------------------------------------------------------------------- one action, with retries


def _call(
    inst: InstanceView,
    record: Record,
    action: Action,
    *,
    source: JSON,
    iterator: int,
    timeout: Duration | None,
    clock: Clock,
    cancel: threading.Event | None,
    invoker: str = "subflow",
) -> JSON:
    function = inst.workflow.function(action.function)
    seconds = DEFAULT_TIMEOUT if timeout is None else timeout.total_seconds(clock.now())
    retries = action.retries
    done = 0
    while True:
        inst.check_time(clock)
        deadline = clock.now() + seconds
        data = _action_data(inst, action, source)
        snap = Snapshot(data)
        value = data if action.input is None else action.input.evaluate(snap)
        body = gojson.dumps(value).encode("utf-8", "surrogatepass")
        call = _Attempt(function.id, done + 1, value)
        try:
            if function.is_subflow and function.id not in inst.engine.runners:
                call.target = f"subflow {child_path(function.workflow, inst.path)}"
                result = _subflow(
                    inst,
                    function,
                    body=body,
                    iterator=iterator,
                    deadline=deadline,
                    clock=clock,
                    cancel=cancel,
                    invoker=invoker,
                )
            else:
                files = _files(action, snap)
                result = _knative(
                    inst,
                    function,
                    call,
                    body=body,
                    files=files,
                    iterator=iterator,
                    deadline=deadline,
                    seconds=seconds,
                    clock=clock,
                )
        except _FunctionError as exc:
            if retries is None or not retries.matches(exc.code):
                record.calls.append(call.trace(error=exc))
                raise
            if done >= retries.max_attempts:
                record.calls.append(call.trace(error=exc))
                raise CatchableError(
                    "direktiv.retries.exceeded", "maximum retries exceeded"
                ) from exc
            wait = retries.delay_seconds(done, clock.now())
            record.calls.append(call.trace(error=exc, retry_wait=wait))
            inst.log(f"retrying {action.function!r} after {exc.code}: {exc.message}")
            inst.wait(wait, clock)
            done += 1
        except FlowError as exc:
            record.calls.append(call.trace(error=exc))
            raise
        else:
            record.calls.append(call.trace(output=result))
            return result


class _Attempt:
    """What one attempt to call a function has shown so far, for its :class:`CallTrace`."""

    __slots__ = ("attempt", "files", "function", "input", "target", "writes")

    def __init__(self, function: str, attempt: int, input: JSON) -> None:
        self.function = function
        self.attempt = attempt
        self.input = input
        self.target = ""
        self.files: tuple[FileInfo, ...] = ()
        self.writes: tuple[VariableWrite, ...] = ()

    def trace(
        self,
        *,
        output: JSON | None = None,
        error: FlowError | None = None,
        retry_wait: float | None = None,
    ) -> CallTrace:
        """Return the trace of this attempt, which gave ``output`` or ``error``."""
        return CallTrace(
            self.function,
            self.target,
            self.attempt,
            self.input,
            self.files,
            output,
            None if error is None else error.code,
            None if error is None else error.message,
            self.writes,
            retry_wait,
        )


def _action_data(inst: InstanceView, action: Action, source: JSON) -> JSONObject:
    """Return the data the action's input sees: the source object (or ``{}``), plus secrets."""
    data: JSONObject = source if isinstance(source, dict) else {}
    if action.secrets:
        secrets: JSONObject = {}
        for name in action.secrets:
            value = inst.engine.secrets.get(name)
            if value is None:
                raise InternalError(
                    f"secret {name!r} not found: pass it with secrets={{{name!r}: ...}} "
                    f"or --secret {name}=VALUE"
                )
            secrets[name] = value
        data = {**data, "secrets": secrets}
    return data


def _files(action: Action, snap: Snapshot) -> tuple[FunctionFile, ...]:
    """Evaluate the action's ``files:`` (§5.3 step 5-6)."""
    files: list[FunctionFile] = []
    seen: set[str] = set()
    for index, entry in enumerate(action.files):
        as_name = entry.as_name.evaluate_string(snap) if entry.as_name is not None else ""
        key = entry.key.evaluate_string(snap)
        scope = entry.scope.evaluate_string(snap) if entry.scope is not None else ""
        kind = entry.type.evaluate_string(snap) if entry.type is not None else ""
        mode = entry.permissions.evaluate_string(snap) if entry.permissions is not None else ""
        if scope == "thread":
            raise CatchableError(
                "direktiv.var.invalidScope", f"invalid 'scope' for function file {index}: thread"
            )
        resolved = check_file(
            index,
            key=key,
            as_name=as_name,
            scope=scope,
            kind=kind,
            permissions=mode,
            raw_scope=entry.raw_scope,
        )
        if resolved.target in seen:
            raise InternalError(f"multiple files with same name: {resolved.target}")
        seen.add(resolved.target)
        files.append(resolved)
    return tuple(files)


def _decode_output(body: bytes) -> JSON:
    """Return a function's response as ``.return`` holds it: JSON, else base64, ``""`` if empty."""
    if not body:
        return ""
    try:
        return gojson.loads(body)
    except NestingTooDeepError as exc:
        raise InternalError(f"cannot decode the function's response: {exc}") from exc
    except ValueError:
        return base64.b64encode(body).decode("ascii")


def _knative(
    inst: InstanceView,
    function: FunctionDef,
    attempt: _Attempt,
    *,
    body: bytes,
    files: tuple[FunctionFile, ...],
    iterator: int,
    deadline: float,
    seconds: float,
    clock: Clock,
) -> JSON:
    runner = inst.engine.runners[function.id]
    describe = getattr(runner, "describe", None)
    attempt.target = str(describe()) if callable(describe) else type(runner).__name__
    attempt.files = tuple(FileInfo(f.target, f.type or "plain", -1) for f in files)
    call = FunctionCall(
        function_id=function.id,
        input=body,
        action_id=new_id(),
        iterator=iterator,
        namespace=inst.engine.namespace,
        workflow=inst.path,
        instance=inst.instance_id,
        store=inst.engine.store,
        files=files,
        timeout=float(int(seconds)),
        root=inst.engine.root,
        function_type=function.type,
        image=function.image,
        service=function.service,
        log=inst.log,
    )
    try:
        outcome = runner.call(call)
    except FlowError:
        raise
    except Exception as exc:  # a runner must report, not raise; a raise is a crash
        raise InternalError(
            f"function {function.id!r} failed: {type(exc).__name__}: {exc}"
        ) from exc
    if outcome.files:
        attempt.files = outcome.files
    attempt.writes = outcome.writes
    if clock.now() > deadline or outcome.error_code == SOFT_CODE:
        raise CatchableError(SOFT_CODE, SOFT_MESSAGE)
    if outcome.error_code:
        raise _FunctionError(outcome.error_code, outcome.error_message)
    if outcome.crash:
        raise InternalError(f"function {function.id!r} crashed: {outcome.crash}")
    return _decode_output(outcome.output)


# ---------------------------------------------------------------------- subflows


def child_path(workflow: str, caller: str) -> str:
    """Return the absolute, clean path of subflow ``workflow`` called from flow ``caller``."""
    if not workflow.startswith("/"):
        workflow = posixpath.join(posixpath.dirname(caller) or "/", workflow)
    return "/" + posixpath.normpath(workflow).lstrip("/")


def _subflow(
    inst: InstanceView,
    function: FunctionDef,
    *,
    body: bytes,
    iterator: int,
    deadline: float,
    clock: Clock,
    cancel: threading.Event | None,
    invoker: str,
) -> JSON:
    if inst.depth + 1 > MAX_SUBFLOW_DEPTH:
        raise UncatchableError(
            "direktiv.limits.depth",
            f"instance aborted for exceeding the maximum subflow depth ({MAX_SUBFLOW_DEPTH})",
        )
    path = child_path(function.workflow, inst.path)
    workflow = inst.engine.load_child(path)
    if workflow.start is not None and workflow.start.is_event_start:
        raise UncatchableError(
            "direktiv.workflow.invoke", "cannot invoke event-based workflow as a subflow"
        )
    require_runners(workflow, inst.engine.runners)
    result = inst.run_child(workflow, path, body, clock, iterator, deadline, cancel, invoker)
    if result.status == "complete":
        return roundtrip(result.output)
    if result.error_code == "direktiv.cancels.parent":
        inst.check_time(clock)  # this instance's own deadline or cancel ended the child
    if result.error_code == "direktiv.cancels.parent" and clock.now() >= deadline:
        raise CatchableError(SOFT_CODE, SOFT_MESSAGE)
    raise _FunctionError(result.error_code or "direktiv.internal.error", result.error_message or "")
