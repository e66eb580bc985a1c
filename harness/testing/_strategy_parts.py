"""Parts of :mod:`harness.testing.strategies`: folder trees, tar members, ``files:`` entries."""

from __future__ import annotations

import base64
import gzip
import io
import string
import tarfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from hypothesis import strategies as st

from direktiv_sdk.engine.functions import FunctionFile
from direktiv_sdk.store import Owner, VariableStore

__all__ = [
    "FORMATS",
    "HOSTILE_KINDS",
    "HOSTILE_NAME",
    "INNER",
    "NAMES",
    "FileSpec",
    "benign_members",
    "file_spec",
    "hostile_members",
    "pack",
    "trees",
]

_LETTERS: Final = string.ascii_letters
_ALNUM: Final = _LETTERS + string.digits
INNER: Final = _ALNUM + "_-."
"""The characters a variable name may hold after its first one."""

HOSTILE_NAME: Final = "direktiv-escaped"
"""The file name hostile archive members try to write outside their folder."""

# --------------------------------------------------------------------------- archives

Tree = Mapping[str, bytes | None]
"""A folder's contents: relative path -> file bytes, or ``None`` for a folder."""

NAMES: Final = st.text(INNER, min_size=1, max_size=12).filter(lambda n: n not in (".", ".."))
"""File and folder names: safe characters, never ``.`` or ``..``."""


def _clashes(path: str, taken: Iterable[str]) -> bool:
    """Return whether ``path`` equals, contains or lies inside one of ``taken``."""
    return any(
        path == other or path.startswith(other + "/") or other.startswith(path + "/")
        for other in taken
    )


@st.composite
def trees(draw: st.DrawFn, max_entries: int = 6) -> dict[str, bytes | None]:
    """Draw a folder tree: no path lies inside a file."""
    paths = draw(st.lists(st.lists(NAMES, min_size=1, max_size=3), max_size=max_entries))
    tree: dict[str, bytes | None] = {}
    for parts in sorted(paths, key=len):
        path = "/".join(parts)
        ancestors = ["/".join(parts[:n]) for n in range(1, len(parts))]
        if path in tree or any(tree.get(a) is not None for a in ancestors if a in tree):
            continue
        tree[path] = draw(st.none() | st.binary(max_size=512))
    return tree


def _with_parents(tree: Tree) -> dict[str, bytes | None]:
    """Return ``tree`` plus the folders its paths imply (``a/b`` implies folder ``a``)."""
    full: dict[str, bytes | None] = dict(tree)
    for path in tree:
        parts = path.split("/")
        for n in range(1, len(parts)):
            full.setdefault("/".join(parts[:n]), None)
    return full


def _member(name: str, kind: bytes, *, size: int = 0, mode: int = 0o644) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = size
    info.mode = mode
    info.mtime = 1_700_000_000
    return info


