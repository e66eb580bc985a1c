"""``direktiv-sdk graph FLOW``: the flow as a Mermaid flowchart or a Graphviz DOT digraph.

``--trace-file RUN.jsonl`` (written by ``run --trace-format json --trace-file RUN.jsonl``)
highlights the states and transitions the run took. A flow that does not load exits 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Final

__all__ = ["add_parser"]

NAME: Final = "graph"
HELP: Final = "draw a flow as Mermaid or Graphviz DOT"
"""The command's one line in ``direktiv-sdk --help``."""


def add_parser(subparsers: Any) -> None:
    """Register the ``graph`` subcommand."""
    parser = subparsers.add_parser(
        NAME,
        help=HELP,
        description="Print a flow's states and transitions as a Mermaid flowchart or a DOT "
        "digraph: switch conditions on their edges, catch edges dashed, the start marked.",
    )
    parser.add_argument("flow", metavar="FLOW.yaml", help="the flow file")
    parser.add_argument(
        "--format", choices=("mermaid", "dot"), default="mermaid", help="default: mermaid"
    )
    parser.add_argument(
        "--trace-file",
        metavar="RUN.jsonl",
        help="a JSON trace of a run of this flow: highlight the path it took",
    )
    parser.set_defaults(handler=_graph, parser=parser)


def _records(parser: argparse.ArgumentParser, path: str) -> list[dict[str, object]]:
    try:
        with open(path, encoding="utf-8") as file:
            lines = file.read().splitlines()
    except OSError as exc:
        parser.error(f"cannot read --trace-file {path!r}: {exc.strerror or exc}")
    records: list[dict[str, object]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if not isinstance(record, dict) or "event" not in record:
            parser.error(f"{path}:{number}: not a JSON trace record (run --trace-format json)")
        records.append(record)
    return records


def _graph(args: argparse.Namespace) -> int:
    # Imported here: loading flows costs every other command's start-up.
    from direktiv_sdk.flow.graph import render, taken_edges  # noqa: PLC0415
    from direktiv_sdk.flow.loader import load_workflow  # noqa: PLC0415

    parser: argparse.ArgumentParser = args.parser
    taken = taken_edges(_records(parser, args.trace_file)) if args.trace_file else set()
    workflow = load_workflow(args.flow)
    sys.stdout.write(render(workflow, args.format, taken))
    return 0
