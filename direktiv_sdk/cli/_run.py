"""``direktiv-sdk run``: run a flow file once and print its output (the interpreter's CLI).

stdout: the instance output as Go-JSON (compact, sorted keys). Exit 0 when the instance
completed; 1 when it failed, crashed or was cancelled, with ``{"error":{"code":...,
"message":...}}`` on stderr; 2 when the flow does not load or the arguments are wrong.
``--trace`` prints each state's block to stderr the moment the state ends. ``--event FILE``
delivers CloudEvents once the instance waits. Ctrl-C / SIGTERM cancel the instance, print what
it did and exit 130 / 143.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import TYPE_CHECKING, Any, Final, TextIO

from direktiv_sdk.cli._events import read_events, run_flow
from direktiv_sdk.cli._settings import (
    NAMESPACE_ENV,
    PRECEDENCE,
    option_pairs,
    project_config,
    resolve_functions,
    store_url,
)

SIDECAR_PORT_ENV = "DIREKTIV_SIDECAR_PORT"
"""Read by the harness's runners (``harness.sidecar.SIDECAR_PORT_ENV``)."""

if TYPE_CHECKING:
    from direktiv_sdk.engine.clock import Clock
    from direktiv_sdk.engine.observe import RunObserver
    from direktiv_sdk.engine.results import InstanceResult

__all__ = ["add_parser"]

NAME: Final = "run"
HELP: Final = "run a workflow/v1 flow file"
"""The command's one line in ``direktiv-sdk --help``."""

MAX_INPUT: Final = 128 << 20
"""The largest start input read from ``--input-file`` (Direktiv's 128 MiB request limit)."""


def add_parser(subparsers: Any) -> None:
    """Register the ``run`` subcommand."""
    parser = subparsers.add_parser(
        NAME,
        help=HELP,
        description="Run one instance of a Direktiv workflow/v1 flow on a local variable store.",
        epilog=PRECEDENCE,
    )
    parser.add_argument("flow", metavar="FLOW.yaml", help="the flow file")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--input", metavar="JSON", help="the start input, as JSON text")
    source.add_argument(
        "--input-file", metavar="PATH", help="read the start input from a file ('-': stdin)"
    )
    parser.add_argument(
        "--store",
        metavar="URL",
        help="store URL, options in the query (default: $DIREKTIV_STORE_URL, the config's "
        "store, else file://./.direktiv)",
    )
    parser.add_argument(
        "--namespace",
        metavar="NS",
        help=f"namespace (default: ${NAMESPACE_ENV}, the config's namespace, else default)",
    )
    parser.add_argument(
        "--workflow",
        "--path",
        dest="path",
        metavar="/P.yaml",
        help="workflow path, owner of workflow variables (default: the file's path under "
        "--root; --path is the old name)",
    )
    parser.add_argument(
        "--root", metavar="DIR", help="namespace file tree (default: the flow file's folder)"
    )
    parser.add_argument(
        "--instance",
        "--instance-id",
        dest="instance_id",
        metavar="ID",
        help="instance id (default: a new UUID; --instance-id is the old name)",
    )
    parser.add_argument(
        "--function",
        action="append",
        default=[],
        metavar="ID=TARGET",
        help="call function ID through TARGET: an http(s) URL, module:attr or path/app.py:attr "
        "(a Python function, WSGI or ASGI app, run in-process); repeatable",
    )
    parser.add_argument(
        "--secret",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a namespace secret for actions' secrets: lists (repeatable)",
    )
    parser.add_argument(
        "--sidecar-port",
        type=int,
        metavar="PORT",
        help="the sidecar front door functions reach (default: $DIREKTIV_SIDECAR_PORT, the "
        "config's sidecar-port, else 8889; "
        "0: none). Each run has its own sidecar; runs at once share the port",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="refuse to run a flow with lint errors (see direktiv-sdk lint), not only what "
        "Direktiv refuses; a subflow with lint errors fails its call",
    )
    parser.add_argument(
        "--event",
        action="append",
        default=[],
        metavar="FILE",
        help="CloudEvents (JSON object or lines; '-': stdin) to deliver once the flow waits",
    )
    parser.add_argument(
        "--virtual-clock",
        action="store_true",
        help="run on a virtual clock: delays, retry back-off and timeouts pass without waiting",
    )
    trace = parser.add_argument_group("live trace")
    trace.add_argument("--trace", action="store_true", help="print each state to stderr as it ends")
    trace.add_argument(
        "--trace-format",
        choices=("text", "json"),
        help="text blocks (default) or JSON lines, one object per state (implies --trace)",
    )
    trace.add_argument(
        "--trace-file",
        metavar="PATH",
        help="write the trace to PATH instead of stderr (implies --trace)",
    )
    parser.set_defaults(handler=_run, parser=parser)


