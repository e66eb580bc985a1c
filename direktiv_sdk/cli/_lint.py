"""``direktiv-sdk lint FLOW|DIR ...``: report what a strict load would refuse, and warnings.

One finding per line, ``file:line:col: CODE message`` (or a JSON list with ``--format json``).
Exit 1 when any finding is an error, 0 otherwise (warnings only or nothing); 2 when a path
does not exist.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Final

__all__ = ["add_parser"]

NAME: Final = "lint"
HELP: Final = "check flows for problems Direktiv only meets when they run (docs/lint.md)"
"""The command's one line in ``direktiv-sdk --help``."""


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``lint`` subcommand."""
    parser = subparsers.add_parser(
        NAME,
        help=HELP,
        description="Check flow files (folders: every *.yaml / *.yml in them) and print one "
        "finding per line. Exit 1 if any finding is an error.",
    )
    parser.add_argument("paths", nargs="+", metavar="FLOW|DIR", help="flow files or folders")
    parser.add_argument(
        "--format", choices=("text", "json"), default="text", help="output format (text)"
    )
    parser.set_defaults(handler=_lint, parser=parser)


def _lint(args: argparse.Namespace) -> int:
    # Imported here: loading flows needs jq, which `direktiv-sdk vars` never does.
    from direktiv_sdk.flow.lint import lint_paths  # noqa: PLC0415

    parser: argparse.ArgumentParser = args.parser
    missing = [p for p in args.paths if not Path(p).exists()]
    if missing:
        parser.error(f"no such file or folder: {missing[0]}")
    findings = lint_paths(args.paths)
    if args.format == "json":
        rows = [
            {
                "file": f.file,
                "line": f.line,
                "column": f.column,
                "code": f.code,
                "severity": f.severity,
                "state": f.state,
                "message": f.message,
            }
            for f in findings
        ]
        print(json.dumps(rows, indent=2))
    else:
        for finding in findings:
            print(finding)
        errors = sum(f.severity == "error" for f in findings)
        print(f"{errors} error(s), {len(findings) - errors} warning(s)", file=sys.stderr)
    return 1 if any(f.severity == "error" for f in findings) else 0
