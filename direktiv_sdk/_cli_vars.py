"""``direktiv-sdk vars``: placeholder until the store CLI lands (issue 2)."""

from __future__ import annotations

from typing import Any


def add_parser(subparsers: Any) -> None:
    """Register the ``vars`` subcommand."""
    parser = subparsers.add_parser("vars", help="get, set, delete and list variables")
    parser.set_defaults(handler=lambda args: 2)
