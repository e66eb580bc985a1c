"""``direktiv-sdk events send`` and the namespace side of ``run --event``: CloudEvents in the CLI.

``events send FILE... --root DIR`` delivers the events of the files (one CloudEvent JSON object,
a JSON array of them, or JSON lines; ``-`` is stdin) to a namespace session of the flows under
DIR, runs what they start or wake until nothing can progress, and prints one JSON line per
instance (``id``, ``path``, ``status``, ``output`` or ``error``), pending ones included. Exit 0
when no instance failed or crashed, 1 otherwise.

Both commands run instances in the background: Ctrl-C (SIGINT) or SIGTERM cancels them
(``direktiv.cancels.api``), prints what they did so far and exits 130 / 143.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Final

from direktiv_sdk.cli._settings import option_pairs
from direktiv_sdk.errors import CloudEventError, WaitTimeoutError
from direktiv_sdk.expr.gojson import dumps

if TYPE_CHECKING:
    from collections.abc import Mapping

    from direktiv_sdk.engine.clock import Clock
    from direktiv_sdk.engine.cloudevent import CloudEvent
    from direktiv_sdk.engine.namespace import Namespace
    from direktiv_sdk.engine.observe import RunObserver
    from direktiv_sdk.engine.results import InstanceInfo, InstanceResult

__all__ = ["Interrupted", "add_parser", "read_events", "run_flow", "run_in_namespace"]

NAME: Final = "events"
HELP: Final = "send CloudEvents to the flows of a folder"
"""The command's one line in ``direktiv-sdk --help``."""

SETTLE_SECONDS: Final = 24 * 3600.0
"""How long ``events send`` lets the instances run (delays included) before it gives up."""
_SLICE: Final = 0.2
"""Seconds between checks for a signal while the main thread waits."""


class Interrupted(Exception):  # noqa: N818 - a signal, not an error
    """SIGINT or SIGTERM arrived; ``code`` is the exit code (130 or 143)."""

    def __init__(self, name: str, code: int) -> None:
        self.name = name
        self.code = code
        super().__init__(name)


