"""``direktiv-sdk vars get|set|delete|list|clear|owners``: read and write a store's variables.

``get`` streams the raw bytes to stdout, ``set`` streams them from ``--file`` or stdin, so
values of any size pass through in constant memory. ``list`` prints a table to a terminal and
one compact JSON object per variable otherwise (or with ``--json``). Only ``set`` creates a
store: the others exit 1 with ``no store at PATH`` when a ``file://`` store does not exist
(``--create`` creates it). A missing variable exits with 1; bad keys, owners and URLs with 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import IO, Final

from direktiv_sdk.cli._settings import NAMESPACE_ENV, PRECEDENCE, project_config, store_url
from direktiv_sdk.store import CHUNK_SIZE, Owner, VariableMeta, VariableStore
from direktiv_sdk.store.registry import STORE_URL_ENV, open_store

__all__ = ["add_parser"]

NAME: Final = "vars"
HELP: Final = "get, set, delete, list and clear variables"
"""The command's one line in ``direktiv-sdk --help``."""


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``vars`` subcommand and its actions."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--store",
        metavar="URL",
        help=f"store URL, options in the query (default: ${STORE_URL_ENV}, the config's "
        "store, else file://./.direktiv)",
    )
    common.add_argument(
        "--namespace",
        metavar="NS",
        help=f"namespace (default: ${NAMESPACE_ENV}, the config's namespace, else default)",
    )
    owner = common.add_mutually_exclusive_group()
    owner.add_argument(
        "--workflow",
        "--path",
        dest="workflow",
        metavar="/P.yaml",
        help="workflow scope of this flow path (as `run --workflow`)",
    )
    owner.add_argument(
        "--instance",
        "--instance-id",
        dest="instance",
        metavar="ID",
        help="instance scope of this instance id (as `run --instance`)",
    )
    reading = argparse.ArgumentParser(add_help=False)
    reading.add_argument(
        "--create", action="store_true", help="create the store if it does not exist"
    )

    parser = subparsers.add_parser(
        NAME,
        help=HELP,
        description="Read and write variables. Without --workflow or --instance the "
        "namespace scope is used.",
        epilog=PRECEDENCE,
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    get = actions.add_parser(
        "get", parents=[common, reading], help="write a variable's bytes to stdout"
    )
    get.add_argument("key")
    get.set_defaults(handler=_get)

    put = actions.add_parser("set", parents=[common], help="store a variable from --file or stdin")
    put.add_argument("key")
    put.add_argument(
        "--file", metavar="PATH", help="read the value from this file (default: stdin)"
    )
    put.add_argument("--mime-type", default="", help="mime type to store (default: none)")
    put.set_defaults(handler=_set)

    delete = actions.add_parser("delete", parents=[common, reading], help="delete a variable")
    delete.add_argument("key")
    delete.set_defaults(handler=_delete)

    listing = actions.add_parser(
        "list",
        parents=[common, reading],
        help="list the variables, oldest first: a table at a terminal, else JSON lines",
    )
    listing.add_argument("--json", action="store_true", help="JSON lines also at a terminal")
    listing.set_defaults(handler=_list)

    clear = actions.add_parser(
        "clear", parents=[common, reading], help="delete every variable of the scope"
    )
    clear.set_defaults(handler=_clear)

    owners = actions.add_parser(
        "owners",
        parents=[common, reading],
        help="list the namespace, workflows and instances that hold variables",
    )
    owners.add_argument("--all", action="store_true", help="every namespace, not only --namespace")
    owners.add_argument("--json", action="store_true", help="JSON lines also at a terminal")
    owners.set_defaults(handler=_owners)


def _namespace(args: argparse.Namespace) -> str:
    namespace: str = (
        args.namespace or os.environ.get(NAMESPACE_ENV) or project_config().namespace or "default"
    )
    return namespace


def _owner(args: argparse.Namespace) -> Owner:
    namespace = _namespace(args)
    if args.workflow is not None:
        return Owner.for_workflow(namespace, args.workflow)
    if args.instance is not None:
        return Owner.for_instance(namespace, args.instance)
    return Owner.for_namespace(namespace)


def _missing(what: object) -> int:
    print(f"direktiv-sdk: error: {what} does not exist", file=sys.stderr)
    return 1


def _store(args: argparse.Namespace, *, creates: bool = False) -> VariableStore:
    """Open the store; only ``set`` (or ``--create``) may create a ``file://`` store."""
    url = store_url(args.store, project_config())
    if creates or getattr(args, "create", False) or url.partition("://")[0].lower() != "file":
        return open_store(url)
    return open_store(url, create=False)


def _get(args: argparse.Namespace) -> int:
    ref = _owner(args).ref(args.key)
    with _store(args) as store:
        reader = store.open(ref)
        if reader is None:
            return _missing(ref)
        with reader:
            while chunk := reader.read(CHUNK_SIZE):
                sys.stdout.buffer.write(chunk)
        sys.stdout.buffer.flush()
    return 0


def _set(args: argparse.Namespace) -> int:
    ref = _owner(args).ref(args.key)
    source: IO[bytes] | bytes
    if args.file is None:
        source = sys.stdin.buffer
        if sys.stdin.isatty():
            print(
                f"direktiv-sdk: reading the value of {args.key!r} from stdin; end it with "
                "Ctrl-D (or pass --file PATH)",
                file=sys.stderr,
                flush=True,
            )
            # One read() ends at the first Ctrl-D; chunked reads would wait for a second one.
            source = sys.stdin.buffer.read()
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
        with _store(args, creates=True) as store:
            store.set(ref, source, mime_type=args.mime_type)
    finally:
        if not isinstance(source, bytes) and source is not sys.stdin.buffer:
            source.close()
    return 0


def _delete(args: argparse.Namespace) -> int:
    ref = _owner(args).ref(args.key)
    with _store(args) as store:
        return 0 if store.delete(ref) else _missing(ref)


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def _size(meta: VariableMeta) -> str:
    return f"{meta.size} B" if meta.size < 10_000 else f"{meta.size / 1024:.0f} KiB"


def _list(args: argparse.Namespace) -> int:
    owner = _owner(args)
    with _store(args) as store:
        metas = store.list(owner)
    if args.json or not sys.stdout.isatty():
        for meta in metas:
            sys.stdout.write(json.dumps(meta.to_json(), separators=(",", ":")) + "\n")
        return 0
    if not metas:
        print(f"no variables in {owner}")
        return 0
    rows = [["NAME", "SIZE", "MIME TYPE", "UPDATED"]]
    for meta in metas:
        updated = str(meta.to_json()["updatedAt"])
        rows.append([meta.name, _size(meta), meta.mime_type or "-", updated])
    print(_table(rows))
    return 0


def _clear(args: argparse.Namespace) -> int:
    owner = _owner(args)
    with _store(args) as store:
        count = store.clear(owner)
    print(f"deleted {count} variable{'' if count == 1 else 's'} of {owner}", file=sys.stderr)
    return 0


def _owner_json(owner: Owner) -> dict[str, str]:
    found = {"namespace": owner.namespace, "scope": owner.scope.value}
    if owner.workflow is not None:
        found["workflow"] = owner.workflow
    if owner.instance is not None:
        found["instance"] = owner.instance
    return found


def _owners(args: argparse.Namespace) -> int:
    with _store(args) as store:
        owners = store.owners(None if args.all else _namespace(args))
    if args.json or not sys.stdout.isatty():
        for owner in owners:
            sys.stdout.write(json.dumps(_owner_json(owner), separators=(",", ":")) + "\n")
        return 0
    rows = [["NAMESPACE", "SCOPE", "WORKFLOW / INSTANCE"]]
    for owner in owners:
        rows.append([owner.namespace, owner.scope.value, owner.workflow or owner.instance or ""])
    print(_table(rows) if owners else "no variables")
    return 0
