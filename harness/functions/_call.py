"""Call Direktiv functions locally: targets, runners, and the one-shot :func:`call_function`.

:func:`adapt_target` turns what a user maps a function id to (an ``http(s)://`` URL, a WSGI
app, an ASGI app, a Python callable, or a ready
:class:`~direktiv_sdk.engine.functions.FunctionRunner`) into a runner;
``direktiv_sdk.engine.functions.adapt_functions`` finds it here by name.
:func:`call_function` runs one function once, without a flow, in the spirit of Temporal's
``ActivityEnvironment``, and returns a :class:`CallResult`.
"""

from __future__ import annotations

import base64
import inspect
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Unpack
from urllib.parse import urlsplit

from direktiv_sdk.engine.functions import (
    FunctionCall,
    FunctionFile,
    FunctionOutcome,
    FunctionRunner,
)
from direktiv_sdk.errors import InvalidTargetError
from direktiv_sdk.expr import gojson
from direktiv_sdk.expr.gojson import JSON
from direktiv_sdk.store import Scope, VariableStore
from direktiv_sdk.store.registry import open_store
from harness.functions._runners import (
    CONTAINER_FAILED,
    TIMEOUT_CODE,
    TIMEOUT_MESSAGE,
    TOO_LARGE,
    RunnerOptions,
    SidecarRunner,
)
from harness.functions._targets import ASGIRunner, CallableRunner, URLRunner, WSGIRunner
from harness.sidecar import Sidecar
from harness.sidecar._action import SidecarRequest, VariableWrite, new_action_id

__all__ = [
    "CONTAINER_FAILED",
    "TIMEOUT_CODE",
    "TIMEOUT_MESSAGE",
    "TOO_LARGE",
    "ASGIRunner",
    "CallResult",
    "CallableRunner",
    "SidecarRunner",
    "URLRunner",
    "WSGIRunner",
    "adapt_target",
    "call_function",
    "decode_output",
    "function_file",
    "make_runner",
]

_TARGET_HELP = (
    "use an http(s) URL, a WSGI app (environ, start_response), an ASGI app "
    "(scope, receive, send), a Python function (input, context) or a FunctionRunner"
)


