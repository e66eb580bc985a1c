"""The one small interface between the interpreter and whatever runs function containers.

The interpreter evaluates an action (input bytes, ``files:`` entries, ids) into a
:class:`FunctionCall` and hands it to a :class:`FunctionRunner`; the runner plays Direktiv's
sidecar (temp dir, ``files:``, ``/var``, ``out/``) and returns a :class:`FunctionOutcome`.
``harness`` implements runners for URLs, WSGI/ASGI apps and Python callables; this package only
knows the protocol and finds the harness adapter lazily, by name, so it never imports it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final, Protocol, runtime_checkable

from direktiv_sdk.engine.results import FileInfo, VariableWrite
from direktiv_sdk.errors import BackendNotInstalledError, FunctionNotMappedError
from direktiv_sdk.flow.model import FILE_SCOPES, FILE_TYPES, FunctionFile

if TYPE_CHECKING:
    from direktiv_sdk.flow.model import Workflow
    from direktiv_sdk.store import VariableStore

__all__ = [
    "FILE_SCOPES",
    "FILE_TYPES",
    "FunctionCall",
    "FunctionFile",
    "FunctionOutcome",
    "FunctionRunner",
    "adapt_functions",
    "require_runners",
]

_ADAPTER: Final = "harness.functions:adapt_target"


@dataclass(frozen=True, slots=True)
class FunctionCall:
    """Everything a runner needs to call one function once, as Direktiv's sidecar would."""

    function_id: str
    input: bytes
    """The request body: Go-JSON of the action input."""
    action_id: str
    iterator: int
    namespace: str
    workflow: str
    """The calling flow's path, e.g. ``/flows/a.yaml`` (owner of workflow-scope variables)."""
    instance: str
    """The calling instance's id (owner of instance-scope variables)."""
    store: VariableStore
    files: tuple[FunctionFile, ...] = ()
    timeout: float = 900.0
    """Seconds the call may take (the state's ``timeout``, default 15 minutes)."""
    root: Path | None = None
    """The namespace file tree that ``scope: file`` entries read from."""
    function_type: str = "knative-workflow"
    image: str = ""
    service: str = ""
    log: Callable[[str], None] = field(default=lambda message: None)
    """Appends a line to the instance log (what the sidecar's ``/log`` does)."""


@dataclass(frozen=True, slots=True)
class FunctionOutcome:
    """What came back from one call, before the interpreter interprets it (§5.6-§5.7)."""

    output: bytes = b""
    """The response body (decoded as JSON by the interpreter, else base64)."""
    error_code: str = ""
    """``Direktiv-ErrorCode`` (or ``container failed``): a catchable error."""
    error_message: str = ""
    crash: str = ""
    """A sidecar-side failure: the instance crashes (uncatchable) with this message."""
    files: tuple[FileInfo, ...] = ()
    """The ``files:`` entries written into the temp dir (for the trace)."""
    writes: tuple[VariableWrite, ...] = ()
    """The variables the function set through ``/var`` and ``out/`` (for the trace)."""


@runtime_checkable
class FunctionRunner(Protocol):
    """Runs one function call the way Direktiv's sidecar would."""

    def call(self, call: FunctionCall) -> FunctionOutcome:
        """Run ``call`` and return its outcome; never raise for errors the function reports."""
        ...


def adapt_functions(functions: Mapping[str, object] | None) -> dict[str, FunctionRunner]:
    """Turn ``{function id: URL | WSGI/ASGI app | callable | FunctionRunner}`` into runners.

    Runners pass through unchanged; anything else is adapted by the harness, which is imported
    here lazily by name (``direktiv_sdk`` never imports it statically).
    """
    if not functions:
        return {}
    runners: dict[str, FunctionRunner] = {}
    adapter: Callable[[str, object], FunctionRunner] | None = None
    for function_id, target in functions.items():
        if isinstance(target, FunctionRunner):
            runners[function_id] = target
            continue
        if adapter is None:
            module_name, _, attr = _ADAPTER.partition(":")
            try:
                adapter = getattr(importlib.import_module(module_name), attr)
            except (ImportError, AttributeError) as exc:
                raise BackendNotInstalledError(
                    "functions", "the function harness is unavailable"
                ) from exc
        runners[function_id] = adapter(function_id, target)
    return runners


def require_runners(workflow: Workflow, runners: Mapping[str, FunctionRunner]) -> None:
    """Raise :class:`FunctionNotMappedError` for a called knative function without a runner."""
    for function in workflow.used_functions():
        if not function.is_subflow and function.id not in runners:
            raise FunctionNotMappedError(function.id)
