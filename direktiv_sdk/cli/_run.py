"""``direktiv-sdk run``: run a flow file once and print its output (the interpreter's CLI).

stdout: the instance output as Go-JSON (compact, sorted keys). Exit 0 when the instance
completed; 1 when it failed, crashed or was cancelled, with ``{"error":{"code":...,
"message":...}}`` on stderr; 2 when the flow does not load or the arguments are wrong.
``--trace`` prints one block per state to stderr. ``--event FILE`` delivers CloudEvents once the
instance waits. Ctrl-C / SIGTERM cancel the instance, print what it did and exit 130 / 143.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import TYPE_CHECKING, Any, Final, TextIO

from direktiv_sdk.cli._events import read_events, run_flow
from direktiv_sdk.expr.gojson import dumps

SIDECAR_PORT_ENV = "DIREKTIV_SIDECAR_PORT"
"""Read by the harness's runners (``harness.sidecar.SIDECAR_PORT_ENV``)."""

if TYPE_CHECKING:
    from direktiv_sdk.engine.results import InstanceResult, StateTrace

MAX_INPUT: Final = 128 << 20
"""The largest start input read from ``--input-file`` (Direktiv's 128 MiB request limit)."""


def add_parser(subparsers: Any) -> None:
    """Register the ``run`` subcommand."""
    parser = subparsers.add_parser(
        "run",
        help="run a workflow/v1 flow file",
        description="Run one instance of a Direktiv workflow/v1 flow on a local variable store.",
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
        help="store URL (default: $DIREKTIV_STORE_URL or file://./.direktiv)",
    )
    parser.add_argument("--namespace", default="default", metavar="NS", help="default: default")
    parser.add_argument(
        "--path", metavar="/P.yaml", help="workflow path (default: the file's path under --root)"
    )
    parser.add_argument(
        "--root", metavar="DIR", help="namespace file tree (default: the flow file's folder)"
    )
    parser.add_argument("--instance-id", metavar="ID", help="instance id (default: a new UUID)")
    parser.add_argument(
        "--function",
        action="append",
        default=[],
        metavar="ID=URL",
        help="call knative function ID at URL (repeatable)",
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
        help="the sidecar front door functions reach (default: $DIREKTIV_SIDECAR_PORT or 8889; "
        "0: none). Each run has its own sidecar; runs at once share the port",
    )
    parser.add_argument("--trace", action="store_true", help="print each state's work to stderr")
    parser.add_argument(
        "--strict",
        action="store_true",
        help="refuse to run a flow with lint errors (see direktiv-sdk lint), not only what "
        "Direktiv refuses",
    )
    parser.add_argument(
        "--event",
        action="append",
        default=[],
        metavar="FILE",
        help="CloudEvents (JSON object or lines; '-': stdin) to deliver once the flow waits",
    )
    parser.set_defaults(handler=_run, parser=parser)


def _pairs(parser: argparse.ArgumentParser, values: list[str], option: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for value in values:
        name, sep, target = value.partition("=")
        if not sep or not name or not target:
            parser.error(f"{option} {value!r}: write {option} NAME=VALUE")
        pairs[name] = target
    return pairs


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


def _run(args: argparse.Namespace) -> int:
    parser: argparse.ArgumentParser = args.parser
    functions = _pairs(parser, args.function, "--function")
    secrets = _pairs(parser, args.secret, "--secret")
    raw = _input(parser, args)
    if args.sidecar_port is not None:
        if not 0 <= args.sidecar_port <= 65535:
            parser.error(f"--sidecar-port {args.sidecar_port}: use 1-65535, or 0 for none")
        # This process is the runner: its function runners read the port from here.
        os.environ[SIDECAR_PORT_ENV] = str(args.sidecar_port)
    events = read_events(parser, args.event)
    result, interrupted = run_flow(
        args.flow,
        raw=raw,
        store=args.store,
        namespace=args.namespace,
        path=args.path,
        root=args.root,
        instance_id=args.instance_id,
        functions=functions,
        secrets=secrets,
        events=events,
        strict=args.strict,
    )
    if interrupted is not None:
        # Cancelled by a signal: show what the instance did so far, whatever --trace says.
        sys.stderr.write(f"direktiv-sdk: {interrupted.name}: cancelled the instance\n")
        if result is not None:
            print_trace(result, sys.stderr)
            sys.stderr.write((result.error_json() or "") + "\n")
        return interrupted.code
    assert result is not None
    if args.trace:
        print_trace(result, sys.stderr)
    if result.ok:
        sys.stdout.write((result.output_json or "null") + "\n")
        return 0
    sys.stderr.write((result.error_json() or "") + "\n")
    return 1


def _short(value: object, limit: int = 2000) -> str:
    text = dumps(value)  # type: ignore[arg-type]
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"


def _block(step: StateTrace, out: TextIO, indent: str) -> None:
    out.write(f"{indent}-- state {step.state} ({step.type})\n")
    out.write(f"{indent}   input:     {_short(step.input)}\n")
    for line in step.logs:
        out.write(f"{indent}   log:       {line}\n")
    if step.var is not None:
        out.write(f"{indent}   var:       {_short(step.var)}\n")
    for write in step.writes:
        if write.data is None:
            out.write(f"{indent}   delete:    {write.scope} {write.key}\n")
        else:
            shown = write.data.decode("utf-8", "replace")
            if len(shown) > 200:
                shown = shown[:200] + f"... ({len(write.data)} bytes)"
            mime = write.mime_type or '""'
            out.write(f"{indent}   set:       {write.scope} {write.key} = {shown} ({mime})\n")
    if step.transform is not None:
        out.write(f"{indent}   transform: {_short(step.transform)}\n")
    if step.error_code is not None:
        how = "caught" if step.caught else "not caught"
        out.write(f"{indent}   error:     {step.error_code}: {step.error_message} ({how})\n")
    out.write(f"{indent}   next:      {step.next or '(end)'}\n")


def print_trace(result: InstanceResult, out: TextIO, indent: str = "") -> None:
    """Write a readable block per state of ``result`` (and its subflows) to ``out``."""
    out.write(f"{indent}instance {result.instance_id} {result.path} ({result.namespace})\n")
    for step in result.trace:
        _block(step, out, indent)
    if sum(len(step.logs) for step in result.trace) != len(result.logs):
        # Some lines belong to no state (a crash outside one): show the whole log once.
        for line in result.logs:
            out.write(f"{indent}   log:       {line}\n")
    for child in result.children:
        print_trace(child, out, indent + "    ")
    end = result.status
    if result.error_code:
        end += f": {result.error_code}: {result.error_message}"
    out.write(f"{indent}-- {end}\n")