def pack(
    members: Iterable[tuple[tarfile.TarInfo, bytes]], *, compressed: bool, tar_format: int
) -> bytes:
    """Return the tar (``compressed``: tar.gz) archive of ``members``, byte for byte stable."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tar_format) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
        end = tar.offset
    # Keep the two end-of-archive blocks but not tarfile's padding to 10 KiB: smaller
    # examples, and a failing example's repr stays readable.
    archive = buffer.getvalue()[: end + 2 * tarfile.BLOCKSIZE]
    if not compressed:
        return archive
    # mtime=0: the same example gives the same bytes each time Hypothesis replays it.
    return gzip.compress(archive, mtime=0)


@st.composite
def benign_members(draw: st.DrawFn, tree: Tree) -> list[tuple[tarfile.TarInfo, bytes]]:
    """Draw the members that archive ``tree`` (one naming style, maybe a member for the root)."""
    style = draw(st.sampled_from(("", "/", "./")))
    members = []
    if draw(st.booleans()):
        members.append((_member(style or "./", tarfile.DIRTYPE, mode=0o755), b""))
    for path, data in tree.items():
        name = style + path
        if data is None:
            members.append((_member(name, tarfile.DIRTYPE, mode=0o755), b""))
        else:
            mode = draw(st.sampled_from((0o644, 0o600, 0o755, 0o640)))
            members.append((_member(name, tarfile.REGTYPE, size=len(data), mode=mode), data))
    return members


_ESCAPING_NAMES: Final = (
    f"../{HOSTILE_NAME}",
    f"../../{HOSTILE_NAME}",
    f"../../../{HOSTILE_NAME}",
    f"../../../../{HOSTILE_NAME}",
    f"a/../../{HOSTILE_NAME}",
    f"./../{HOSTILE_NAME}",
    f"/../{HOSTILE_NAME}",
)
_ABSOLUTE_NAMES: Final = (f"/{HOSTILE_NAME}", f"/tmp/{HOSTILE_NAME}", f"/etc/{HOSTILE_NAME}")
_LINK_TARGETS: Final = ("..", "../..", "../../..", "/", "/tmp", "/etc/passwd", f"../{HOSTILE_NAME}")

HOSTILE_KINDS: Final = ("dotdot", "absolute", "symlink", "hardlink", "device", "fifo")
"""What ``tar_archives(hostile=True)`` mixes in: ``..`` names, absolute names (read below the
target folder, not errors), links, devices, fifos."""


@st.composite
def hostile_members(draw: st.DrawFn) -> list[tuple[tarfile.TarInfo, bytes]]:
    """Draw one hostile member of a kind of :data:`HOSTILE_KINDS` (a link maybe followed)."""
    kind = draw(st.sampled_from(HOSTILE_KINDS))
    payload = b"escaped\n"
    file = tarfile.REGTYPE
    if kind == "dotdot":
        name = draw(st.sampled_from(_ESCAPING_NAMES))
        return [(_member(name, file, size=len(payload)), payload)]
    if kind == "absolute":
        name = draw(st.sampled_from(_ABSOLUTE_NAMES))
        return [(_member(name, file, size=len(payload)), payload)]
    if kind in ("symlink", "hardlink"):
        link = _member("link", tarfile.SYMTYPE if kind == "symlink" else tarfile.LNKTYPE)
        link.linkname = draw(st.sampled_from(_LINK_TARGETS))
        members = [(link, b"")]
        if draw(st.booleans()):  # then write through the link
            through = _member(f"link/{HOSTILE_NAME}", file, size=len(payload))
            members.append((through, payload))
        return members
    if kind == "device":
        device = _member("null", draw(st.sampled_from((tarfile.CHRTYPE, tarfile.BLKTYPE))))
        device.devmajor, device.devminor = 1, 3
        return [(device, b"")]
    return [(_member("pipe", tarfile.FIFOTYPE), b"")]


FORMATS: Final = (tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT)


# --------------------------------------------------------------------------- files: entries


@dataclass(frozen=True, slots=True)
class FileSpec:
    """One ``files:`` entry, the data it reads, and what must appear in the temp dir."""

    file: FunctionFile
    data: bytes | None
    """The variable's bytes (scope ``file``: the namespace file's); ``None``: it does not exist."""
    contents: bytes | None
    """``plain``/``base64``: the bytes the file must hold; ``None`` for archives."""
    tree: Mapping[str, bytes | None] | None
    """``tar``/``tar.gz``: the folder's contents with implied folders (path -> bytes or
    ``None`` for a folder); ``None`` for files."""

    @property
    def target(self) -> str:
        """Return the path below the temp dir that the entry writes."""
        name = self.file.as_name or self.file.key
        return name.lstrip("/") if self.file.scope == "file" and not self.file.as_name else name

    @property
    def is_directory(self) -> bool:
        """Return whether the entry becomes a folder (``tar`` and ``tar.gz``)."""
        return self.tree is not None

    def entry(self) -> dict[str, str]:
        """Return the entry as it is written in a flow's ``files:`` list."""
        entry = {"key": self.file.key, "scope": self.file.scope}
        if self.file.as_name:
            entry["as"] = self.file.as_name
        if self.file.type:
            entry["type"] = self.file.type
        if self.file.permissions is not None:
            entry["permissions"] = f"{self.file.permissions:04o}"
        return entry

    def seed(
        self,
        store: VariableStore,
        *,
        namespace: str = "default",
        workflow: str = "/workflow.yaml",
        instance: str,
        root: Path | None = None,
    ) -> None:
        """Store :attr:`data` where the entry reads it (scope ``file``: below ``root``)."""
        if self.data is None:
            return
        if self.file.scope == "file":
            if root is None:
                raise ValueError(
                    f"entry {self.file.key!r} reads scope 'file': pass root=, the namespace folder"
                )
            path = root / self.file.key.lstrip("/")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(self.data)
            return
        owners = {
            "namespace": Owner.for_namespace(namespace),
            "workflow": Owner.for_workflow(namespace, workflow),
            "instance": Owner.for_instance(namespace, instance),
        }
        store.set(owners[self.file.scope].ref(self.file.key), self.data)


def _wrap_base64(encoded: bytes, width: int, newline: bytes) -> bytes:
    if not width:
        return encoded
    lines = [encoded[i : i + width] for i in range(0, len(encoded), width)]
    return newline.join(lines)


@st.composite
def file_spec(
    draw: st.DrawFn,
    *,
    types: tuple[str, ...],
    scope_names: tuple[str, ...],
    permissions: bool,
    keys: st.SearchStrategy[str],
    taken_targets: list[str],
    taken_sources: list[tuple[str, str]],
) -> FileSpec | None:
    """Draw one entry that clashes with none taken so far (``None`` if it would), and take it."""
    scope = draw(st.sampled_from(scope_names))
    kind = draw(st.sampled_from(types))
    if scope == "file":
        key = draw(st.sampled_from(("", "/"))) + "/".join(
            draw(st.lists(NAMES, min_size=1, max_size=2))
        )
        if _clashes(key.lstrip("/"), [k.lstrip("/") for s, k in taken_sources if s == "file"]):
            return None
    else:
        key = draw(keys)
        if (scope, key) in taken_sources:
            return None
    as_name = ""
    if draw(st.booleans()):
        as_name = "/".join(draw(st.lists(NAMES, min_size=1, max_size=2)))
    target = as_name or (key.lstrip("/") if scope == "file" else key)
    if target.split("/")[0] == "out" or _clashes(target, taken_targets):
        return None
    mode = draw(st.none() | st.integers(0, 0o777).map(lambda m: m | 0o400)) if permissions else None
    missing = draw(st.integers(0, 9)) == 0  # now and then the variable does not exist
    contents: bytes | None = None
    tree: dict[str, bytes | None] | None = None
    if kind in ("tar", "tar.gz"):
        drawn = draw(trees())
        members = draw(benign_members(drawn))
        data = pack(members, compressed=kind == "tar.gz", tar_format=draw(st.sampled_from(FORMATS)))
        tree = {} if missing else _with_parents(drawn)
    else:
        contents = b"" if missing else draw(st.binary(max_size=2048))
        data = contents
        if kind == "base64":
            width = draw(st.sampled_from((0, 64, 76)))
            newline = draw(st.sampled_from((b"\n", b"\r\n")))
            data = _wrap_base64(base64.b64encode(contents), width, newline)
    taken_targets.append(target)
    taken_sources.append((scope, key))
    file = FunctionFile(key=key, scope=scope, as_name=as_name, type=kind, permissions=mode)
    return FileSpec(file=file, data=None if missing else data, contents=contents, tree=tree)
