"""The action's temp dir: write its ``files:`` before the call, collect ``out/`` after it.

Semantics §6.5, §6.6 and the project's decisions §9.3, §9.5, §9.6: scope defaults to
``instance``; a missing variable gives an empty file (``plain``/``base64``) or an empty folder
(``tar``/``tar.gz``); corrupt or hostile data is an error and nothing is written outside the
temp dir; ``out/file`` is created as the reference does, and anything left in it is an error,
because scope ``file`` is read-only.

Nothing here resolves a path twice: the temp dir is opened once with ``O_NOFOLLOW`` and every
file and folder below it is reached through directory descriptors (:mod:`._fdio`), so a
process the function leaves behind cannot redirect a write or a read with a symbolic link, at
any moment. FIFOs, sockets and devices are never opened. ``out/`` entries are streamed into the
store (a 1 GiB file costs a chunk of memory, not 1 GiB), each file up to its size when opened.
"""

from __future__ import annotations

import base64
import binascii
import errno
import io
import os
import posixpath
import stat
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final

from direktiv_sdk.engine.functions import FILE_SCOPES, FILE_TYPES, FunctionFile
from direktiv_sdk.engine.namespace_files import read_namespace_file
from direktiv_sdk.engine.results import FileInfo
from direktiv_sdk.errors import (
    FileEntryError,
    InvalidFileTypeError,
    InvalidKeyError,
    InvalidScopeError,
    OutFolderError,
    PathEscapeError,
)
from direktiv_sdk.flow.model import file_mode
from direktiv_sdk.store import KEY_PATTERN, Scope, validate_key
from harness.files._archives import extract_archive_at, make_folders, write_tar_gz
from harness.files._fdio import (
    BoundedReader,
    create_file,
    list_entries,
    make_folder,
    open_folder,
    open_regular,
    write_all,
)
from harness.sidecar._action import ActionContext, VariableWrite

__all__ = ["OUT_FOLDERS", "check_file_types", "collect_out", "write_files"]

OUT_FOLDERS: Final = ("file", "namespace", "workflow", "instance")
"""The folders under ``out/``, in the order they are collected."""

_SPOOL: Final = 8 << 20
"""A folder's tar.gz is built in memory up to this size, then in an unnamed temp file."""


@dataclass(frozen=True, slots=True)
class _Planned:
    index: int
    file: FunctionFile
    scope: str
    target: str
    """The path below the temp dir, normalised."""


def check_file_types(files: Sequence[FunctionFile]) -> None:
    """Raise the catchable :class:`InvalidFileTypeError` for the first unknown ``type``."""
    for index, file in enumerate(files):
        if file.type not in FILE_TYPES:
            raise InvalidFileTypeError(index, file.type)


def _target(file: FunctionFile, scope: str, temp_dir: Path) -> str:
    if file.as_name:
        raw = file.as_name
        if raw.startswith("/"):
            raise PathEscapeError(raw, str(temp_dir))
    else:
        # A namespace file is named by its path in the namespace tree, e.g. /dir/f.json.
        raw = file.key.lstrip("/") if scope == "file" else file.key
    target = posixpath.normpath(raw) if raw else ""
    if target == ".." or target.startswith("../") or "\x00" in raw:
        raise PathEscapeError(raw, str(temp_dir))
    if target in ("", "."):
        raise FileEntryError(raw, "the name is empty; give the entry a key or an 'as' name")
    return target


def _plan(files: Sequence[FunctionFile], temp_dir: Path) -> list[_Planned]:
    planned: list[_Planned] = []
    seen: set[str] = set()
    for index, file in enumerate(files):
        scope = file.scope or Scope.INSTANCE.value
        if scope not in FILE_SCOPES:
            raise InvalidScopeError(scope, FILE_SCOPES)
        target = _target(file, scope, temp_dir)
        if target in seen:
            raise FileEntryError(
                target, "another entry writes there too; give one of them a different 'as'"
            )
        seen.add(target)
        planned.append(_Planned(index, file, scope, target))
    return planned