def _parameter_names(fn: Callable[..., object]) -> list[str]:
    try:
        return list(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return []


def _is_async(target: object) -> bool:
    return inspect.iscoroutinefunction(target) or inspect.iscoroutinefunction(
        getattr(target, "__call__", None)  # noqa: B004 - the bound __call__ of an app object
    )


def adapt_target(function_id: str, target: object) -> FunctionRunner:
    """Return a runner for ``target``; the function id only names it in errors.

    A ``str`` must be an ``http://`` or ``https://`` URL. A coroutine function (or object with
    an ``async __call__``) is an ASGI app; a callable whose parameters are ``environ,
    start_response`` (or that has a ``wsgi_app``, like Flask) is a WSGI app; any other callable
    is a Python function. Wrap a target in :class:`URLRunner`, :class:`WSGIRunner`,
    :class:`ASGIRunner` or :class:`CallableRunner` to choose explicitly or to pass options.

    Raises:
        InvalidTargetError: ``target`` is none of these (also a ``TypeError``/``ValueError``).
    """
    if isinstance(target, FunctionRunner):
        return target
    return make_runner(function_id, target)


def make_runner(
    function_id: str, target: object, **options: Unpack[RunnerOptions]
) -> SidecarRunner:
    """Return a new runner for ``target`` (not a runner itself) with ``options``.

    The same choice as :func:`adapt_target`; ``options`` are those of :class:`SidecarRunner`.
    """
    if isinstance(target, str):
        parts = urlsplit(target)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidTargetError(
                function_id, target, "a URL target needs http:// or https:// and a host"
            )
        return URLRunner(target, **options)
    if not callable(target) or isinstance(target, type):
        raise InvalidTargetError(function_id, target, _TARGET_HELP)
    if _is_async(target):
        call = target if inspect.iscoroutinefunction(target) else target.__call__
        if len(_parameter_names(call)) != 3:
            raise InvalidTargetError(
                function_id, target, "an async target must be an ASGI app (scope, receive, send)"
            )
        return ASGIRunner(target, **options)
    if hasattr(target, "wsgi_app") or _parameter_names(target) == ["environ", "start_response"]:
        return WSGIRunner(target, **options)
    return CallableRunner(target, function_id=function_id, **options)


def decode_output(output: bytes) -> JSON:
    """Return the value a flow sees as ``.return`` (semantics §5.7).

    Go-JSON decoding of the body; a body that is not JSON (including an empty one) becomes its
    base64 text.
    """
    try:
        return gojson.loads(output)
    except ValueError:
        return base64.b64encode(output).decode("ascii")


_FILE_FIELDS = frozenset({"key", "scope", "as", "type", "permissions"})


def function_file(entry: FunctionFile | Mapping[str, object]) -> FunctionFile:
    """Return ``entry`` as a :class:`FunctionFile`; a mapping uses the flow's field names.

    ``{"key": "x", "scope": "workflow", "as": "y", "type": "tar", "permissions": "0755"}``;
    ``permissions`` is an octal string (as in YAML) or an ``int``.
    """
    if isinstance(entry, FunctionFile):
        return entry
    if not isinstance(entry, Mapping):
        raise TypeError(f"a files: entry must be a FunctionFile or a mapping, not {entry!r}")
    unknown = sorted(set(entry) - _FILE_FIELDS)
    if unknown or "key" not in entry:
        raise ValueError(
            f"invalid files: entry {dict(entry)!r}: use the fields key (required), scope, as, "
            "type and permissions"
        )
    permissions = entry.get("permissions")
    if isinstance(permissions, str):
        if not permissions.isdigit() or not set(permissions) <= set("01234567"):
            raise ValueError(
                f"invalid permissions {permissions!r}: write them in octal, like '0755'"
            )
        permissions = int(permissions, 8)
    if permissions is not None and not isinstance(permissions, int):
        raise ValueError(f"invalid permissions {permissions!r}: use an octal string or an int")
    return FunctionFile(
        key=str(entry["key"]),
        scope=str(entry.get("scope") or "instance"),
        as_name=str(entry.get("as") or ""),
        type=str(entry.get("type") or ""),
        permissions=permissions,
    )


@dataclass(frozen=True, slots=True)
class CallResult:
    """What one :func:`call_function` did: the outcome and everything the sidecar saw."""

    output: bytes
    """The response body (empty after an error)."""
    error_code: str
    """A catchable error: ``Direktiv-ErrorCode``, ``container failed`` or a timeout."""
    error_message: str
    crash: str
    """A sidecar-side failure: the calling instance would crash with this message."""
    logs: tuple[str, ...]
    """Lines the function sent to ``/log``."""
    writes: tuple[VariableWrite, ...]
    """Variables the call set, through ``/var`` and then from ``out/``, in order."""
    requests: tuple[SidecarRequest, ...]
    """The sidecar's log of this action's ``/var`` and ``/log`` requests."""
    action_id: str
    instance: str
    temp_dir: Path
    """The action's temp dir (still there only with ``keep_tempdir=True``)."""
    store: VariableStore
    error: BaseException | None
    """The exception behind a crash or ``container failed``, if any."""
    timed_out: bool

    @property
    def ok(self) -> bool:
        """Return whether the function answered without an error or crash."""
        return not (self.error_code or self.crash)

    @property
    def value(self) -> JSON:
        """Return :attr:`output` as a flow sees it in ``.return`` (see :func:`decode_output`)."""
        return decode_output(self.output)

    @property
    def outcome(self) -> FunctionOutcome:
        """Return the outcome the interpreter would get."""
        return FunctionOutcome(self.output, self.error_code, self.error_message, self.crash)

    def written(self, key: str, scope: Scope | str = Scope.INSTANCE) -> VariableWrite | None:
        """Return the last write of variable ``key`` in ``scope`` by this call, if any."""
        wanted = Scope.parse(scope)
        for write in reversed(self.writes):
            if write.key == key and write.scope is wanted:
                return write
        return None


def call_function(
    target: object,
    input: JSON | bytes,
    *,
    files: Sequence[FunctionFile | Mapping[str, object]] = (),
    store: VariableStore | None = None,
    namespace: str = "default",
    workflow: str = "/workflow.yaml",
    instance: str | None = None,
    iterator: int = 0,
    root: str | os.PathLike[str] | None = None,
    keep_tempdir: bool = False,
    temp_root: str | os.PathLike[str] | None = None,
    timeout: float = 900.0,
    action_id: str | None = None,
    sidecar: Sidecar | None = None,
    function_id: str = "function",
    raise_errors: bool = True,
) -> CallResult:
    """Call the function ``target`` once, as Direktiv's sidecar would, and report everything.

    Args:
        target: A URL, WSGI app, ASGI app, Python function or runner (see :func:`adapt_target`).
        input: The action input: ``bytes`` are sent as they are, anything else as Go-JSON.
        files: The action's ``files:`` entries (:class:`FunctionFile` or mappings).
        store: Where ``/var``, ``files:`` and ``out/`` variables live (default: a new
            ``memory://`` store, available as :attr:`CallResult.store`).
        namespace: The namespace of the calling flow.
        workflow: The path of the calling flow (owner of workflow-scope variables).
        instance: The calling instance id (default: a new UUID).
        iterator: ``Direktiv-Iterator`` (a foreach index).
        root: The namespace file tree for ``scope: file`` entries.
        keep_tempdir: Leave the temp dir in place (its path is :attr:`CallResult.temp_dir`).
        temp_root: Create the temp dir as ``<temp_root>/<action id>`` (e.g. a container volume).
        timeout: Seconds before the call ends with ``direktiv.cancels.timeout.soft``.
        action_id: The ``Direktiv-ActionID`` (default: a new UUID).
        sidecar: The sidecar the function talks to (default: see :class:`SidecarRunner`).
        function_id: The function's id, for messages.
        raise_errors: Raise the exception behind a crash or ``container failed`` (a hostile
            archive, a bad ``out/`` name, an exception in an in-process target, an unreachable
            URL) instead of returning it in :attr:`CallResult.error`.

    Raises:
        InvalidFileTypeError: A ``files:`` entry has an unknown ``type``.
        InvalidTargetError: ``target`` cannot be called.
    """
    if isinstance(target, SidecarRunner):
        if keep_tempdir or temp_root is not None or sidecar is not None:
            raise ValueError(
                "a runner target keeps its own options: pass keep_tempdir, temp_root and "
                "sidecar to the runner instead"
            )
        runner = target
    elif isinstance(target, FunctionRunner):
        raise InvalidTargetError(
            function_id, target, "call_function needs a SidecarRunner, not another FunctionRunner"
        )
    else:
        runner = make_runner(
            function_id, target, sidecar=sidecar, keep_tempdir=keep_tempdir, temp_root=temp_root
        )
    if store is None:
        store = open_store("memory://")
    body = bytes(input) if isinstance(input, bytes | bytearray) else gojson.dumps(input).encode()
    call = FunctionCall(
        function_id=function_id,
        input=body,
        action_id=action_id or new_action_id(),
        iterator=iterator,
        namespace=namespace,
        workflow=workflow,
        instance=instance or new_action_id(),
        store=store,
        files=tuple(function_file(entry) for entry in files),
        timeout=timeout,
        root=None if root is None else Path(root),
    )
    record = runner.run(call)
    if raise_errors and record.error is not None:
        raise record.error
    outcome = record.outcome
    return CallResult(
        output=outcome.output,
        error_code=outcome.error_code,
        error_message=outcome.error_message,
        crash=outcome.crash,
        logs=record.context.logs,
        writes=record.context.writes,
        requests=record.sidecar.requests_for(record.context.aid),
        action_id=record.context.aid,
        instance=call.instance,
        temp_dir=record.temp_dir,
        store=store,
        error=record.error,
        timed_out=record.timed_out,
    )
