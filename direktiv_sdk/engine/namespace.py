"""A local Direktiv namespace that many instances share: :class:`Namespace`.

>>> with Namespace("flows/", store="memory://") as ns:           # doctest: +SKIP
...     waiting = ns.start("/wait.yaml")
...     ns.send({"specversion": "1.0", "id": "1", "source": "me", "type": "hello"})
...     ns.wait(waiting).status
'complete'

A namespace holds a store, a namespace name, a file tree, function runners, secrets and a
clock. It starts instances of any flow in the tree, delivers CloudEvents to waiting instances
and to event-started flows (``start: type: event | eventsAnd | eventsXor``), lists instances,
waits for them and cancels them. Events that flows generate are delivered to the same
namespace. ``docs/events.md`` describes the semantics.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from direktiv_sdk.engine._runtime import Engine
from direktiv_sdk.engine._session import InstanceInfo, Session
from direktiv_sdk.engine.clock import Clock, SystemClock
from direktiv_sdk.engine.functions import adapt_functions, require_runners
from direktiv_sdk.engine.interpreter import StartInput, _owner, _raw_input, child_loader
from direktiv_sdk.errors import WorkflowNotFoundError
from direktiv_sdk.flow import model
from direktiv_sdk.store import Owner, VariableStore
from direktiv_sdk.store.registry import open_store

if TYPE_CHECKING:
    from direktiv_sdk.engine.cloudevent import CloudEvent
    from direktiv_sdk.engine.observe import RunObserver
    from direktiv_sdk.expr.gojson import JSON

__all__ = ["InstanceInfo", "Namespace"]

if TYPE_CHECKING:
    EventInput = CloudEvent | Mapping[str, JSON] | bytes | str
    """What :meth:`Namespace.send` accepts: a parsed event, a JSON object, or its JSON text."""


class Namespace:
    """A namespace session: the flows of ``root``, run on one store and one clock.

    Args:
        root: the namespace file tree (flows, subflows, ``file`` scope). Default: the current
            directory.
        store: a :class:`VariableStore` or a store URL (default: ``$DIREKTIV_STORE_URL``,
            else ``file://./.direktiv``); a store opened from a URL is closed by :meth:`close`.
        namespace: the namespace name (owner of namespace-scope variables).
        functions: ``{function id: runner, URL, WSGI/ASGI app or callable}``.
        secrets: namespace secrets for actions' ``secrets:`` lists.
        clock: the clock (default: :class:`SystemClock`). On a
            :class:`~direktiv_sdk.engine.clock.VirtualClock` instances take turns and
            :meth:`wait` jumps the clock to the next deadline when nothing else can run.
        observer: told when each instance starts and ends and when each of its states ends
            (live traces, workflow coverage; see :mod:`direktiv_sdk.engine.observe`).
        strict: refuse flows and subflows with what ``direktiv-sdk lint`` calls an error, not
            only what Direktiv refuses (a :class:`~direktiv_sdk.errors.WorkflowLoadError`).
    """

    def __init__(
        self,
        root: str | os.PathLike[str] | None = None,
        *,
        store: VariableStore | str | None = None,
        namespace: str = "default",
        functions: Mapping[str, object] | None = None,
        secrets: Mapping[str, str] | None = None,
        clock: Clock | None = None,
        observer: RunObserver | None = None,
        strict: bool = False,
    ) -> None:
        """Open the session (flows are read when they are started or an event arrives)."""
        self.root = Path(root) if root is not None else Path.cwd()
        self.namespace = namespace
        owner = _owner("namespace", namespace, "")
        runners = adapt_functions(functions) if functions else {}
        self._store = open_store(store) if store is None or isinstance(store, str) else store
        self._owns_store = self._store is not store
        self._load = child_loader(strict)
        engine = Engine(
            self._store,
            namespace,
            self.root,
            runners,
            dict(secrets) if secrets else {},
            owner,
            self._load,
            observer,
        )
        self.clock = clock or SystemClock()
        self._session = Session(engine, self.clock)

    @property
    def store(self) -> VariableStore:
        """The variable store."""
        return self._store

    @property
    def problems(self) -> tuple[str, ...]:
        """Flows of the tree that cannot listen for events (they do not load, a bad lifespan)."""
        return tuple(self._session.problems)

    def start(
        self, path: str, input: StartInput | None = None, *, instance_id: str | None = None
    ) -> str:
        """Start an instance of the flow at workflow ``path`` (e.g. ``/a.yaml``); return its id.

        The instance runs in the background; an event-started flow fails at once with
        ``direktiv.workflow.invoke``, as in Direktiv.

        Raises:
            WorkflowNotFoundError: no flow file at ``path``.
            FunctionNotMappedError: a knative function the flow calls has no runner.
            WorkflowLoadError: the flow does not load.
            NamespaceLimitError: too many pending instances, or the namespace is closed.
        """
        clean = "/" + path.lstrip("/")
        file = self.root.joinpath(*[p for p in clean.split("/") if p])
        if not file.is_file():
            raise WorkflowNotFoundError(clean, os.fspath(self.root))
        workflow = self._load(file, clean.lstrip("/"))  # a load error is the caller's
        require_runners(workflow, self._session.engine.runners)
        if instance_id is not None:
            # Instance variables live as long as their instance: a reused id starts empty too.
            self._store.clear(Owner.for_instance(self.namespace, instance_id))
        return self._session.start(clean, _raw_input(input), instance_id=instance_id)

    def start_workflow(
        self,
        workflow: model.Workflow,
        path: str,
        input: StartInput | None = None,
        *,
        instance_id: str | None = None,
    ) -> str:
        """Start an instance of an already loaded flow as workflow ``path``; return its id."""
        clean = "/" + path.lstrip("/")
        require_runners(workflow, self._session.engine.runners)
        self._session.engine.workflows[clean] = workflow
        if instance_id is not None:
            self._store.clear(Owner.for_instance(self.namespace, instance_id))
        return self._session.start(clean, _raw_input(input), instance_id=instance_id)

    def send(self, event: EventInput) -> list[str]:
        """Deliver a CloudEvent; return the ids of the instances it started or woke.

        A malformed event raises :class:`~direktiv_sdk.errors.CloudEventError` (naming the
        attribute) and is not delivered at all.
        """
        return self._session.send(_parsed(event))

    def send_all(self, events: Iterable[EventInput]) -> list[str]:
        """Validate every event first, then deliver them in order (none if one is bad)."""
        parsed = [_parsed(e) for e in events]
        touched: list[str] = []
        for event in parsed:
            touched.extend(self._session.send(event))
        return touched

    def instances(self, path: str | None = None) -> list[InstanceInfo]:
        """Return every instance (of workflow ``path``), in start order, with its status."""
        return self._session.instances(None if path is None else "/" + path.lstrip("/"))

    def get(self, instance_id: str) -> InstanceInfo:
        """Return instance ``instance_id`` (raises ``InstanceNotFoundError``)."""
        return self._session.info(instance_id)

    def wait(self, instance_id: str, timeout: float = 60.0) -> InstanceInfo:
        """Wait until the instance ends and return it; ``timeout`` real seconds at most.

        Raises:
            WaitTimeoutError: the instance did not end in time, or (virtual clock) it waits for
                an event that nothing will send.
        """
        return self._session.wait(instance_id, timeout)

    def settle(self, timeout: float = 60.0) -> None:
        """Wait until nothing runs and every pending instance waits for an event."""
        self._session.settle(timeout)

    def cancel(self, instance_id: str) -> bool:
        """Cancel a pending instance (``direktiv.cancels.api``); ``False`` if it already ended.

        Its running subflows end with ``direktiv.cancels.parent``.
        """
        return self._session.cancel(instance_id)

    def close(self) -> None:
        """Let async actions finish, cancel pending instances, close a store opened here."""
        try:
            self._session.close()
        finally:
            if self._owns_store:
                self._store.close()

    def __enter__(self) -> Namespace:
        """Return the namespace."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the namespace."""
        self.close()


def _parsed(event: EventInput) -> CloudEvent:
    """Return ``event`` as a :class:`CloudEvent` (the SDK loads with the first event sent)."""
    from direktiv_sdk.engine.cloudevent import CloudEvent, parse_event  # noqa: PLC0415

    return event if isinstance(event, CloudEvent) else parse_event(event)
