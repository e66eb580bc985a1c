"""Run Direktiv ``workflow/v1`` flows locally, on any variable store: :func:`run_workflow`.

>>> result = run_workflow("examples/counter.yaml", store="memory://")  # doctest: +SKIP
>>> result.status, result.output["var"]                                   # doctest: +SKIP
('complete', {'x': 1})

The semantics are the reference engine's (v0.10), with the project's decisions of
``direktiv-semantics.md`` §9; ``docs/interpreter.md`` describes them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Final, TypeAlias

from direktiv_sdk.engine._runtime import Engine
from direktiv_sdk.engine._session import run_here
from direktiv_sdk.engine.clock import Clock, SystemClock
from direktiv_sdk.engine.functions import adapt_functions, require_runners
from direktiv_sdk.engine.results import STATUSES, InstanceResult, StateTrace, VariableWrite
from direktiv_sdk.expr import gojson
from direktiv_sdk.flow import loader, model
from direktiv_sdk.store import Owner, VariableStore
from direktiv_sdk.store.registry import open_store

if TYPE_CHECKING:
    from direktiv_sdk.engine.observe import RunObserver
    from direktiv_sdk.expr.jx import JqCache

__all__ = [
    "STATUSES",
    "InstanceResult",
    "StartInput",
    "StateTrace",
    "VariableWrite",
    "Workflow",
    "load_workflow",
    "require_runners",
    "run_workflow",
]

StartInput: TypeAlias = "gojson.JSON | bytes | bytearray | memoryview"
"""What :func:`run_workflow` accepts as ``input``: a JSON value, or raw bytes as posted."""

DEFAULT_PATH = "/workflow.yaml"
"""The workflow path of a flow given as YAML text without ``path``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Workflow(model.Workflow):
    """A loaded flow: run it any number of times with :meth:`run`."""

    @classmethod
    def of(cls, flow: model.Workflow) -> Workflow:
        """Return ``flow`` as a runnable workflow (``flow`` itself if it is one)."""
        if isinstance(flow, cls):
            return flow
        return cls(**{name: getattr(flow, name) for name in _FIELDS})

    def run(
        self,
        *,
        input: StartInput | None = None,
        store: VariableStore | str | None = None,
        namespace: str = "default",
        path: str | None = None,
        root: str | os.PathLike[str] | None = None,
        instance_id: str | None = None,
        functions: Mapping[str, object] | None = None,
        clock: Clock | None = None,
        secrets: Mapping[str, str] | None = None,
        observer: RunObserver | None = None,
    ) -> InstanceResult:
        """Run one instance of this flow (see :func:`run_workflow`)."""
        return run_workflow(
            self,
            input=input,
            store=store,
            namespace=namespace,
            path=path,
            root=root,
            instance_id=instance_id,
            functions=functions,
            clock=clock,
            secrets=secrets,
            observer=observer,
        )


_FIELDS: Final = tuple(f.name for f in fields(model.Workflow))

_RUNNABLE: dict[int, tuple[model.Workflow, Workflow]] = {}
"""(model, runnable) by ``id`` of the loader's model; an entry keeps its model, so its id."""


def load_workflow(
    source: str | os.PathLike[str],
    *,
    path: str | None = None,
    cache: JqCache | None = None,
    strict: bool = False,
) -> Workflow:
    """Load and validate a flow from a file path or YAML text; a flow loaded before is reused.

    See :func:`direktiv_sdk.flow.loader.load_workflow` for the arguments.

    Raises:
        WorkflowLoadError: the flow does not load; the message names file, line and state.
    """
    flow = loader.load_workflow(source, path=path, cache=cache, strict=strict)
    entry = _RUNNABLE.get(id(flow))
    if entry is not None and entry[0] is flow:
        return entry[1]
    runnable = Workflow.of(flow)
    if len(_RUNNABLE) >= loader.LOADED_CACHE_SIZE:
        _RUNNABLE.clear()
    _RUNNABLE[id(flow)] = (flow, runnable)
    return runnable


def _load_child(file: Path, path: str) -> model.Workflow:
    return loader.load_workflow(file, path=path)


def _load_child_strictly(file: Path, path: str) -> model.Workflow:
    return loader.load_workflow(file, path=path, strict=True)


def child_loader(strict: bool) -> Callable[[Path, str], model.Workflow]:
    """Return how a run loads the subflows it calls: ``strict`` refuses lint errors there too."""
    return _load_child_strictly if strict else _load_child


def _raw_input(value: StartInput | None) -> bytes | None:
    if value is None:
        return None
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    return gojson.dumps(value).encode("utf-8", "surrogatepass")


_LOCATIONS: dict[tuple[str | None, str | None, str | None, str], tuple[str, Path]] = {}
"""Resolved (path, root) by (flow file, path, root, working directory): pathlib is slow."""


def _locate(
    workflow: model.Workflow, path: str | None, root: str | os.PathLike[str] | None
) -> tuple[str, Path]:
    key = (workflow.file, path, None if root is None else str(os.fspath(root)), os.getcwd())
    located = _LOCATIONS.get(key)
    if located is None:
        located = _resolve(workflow.file, path, root)
        if len(_LOCATIONS) >= 1024:
            _LOCATIONS.clear()
        _LOCATIONS[key] = located
    return located