@contextmanager
def signals_cancel() -> Iterator[None]:
    """Turn SIGINT and SIGTERM into :class:`Interrupted` in the main thread while inside."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(number: int, frame: object) -> None:
        name = signal.Signals(number).name
        raise Interrupted(name, 128 + number)

    old_int = signal.signal(signal.SIGINT, interrupt)
    old_term = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old_int)
        signal.signal(signal.SIGTERM, old_term)


def read_events(parser: argparse.ArgumentParser, files: list[str]) -> list[CloudEvent]:
    """Return the events of every file, all validated before any is delivered."""
    events: list[CloudEvent] = []
    if not files:
        return events
    from direktiv_sdk.engine.cloudevent import parse_events  # noqa: PLC0415 - loads the SDK

    for name in files:
        try:
            if name == "-":
                data = sys.stdin.buffer.read()
            else:
                with open(name, "rb") as file:
                    data = file.read()
        except OSError as exc:
            parser.error(f"cannot read event file {name!r}: {exc.strerror or exc}")
        try:
            events.extend(parse_events(data))
        except CloudEventError as exc:
            raise CloudEventError(exc.attribute, f"{name}: {exc.detail}") from None
    return events


def _wait_sliced(ns: Namespace, instance_id: str) -> InstanceInfo:
    """Wait for the instance in short slices, so that a signal is handled at once."""
    while True:
        try:
            return ns.wait(instance_id, timeout=_SLICE)
        except WaitTimeoutError:
            continue


def _settle_sliced(ns: Namespace, seconds: float) -> None:
    waited = 0.0
    while waited < seconds:
        try:
            ns.settle(timeout=_SLICE)
        except WaitTimeoutError:
            waited += _SLICE
            continue
        return


def run_in_namespace(ns: Namespace, instance_id: str, events: list[CloudEvent]) -> InstanceInfo:
    """Deliver ``events`` (each once the instances wait), then wait for the instance.

    Raises:
        Interrupted: a signal came; the instance was cancelled (its info is on ``.info``).
    """
    with signals_cancel():
        try:
            for event in events:
                _settle_sliced(ns, SETTLE_SECONDS)
                ns.send(event)
            return _wait_sliced(ns, instance_id)
        except Interrupted:
            ns.cancel(instance_id)
            # A runaway jq program of this run ends now, not at its 10 s limit.
            from direktiv_sdk.expr._jq import DEFAULT_POOL  # noqa: PLC0415 - loaded by now

            DEFAULT_POOL.interrupt()
            raise


def add_parser(subparsers: Any) -> None:
    """Register the ``events`` command and its ``send`` subcommand."""
    parser = subparsers.add_parser(NAME, help=HELP, description=__doc__)
    commands = parser.add_subparsers(dest="events_command", required=True, metavar="COMMAND")
    send = commands.add_parser(
        "send",
        help="deliver CloudEvents to a namespace of flows and print every instance",
        description="Deliver CloudEvents to the flows under --root; print one line per instance.",
    )
    send.add_argument("files", nargs="+", metavar="FILE", help="event files ('-': stdin)")
    send.add_argument("--root", required=True, metavar="DIR", help="the namespace file tree")
    send.add_argument(
        "--store", metavar="URL", help="store URL (default: $DIREKTIV_STORE_URL or .direktiv)"
    )
    send.add_argument("--namespace", default="default", metavar="NS", help="default: default")
    send.add_argument(
        "--function", action="append", default=[], metavar="ID=URL",
        help="call knative function ID at URL (repeatable)",
    )  # fmt: skip
    send.add_argument(
        "--secret", action="append", default=[], metavar="NAME=VALUE",
        help="a namespace secret (repeatable)",
    )  # fmt: skip
    send.set_defaults(handler=_send, parser=send)


def _send(args: argparse.Namespace) -> int:
    from direktiv_sdk.engine.namespace import Namespace  # noqa: PLC0415 - loads jq

    parser: argparse.ArgumentParser = args.parser
    functions = option_pairs(parser, args.function, "--function")
    secrets = option_pairs(parser, args.secret, "--secret")
    events = read_events(parser, args.files)
    code = 0
    with Namespace(
        args.root, store=args.store, namespace=args.namespace, functions=functions or None,
        secrets=secrets,
    ) as ns:  # fmt: skip
        with signals_cancel():
            try:
                for event in events:
                    _settle_sliced(ns, SETTLE_SECONDS)
                    ns.send(event)
                _settle_sliced(ns, SETTLE_SECONDS)
            except Interrupted as exc:
                for info in ns.instances():
                    if info.status == "pending":
                        ns.cancel(info.instance_id)
                _settle_sliced(ns, 10.0)
                code = exc.code
                print(f"direktiv-sdk: {exc.name}: cancelled the pending instances", file=sys.stderr)
        for info in ns.instances():
            sys.stdout.write(dumps(info.as_json()) + "\n")
            if code == 0 and info.status in ("failed", "crashed"):
                code = 1
    return code


def run_flow(
    flow: str,
    *,
    raw: bytes | None,
    store: str | None,
    namespace: str,
    path: str | None,
    root: str | None,
    instance_id: str | None,
    functions: Mapping[str, object],
    secrets: dict[str, str],
    events: list[CloudEvent],
    strict: bool = False,
    clock: Clock | None = None,
    observer: RunObserver | None = None,
) -> tuple[InstanceResult | None, Interrupted | None]:
    """Run ``flow`` once in a namespace of its tree; return its result and the signal, if any."""
    from direktiv_sdk.engine.interpreter import _locate, load_workflow  # noqa: PLC0415 - jq
    from direktiv_sdk.engine.namespace import Namespace  # noqa: PLC0415 - loads jq

    workflow = load_workflow(flow, strict=strict)
    workflow_path, tree = _locate(workflow, path, root)
    with Namespace(
        tree,
        store=store,
        namespace=namespace,
        functions=functions or None,
        secrets=secrets,
        clock=clock,
        observer=observer,
        strict=strict,
    ) as ns:
        with signals_cancel():
            instance = ns.start_workflow(workflow, workflow_path, raw, instance_id=instance_id)
            try:
                return run_in_namespace(ns, instance, events).result, None
            except Interrupted as exc:
                interrupted = exc
        try:
            info = ns.wait(instance, timeout=10.0)
        except WaitTimeoutError:
            info = ns.get(instance)  # it does not stop (a function call): report so far
        return info.result, interrupted
