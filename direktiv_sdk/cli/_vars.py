"""``direktiv-sdk vars get|set|delete|list``: read and write a store's variables.

``get`` streams the raw bytes to stdout, ``set`` streams them from ``--file`` or stdin, so
values of any size pass through in constant memory. ``list`` prints one compact JSON object
per variable. A missing variable exits with 1; bad keys, owners and URLs exit with 2.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from typing import IO

from direktiv_sdk.store import CHUNK_SIZE, Owner, VariableStore
from direktiv_sdk.store.registry import STORE_URL_ENV, open_store

__all__ = ["add_parser"]


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``vars`` subcommand and its actions."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--store",
        metavar="URL",
        help=f"store URL (default: ${STORE_URL_ENV}, else file://./.direktiv)",
    )
    common.add_argument(
        "--namespace", metavar="NS", default="default", help="namespace (default: default)"
    )
    owner = common.add_mutually_exclusive_group()
    owner.add_argument("--workflow", metavar="PATH", help="workflow scope of this flow path")
    owner.add_argument("--instance", metavar="ID", help="instance scope of this instance id")

    parser = subparsers.add_parser(
        "vars",
        help="get, set, delete and list variables",
        description="Read and write variables. Without --workflow or --instance the "
        "namespace scope is used.",
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    get = actions.add_parser("get", parents=[common], help="write a variable's bytes to stdout")
    get.add_argument("key")
    get.set_defaults(handler=_get)

    put = actions.add_parser("set", parents=[common], help="store a variable from --file or stdin")
    put.add_argument("key")
    put.add_argument(
        "--file", metavar="PATH", help="read the value from this file (default: stdin)"
    )
    put.add_argument("--mime-type", default="", help="mime type to store (default: none)")
    put.set_defaults(handler=_set)

    delete = actions.add_parser("delete", parents=[common], help="delete a variable")
    delete.add_argument("key")
    delete.set_defaults(handler=_delete)

    listing = actions.add_parser(
        "list", parents=[common], help="print one JSON object per variable, oldest first"
    )
    listing.set_defaults(handler=_list)


def _owner(args: argparse.Namespace) -> Owner:
    if args.workflow is not None:
        return Owner.for_workflow(args.namespace, args.workflow)
    if args.instance is not None:
        return Owner.for_instance(args.namespace, args.instance)
    return Owner.for_namespace(args.namespace)


def _missing(what: object) -> int:
    print(f"direktiv-sdk: error: {what} does not exist", file=sys.stderr)
    return 1


def _store(args: argparse.Namespace) -> VariableStore:
    return open_store(args.store)


def _get(args: argparse.Namespace) -> int:
    ref = _owner(args).ref(args.key)
    with _store(args) as store:
        reader = store.open(ref)
        if reader is None:
            return _missing(ref)
        with reader:
            shutil.copyfileobj(reader, sys.stdout.buffer, CHUNK_SIZE)
        sys.stdout.buffer.flush()
    return 0


def _set(args: argparse.Namespace) -> int:
    ref = _owner(args).ref(args.key)
    source: IO[bytes]
    if args.file is None:
        source = sys.stdin.buffer
    else:
        try:
            source = open(args.file, "rb")  # noqa: SIM115 - closed below
        except OSError as exc:
            print(
                f"direktiv-sdk: error: cannot read {args.file!r}: {exc.strerror or exc}",
                file=sys.stderr,
            )
            return 2
    try:
        with _store(args) as store:
            store.set(ref, source, mime_type=args.mime_type)
    finally:
        if source is not sys.stdin.buffer:
            source.close()
    return 0


def _delete(args: argparse.Namespace) -> int:
    ref = _owner(args).ref(args.key)
    with _store(args) as store:
        return 0 if store.delete(ref) else _missing(ref)


def _list(args: argparse.Namespace) -> int:
    owner = _owner(args)
    with _store(args) as store:
        for meta in store.list(owner):
            sys.stdout.write(json.dumps(meta.to_json(), separators=(",", ":")) + "\n")
    return 0
