"""``direktiv-sdk run``: placeholder until the interpreter lands (issue 3)."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def add_parser(subparsers: Any) -> None:
    """Register the ``run`` subcommand."""
    parser = subparsers.add_parser("run", help="run a workflow/v1 flow file")
    parser.add_argument("flow")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    print("direktiv-sdk: error: the interpreter is not built yet", file=sys.stderr)
    return 2