def _resolve(
    file: str | None, path: str | None, root: str | os.PathLike[str] | None
) -> tuple[str, Path]:
    root_path = Path(root) if root is not None else (Path(file).parent if file else Path.cwd())
    if path is not None:
        return path, root_path
    if not file:
        return DEFAULT_PATH, root_path
    try:
        relative = Path(os.path.abspath(file)).relative_to(os.path.abspath(root_path))
    except ValueError:
        raise ValueError(
            f"flow file {file!r} is not inside root {os.fspath(root_path)!r}: "
            "pass path='/name.yaml' or a root that contains the file"
        ) from None
    return "/" + relative.as_posix(), root_path


def run_workflow(
    flow: model.Workflow | str | os.PathLike[str],
    *,
    input: StartInput | None = None,
    store: VariableStore | str | None = None,
    namespace: str = "default",
    path: str | None = None,
    root: str | os.PathLike[str] | None = None,
    instance_id: str | None = None,
    functions: Mapping[str, object] | None = None,
    clock: Clock | None = None,
    secrets: Mapping[str, str] | None = None,
    strict: bool = False,
    observer: RunObserver | None = None,
) -> InstanceResult:
    """Run one instance of ``flow`` to its end and return what happened.

    Args:
        flow: a loaded :class:`Workflow`, a path to a flow file, or YAML text.
        input: the start input. ``None`` starts with ``{}``; a JSON value (``dict``, ``list``,
            ``str``, number, ``bool``) is posted as JSON; ``bytes`` are posted as they are.
            Objects become the data, other JSON ends up under ``input``, non-JSON bytes under
            ``input`` as base64, empty bytes as ``{"input": ""}`` (§1.5).
        store: a :class:`VariableStore` or a store URL (default: ``$DIREKTIV_STORE_URL``,
            else ``file://./.direktiv``). A store opened from a URL is closed afterwards.
        namespace: the namespace owning namespace-scope variables.
        path: the flow's workflow path (owner of workflow-scope variables), e.g. ``/a.yaml``.
            Default: the flow file's path relative to ``root`` with a leading ``/``, or
            ``/workflow.yaml`` for YAML text.
        root: the namespace file tree (``file`` scope getters, subflow files). Default: the
            flow file's folder, or the current directory for YAML text.
        instance_id: the instance id (default: a new UUID). Instance variables left in the store
            under this id by an earlier run are deleted first: every instance starts empty.
        functions: ``{function id: runner, URL, WSGI/ASGI app or callable}`` for the knative
            functions the flow calls (adapted by the harness). A subflow id listed here is
            called through its runner instead of running the child flow.
        clock: the clock delays, retries and timeouts use (default: :class:`SystemClock`).
        secrets: namespace secrets for actions' ``secrets:`` lists.
        strict: load ``flow`` (a path or text) and the subflows it calls refusing what
            ``direktiv-sdk lint`` calls an error, not only what Direktiv refuses.
        observer: told when each instance (subflows too) starts and ends and when each of its
            states ends, e.g. a :class:`~direktiv_sdk.engine.tracing.TraceWriter` for a live
            trace; ``None`` costs nothing.

    Raises:
        WorkflowLoadError: the flow does not load.
        FunctionNotMappedError: a called knative function has no runner.
        ValueError: a bad namespace, path, instance id or input.
    """
    workflow = (
        flow if isinstance(flow, model.Workflow) else loader.load_workflow(flow, strict=strict)
    )
    if path is not None and isinstance(root, Path):
        root_path = root
    else:
        path, root_path = _locate(workflow, path, root)
    workflow_owner = _owner("workflow", namespace, path)
    namespace_owner = _owner("namespace", namespace, "")
    instance_owner = None if instance_id is None else Owner.for_instance(namespace, instance_id)
    raw = None if input is None else _raw_input(input)
    runners = adapt_functions(functions) if functions else {}
    if workflow.functions:
        require_runners(workflow, runners)
    opened = open_store(store) if store is None or isinstance(store, str) else store
    try:
        if instance_owner is not None:
            # Instance variables live as long as their instance: a reused id starts empty too.
            opened.clear(instance_owner)
        engine = Engine(
            opened,
            namespace,
            root_path,
            runners,
            dict(secrets) if secrets else {},
            namespace_owner,
            child_loader(strict),
            observer,
        )
        engine.workflows[path] = workflow
        clock = clock or SystemClock()
        return run_here(engine, clock, workflow, path, raw, instance_id, workflow_owner)
    finally:
        if opened is not store:
            opened.close()


_OWNERS: dict[tuple[str, str, str], Owner] = {}
"""Validated owners by (scope, namespace, path): building one checks every field again."""


def _owner(scope: str, namespace: str, path: str) -> Owner:
    key = (scope, namespace, path)
    owner = _OWNERS.get(key)
    if owner is None:
        if scope == "workflow":
            owner = Owner.for_workflow(namespace, path)
        else:
            owner = Owner.for_namespace(namespace)
        if len(_OWNERS) >= 1024:
            _OWNERS.clear()
        _OWNERS[key] = owner
    return owner
