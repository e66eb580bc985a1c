"""The action's temp dir: write its ``files:`` before the call, collect ``out/`` after it.

Semantics §6.5, §6.6 and the project's decisions §9.3, §9.5, §9.6: scope defaults to
``instance``; a missing variable gives an empty file (``plain``/``base64``) or an empty folder
(``tar``/``tar.gz``); corrupt or hostile data is an error and nothing is written outside the
temp dir; ``out/file`` is created as the reference does, and anything left in it is an error,
because scope ``file`` is read-only.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import io
import os
import posixpath
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from direktiv_sdk.engine.functions import FILE_SCOPES, FILE_TYPES, FunctionFile
from direktiv_sdk.errors import (
    FileEntryError,
    InvalidFileTypeError,
    InvalidKeyError,
    InvalidScopeError,
    OutFolderError,
    PathEscapeError,
)
from direktiv_sdk.store import KEY_PATTERN, Scope, validate_key
from harness.files._archives import extract_archive, make_folders, tar_gz_directory
from harness.sidecar._action import ActionContext, VariableWrite

__all__ = ["OUT_FOLDERS", "check_file_types", "collect_out", "write_files"]

OUT_FOLDERS: Final = ("file", "namespace", "workflow", "instance")
"""The folders under ``out/``, in the order they are collected."""


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
    if root is None:
        return b""
    relative = posixpath.normpath(key.lstrip("/")) if key.strip("/") else "."
    if relative == ".." or relative.startswith("../") or "\x00" in key:
        raise PathEscapeError(key, str(root))
    base = os.path.realpath(root)
    path = os.path.realpath(os.path.join(base, relative))
    if os.path.commonpath([base, path]) != base:
        raise PathEscapeError(key, str(root))
    try:
        with open(path, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                return b""
            return handle.read()
    except OSError:
        return b""  # as the reference: a file that cannot be fetched reads as empty


def _source(plan: _Planned, context: ActionContext, root: Path | None) -> bytes:
    if plan.scope == "file":
        return _namespace_file(root, plan.file.key)
    variable = context.store.get(context.ref(Scope(plan.scope), plan.file.key))
    return b"" if variable is None else variable.data


def _write_plain(path: Path, data: bytes, permissions: int | None) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(path, flags, 0o666)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if permissions is not None:
            os.fchmod(fd, permissions)
    finally:
        os.close(fd)


def _write(plan: _Planned, data: bytes, temp_dir: Path) -> None:
    path = temp_dir / plan.target
    file = plan.file
    try:
        try:
            make_folders(temp_dir, Path(plan.target).parent)
        except (FileExistsError, NotADirectoryError) as exc:
            raise FileEntryError(
                plan.target,
                "a folder on its path is already a file; give one of the entries another 'as'",
            ) from exc
        if file.type in ("tar", "tar.gz"):
            extract_archive(
                io.BytesIO(data),
                path,
                name=plan.target,
                compressed=file.type == "tar.gz",
                permissions=file.permissions,
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
        _write_plain(path, data, file.permissions)
    except OSError as exc:
        raise FileEntryError(plan.target, f"{exc.strerror or exc}") from exc


def _make_out_folders(temp_dir: Path) -> None:
    for folder in ("out", *(f"out/{name}" for name in OUT_FOLDERS)):
        path = temp_dir / folder
        with contextlib.suppress(FileExistsError):  # a file there: reported just below
            path.mkdir(mode=0o777, exist_ok=True)
        if not stat.S_ISDIR(os.lstat(path).st_mode):
            raise OutFolderError(
                folder, "a files: entry wrote a file there; give that entry another 'as' name"
            )


def write_files(
    files: Sequence[FunctionFile], temp_dir: Path, context: ActionContext, root: Path | None
) -> None:
    """Write ``files`` into the existing folder ``temp_dir`` and create the ``out/`` folders.

    Raises:
        InvalidFileTypeError: An entry has an unknown ``type`` (catchable).
        InvalidScopeError, InvalidKeyError, PathEscapeError, FileEntryError, ArchiveError,
        OutFolderError: The action cannot be prepared (the instance crashes).
    """
    check_file_types(files)
    for plan in _plan(files, temp_dir):
        _write(plan, _source(plan, context, root), temp_dir)
    _make_out_folders(temp_dir)


def _read_regular(path: Path) -> bytes | None:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            return None
        return handle.read()


def _folder_entries(temp_dir: Path, folder: str) -> list[tuple[str, Path, bool]]:
    """Return ``(name, path, is_directory)`` of the files and folders in ``out/<folder>``."""
    path = temp_dir / "out" / folder
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return []
    if not stat.S_ISDIR(mode):
        raise OutFolderError(f"out/{folder}", "it is not a folder any more; leave out/ as it is")
    entries = []
    for name in sorted(os.listdir(path)):
        entry_mode = os.lstat(path / name).st_mode
        if stat.S_ISREG(entry_mode) or stat.S_ISDIR(entry_mode):
            entries.append((name, path / name, stat.S_ISDIR(entry_mode)))
    return entries


def collect_out(temp_dir: Path, context: ActionContext) -> tuple[VariableWrite, ...]:
    """Store what the function left in ``out/`` as variables; return the writes in order.

    Every name is checked before anything is stored, so a bad name stores nothing.

    Raises:
        OutFolderError: An entry is in ``out/file`` or is not named like a variable.
    """
    out = temp_dir / "out"
    try:
        if not stat.S_ISDIR(os.lstat(out).st_mode):
            raise OutFolderError("out", "it is not a folder any more; leave out/ as it is")
    except FileNotFoundError:
        return ()
    for name, _, _ in _folder_entries(temp_dir, "file"):
        raise OutFolderError(
            f"out/file/{name}",
            "scope 'file' is read-only; write it under out/namespace, out/workflow or out/instance",
        )
    planned: list[tuple[Scope, str, Path, bool]] = []
    for folder in OUT_FOLDERS[1:]:
        for name, path, is_directory in _folder_entries(temp_dir, folder):
            try:
                validate_key(name)
            except InvalidKeyError as exc:
                raise OutFolderError(
                    f"out/{folder}/{name}",
                    f"{name!r} is not a valid variable name; rename it to match {KEY_PATTERN}",
                ) from exc
            planned.append((Scope(folder), name, path, is_directory))
    writes = []
    for scope, name, path, is_directory in planned:
        data = tar_gz_directory(path) if is_directory else _read_regular(path)
        if data is not None:
            writes.append(context.set_variable(scope, name, data, "", "out"))
    return tuple(writes)