def _input(parser: argparse.ArgumentParser, args: argparse.Namespace) -> bytes | None:
    if args.input is not None:
        try:
            json.loads(args.input)
        except ValueError as exc:
            parser.error(f"--input is not valid JSON ({exc}); use --input-file for other data")
        data: bytes = args.input.encode("utf-8", "surrogateescape")
        return data
    if args.input_file is None:
        return None
    try:
        if args.input_file == "-":
            data = sys.stdin.buffer.read(MAX_INPUT + 1)
        else:
            with open(args.input_file, "rb") as file:
                data = file.read(MAX_INPUT + 1)
    except OSError as exc:
        parser.error(f"cannot read --input-file {args.input_file!r}: {exc.strerror or exc}")
    if len(data) > MAX_INPUT:  # /dev/zero, or a file that is not an input
        parser.error(
            f"cannot read --input-file {args.input_file!r}: it is larger than "
            f"{MAX_INPUT >> 20} MiB (Direktiv's request limit); pass a smaller input"
        )
    return data


def _use_color(stream: TextIO) -> bool:
    """Return whether to colour the text trace: only on a terminal, never with $NO_COLOR."""
    if os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty is not None and isatty())


def _observer(parser: argparse.ArgumentParser, args: argparse.Namespace) -> RunObserver | None:
    if not (args.trace or args.trace_format or args.trace_file):
        return None
    from direktiv_sdk.engine.tracing import TraceWriter  # noqa: PLC0415 - only when tracing

    stream: TextIO = sys.stderr
    if args.trace_file:
        try:
            stream = open(args.trace_file, "w", encoding="utf-8")  # noqa: SIM115 - closed in _run
        except OSError as exc:
            parser.error(f"cannot write --trace-file {args.trace_file!r}: {exc.strerror or exc}")
    if args.trace_format == "json":
        return TraceWriter(stream, "json")
    return TraceWriter(stream, "text", color=_use_color(stream))


def _run(args: argparse.Namespace) -> int:
    parser: argparse.ArgumentParser = args.parser
    config = project_config()
    functions = resolve_functions(config, option_pairs(parser, args.function, "--function"))
    secrets = {**config.secrets, **option_pairs(parser, args.secret, "--secret")}
    namespace = args.namespace or os.environ.get(NAMESPACE_ENV) or config.namespace or "default"
    raw = _input(parser, args)
    if args.sidecar_port is not None:
        if not 0 <= args.sidecar_port <= 65535:
            parser.error(f"--sidecar-port {args.sidecar_port}: use 1-65535, or 0 for none")
        # This process is the runner: its function runners read the port from here.
        os.environ[SIDECAR_PORT_ENV] = str(args.sidecar_port)
    elif SIDECAR_PORT_ENV not in os.environ and config.sidecar_port is not None:
        os.environ[SIDECAR_PORT_ENV] = str(config.sidecar_port)  # [tool.direktiv-sdk]
    events = read_events(parser, args.event)
    clock: Clock | None = None
    if args.virtual_clock:
        from direktiv_sdk.engine.clock import VirtualClock  # noqa: PLC0415

        clock = VirtualClock()
    observer = _observer(parser, args)
    try:
        result, interrupted = run_flow(
            args.flow,
            raw=raw,
            store=store_url(args.store, config),
            namespace=namespace,
            path=args.path,
            root=args.root,
            instance_id=args.instance_id,
            functions=functions,
            secrets=secrets,
            events=events,
            strict=args.strict,
            clock=clock,
            observer=observer,
        )
    finally:
        stream = getattr(observer, "stream", None)
        if stream is not None and stream is not sys.stderr:
            stream.close()
    if interrupted is not None:
        # Cancelled by a signal: show what the instance did so far (the live trace already did).
        sys.stderr.write(f"direktiv-sdk: {interrupted.name}: cancelled the instance\n")
        if result is not None:
            if observer is None:
                _print_steps(result)
            sys.stderr.write((result.error_json() or "") + "\n")
        return interrupted.code
    assert result is not None
    if result.ok:
        sys.stdout.write((result.output_json or "null") + "\n")
        return 0
    sys.stderr.write((result.error_json() or "") + "\n")
    return 1


def _print_steps(result: InstanceResult) -> None:
    """Write the trace blocks of ``result``'s states to stderr."""
    from direktiv_sdk.engine.tracing import state_block  # noqa: PLC0415 - only when interrupted

    for step in result.trace:
        sys.stderr.write("\n".join(state_block(step)) + "\n")