def _namespace_file(root: Path | None, key: str) -> bytes:
    """Return the bytes of namespace file ``key`` below ``root`` (missing → empty)."""
    relative = posixpath.normpath(key.lstrip("/")) if key.strip("/") else "."
    if relative == ".." or relative.startswith("../") or "\x00" in key:
        raise PathEscapeError(key, str(root))
    if root is None or relative == ".":
        return b""
    try:
        found = read_namespace_file(root, relative.split("/"))
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # a link may lead anywhere: refused, never followed
            raise PathEscapeError(key, str(root)) from exc
        # As the reference: a namespace file that cannot be fetched (a folder, a link, a FIFO,
        # anything but a regular file) reads as empty.
        return b""
    return found or b""


def _source(plan: _Planned, context: ActionContext, root: Path | None) -> bytes:
    if plan.scope == "file":
        return _namespace_file(root, plan.file.key)
    variable = context.store.get(context.ref(Scope(plan.scope), plan.file.key))
    return b"" if variable is None else variable.data


def _write_plain(parent: int, name: str, data: bytes, mode: int | None) -> None:
    fd = create_file(parent, name, exclusive=True)
    try:
        write_all(fd, data)
        if mode is not None:
            os.fchmod(fd, mode)
    finally:
        os.close(fd)


def _write(plan: _Planned, data: bytes, temp: int, max_extract_size: int | None) -> None:
    file = plan.file
    parts = tuple(plan.target.split("/"))
    mode = None if file.permissions is None else file_mode(file.permissions)
    try:
        parent = make_folders(temp, parts[:-1])
    except FileNotFoundError as exc:
        raise FileEntryError(plan.target, "a folder on its path vanished; try again") from exc
    except OSError as exc:  # NotADirectoryError: a file or a link is in the way
        raise FileEntryError(
            plan.target,
            "a folder on its path is already a file; give one of the entries another 'as'",
        ) from exc
    try:
        if file.type in ("tar", "tar.gz"):
            extract_archive_at(
                io.BytesIO(data),
                parent,
                parts[-1],
                archive=plan.target,
                compressed=file.type == "tar.gz",
                mode=mode,
                max_size=max_extract_size,
            )
            return
        if file.type == "base64":
            try:
                data = base64.b64decode(data.replace(b"\r", b"").replace(b"\n", b""), validate=True)
            except binascii.Error as exc:
                raise FileEntryError(
                    plan.target,
                    f"its data is not valid base64 ({exc}); store standard base64 "
                    "or use type 'plain'",
                ) from exc
        try:
            _write_plain(parent, parts[-1], data, mode)
        except FileExistsError as exc:
            raise FileEntryError(
                plan.target, "something else created it first; nothing was written there"
            ) from exc
        except OSError as exc:
            raise FileEntryError(plan.target, f"{exc.strerror or exc}") from exc
    finally:
        os.close(parent)


def _make_out_folders(temp: int) -> None:
    try:
        out = make_folder(temp, "out", 0o777)
    except OSError as exc:
        raise OutFolderError(
            "out", "a files: entry wrote a file there; give that entry another 'as' name"
        ) from exc
    try:
        for name in OUT_FOLDERS:
            try:
                os.close(make_folder(out, name, 0o777))
            except OSError as exc:
                raise OutFolderError(
                    f"out/{name}",
                    "a files: entry wrote a file there; give that entry another 'as' name",
                ) from exc
    finally:
        os.close(out)


