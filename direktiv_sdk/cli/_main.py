"""The ``direktiv-sdk`` command: ``vars``, ``run`` (the interpreter), ``lint``, ``graph``
and ``events``.

Each subcommand lives in its own private module with its ``NAME``, its one-line ``HELP``,
``add_parser(subparsers)`` and a handler bound through ``set_defaults(handler=...)``. Only the
command being run gets its options (argparse spends ~0.07 ms per option, mostly in gettext);
the others are listed by name and help, which is all ``direktiv-sdk --help`` shows.
Exit codes: 0 success, 1 the operation failed (missing variable, failed instance), 2 usage or
load errors.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Final

from direktiv_sdk import __version__
from direktiv_sdk.cli import _events as _cli_events
from direktiv_sdk.cli import _graph as _cli_graph
from direktiv_sdk.cli import _lint as _cli_lint
from direktiv_sdk.cli import _run as _cli_run
from direktiv_sdk.cli import _vars as _cli_vars
from direktiv_sdk.errors import DirektivError

__all__ = ["main"]


_COMMANDS: Final = (_cli_vars, _cli_run, _cli_lint, _cli_events, _cli_graph)


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """Return the argument parser of the ``direktiv-sdk`` command, complete for ``argv``'s command.

    Without ``argv`` every command gets all its options.
    """
    parser = argparse.ArgumentParser(
        prog="direktiv-sdk",
        description="Direktiv workflow variables, flows and functions on your machine.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # The top-level options take no value, so the first word that is not an option is the command.
    chosen = None if argv is None else next((a for a in argv if not a.startswith("-")), "")
    for command in _COMMANDS:
        if chosen is None or chosen == command.NAME:
            command.add_parser(subparsers)
        else:
            subparsers.add_parser(command.NAME, help=command.HELP)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit code."""
    words = sys.argv[1:] if argv is None else argv
    args = build_parser(words).parse_args(words)
    try:
        code: int = args.handler(args)
    except DirektivError as exc:
        print(f"direktiv-sdk: error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, ValueError | LookupError) else 1
    except BrokenPipeError:
        _drop_stdout()
        return 1
    except KeyboardInterrupt:  # Ctrl-C: one line, the shell's status for SIGINT, no traceback
        print("direktiv-sdk: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:  # stdout or --file could not be written or read (a full disk...)
        _drop_stdout()
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"direktiv-sdk: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 1
    return code


def _drop_stdout() -> None:
    """Point stdout at /dev/null, so that flushing it at exit does not fail a second time."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # no real stdout (captured, closed): nothing to protect
        pass