def open_temp_dir(temp_dir: Path) -> int:
    """Open the action's temp dir itself, refusing a symbolic link in its place."""
    try:
        return os.open(temp_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise OutFolderError(
            str(temp_dir), f"the temp dir cannot be opened ({exc.strerror}); leave it in place"
        ) from exc


def write_files(
    files: Sequence[FunctionFile],
    temp_dir: Path,
    context: ActionContext,
    root: Path | None,
    *,
    max_extract_size: int | None = None,
) -> tuple[FileInfo, ...]:
    """Write ``files`` into the existing folder ``temp_dir`` and create the ``out/`` folders.

    ``max_extract_size`` caps what each archive unpacks to (``None``: no cap, as Direktiv).
    Returns what was written: each entry's name, type and source size, in order.

    Raises:
        InvalidFileTypeError: An entry has an unknown ``type`` (catchable).
        InvalidScopeError, InvalidKeyError, PathEscapeError, FileEntryError, ArchiveError,
        OutFolderError: The action cannot be prepared (the instance crashes).
    """
    check_file_types(files)
    plans = _plan(files, temp_dir)
    temp = open_temp_dir(temp_dir)
    written: list[FileInfo] = []
    try:
        for plan in plans:
            data = _source(plan, context, root)
            _write(plan, data, temp, max_extract_size)
            written.append(FileInfo(plan.target, plan.file.type or "plain", len(data)))
        _make_out_folders(temp)
    finally:
        os.close(temp)
    return tuple(written)


def _open_out_folder(out: int, folder: str) -> int | None:
    try:
        return open_folder(out, folder)
    except FileNotFoundError:
        return None
    except NotADirectoryError as exc:
        raise OutFolderError(
            f"out/{folder}", "it is not a folder any more; leave out/ as it is"
        ) from exc


def _entries(folder: int) -> list[tuple[str, bool]]:
    """Return ``(name, is_directory)`` of the files and folders in ``folder``."""
    return [
        (name, stat.S_ISDIR(mode))
        for name, mode in list_entries(folder)
        if stat.S_ISREG(mode) or stat.S_ISDIR(mode)
    ]


def _open_entry(folder: int, name: str, is_directory: bool) -> IO[bytes] | None:
    """Open one ``out/`` entry as a stream (a folder as its tar.gz); ``None`` if it is gone."""
    if not is_directory:
        fd = open_regular(folder, name)
        if fd is None:
            return None  # gone, or swapped for something that is not a regular file
        return BoundedReader(fd, os.fstat(fd).st_size)  # type: ignore[return-value]
    try:
        sub = open_folder(folder, name)
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL)  # noqa: SIM115 - returned
        write_tar_gz(sub, spool)
    finally:
        os.close(sub)
    spool.seek(0)
    return spool


def collect_out(temp_dir: Path, context: ActionContext) -> tuple[VariableWrite, ...]:
    """Store what the function left in ``out/`` as variables; return the writes in order.

    Every name is checked before anything is stored, so a bad name stores nothing. Entries
    that vanish while collected are left out.

    Raises:
        OutFolderError: An entry is in ``out/file`` or is not named like a variable, or a
            folder of ``out/`` was replaced by something else.
    """
    temp = open_temp_dir(temp_dir)
    try:
        out = open_folder(temp, "out")
    except FileNotFoundError:
        os.close(temp)
        return ()
    except NotADirectoryError as exc:
        os.close(temp)
        raise OutFolderError("out", "it is not a folder any more; leave out/ as it is") from exc
    os.close(temp)
    try:
        return _collect(out, context)
    finally:
        os.close(out)


def _collect(out: int, context: ActionContext) -> tuple[VariableWrite, ...]:
    # Each folder is opened once: what is listed and read is that folder, even if it is
    # renamed or swapped for a link meanwhile.
    folders: dict[str, int] = {}
    try:
        for folder in OUT_FOLDERS:
            fd = _open_out_folder(out, folder)
            if fd is not None:
                folders[folder] = fd
        return _store_entries(folders, context)
    finally:
        for fd in folders.values():
            os.close(fd)


def _store_entries(folders: dict[str, int], context: ActionContext) -> tuple[VariableWrite, ...]:
    if "file" in folders:
        for name, _ in _entries(folders["file"]):
            raise OutFolderError(
                f"out/file/{name}",
                "scope 'file' is read-only; write it under out/namespace, out/workflow or "
                "out/instance",
            )
    planned: list[tuple[str, str, bool]] = []
    for folder in OUT_FOLDERS[1:]:
        if folder not in folders:
            continue
        for name, is_directory in _entries(folders[folder]):
            try:
                validate_key(name)
            except InvalidKeyError as exc:
                raise OutFolderError(
                    f"out/{folder}/{name}",
                    f"{name!r} is not a valid variable name; rename it to match {KEY_PATTERN}",
                ) from exc
            planned.append((folder, name, is_directory))
    writes = []
    for folder, name, is_directory in planned:
        stream = _open_entry(folders[folder], name, is_directory)
        if stream is None:
            continue  # it vanished, or was swapped for something else, meanwhile
        with stream:
            writes.append(context.set_variable(Scope(folder), name, stream, "", "out"))
    return tuple(writes)
