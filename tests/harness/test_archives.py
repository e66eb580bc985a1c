"""Safe tar/tar.gz extraction and the reference's tar.gz naming, on real files."""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import shutil
import stat
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from direktiv_sdk.errors import ArchiveError
from harness.files._archives import extract_archive, tar_gz_directory


def make_tar(
    members: Sequence[tuple[str, bytes, bytes | None]], *, compressed: bool = False
) -> bytes:
    """Return a tar of ``(name, type, data-or-linkname)`` members, written verbatim."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, kind, payload in members:
            info = tarfile.TarInfo(name)
            info.type = kind
            info.mode = 0o644
            if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE):
                info.linkname = (payload or b"").decode()
                tar.addfile(info)
            elif kind == tarfile.REGTYPE:
                info.size = len(payload or b"")
                tar.addfile(info, io.BytesIO(payload or b""))
            else:
                tar.addfile(info)
    data = buffer.getvalue()
    return gzip.compress(data) if compressed else data


def snapshot(root: Path) -> list[str]:
    """Return every path below ``root``, relative and sorted."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def tree(root: Path) -> dict[str, bytes | None]:
    """Return ``{relative path: bytes (files) or None (folders)}`` below ``root``."""
    return {
        str(p.relative_to(root)): (None if p.is_dir() else p.read_bytes())
        for p in sorted(root.rglob("*"))
        if not p.is_symlink() and (p.is_dir() or p.is_file())  # never open a fifo
    }


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    """The folder an archive is unpacked into: ``<tmp>/area/dest`` (``area`` is watched)."""
    (tmp_path / "area").mkdir()
    (tmp_path / "area" / "sibling.txt").write_bytes(b"keep")
    return tmp_path / "area" / "dest"


def extract(data: bytes, dest: Path, *, compressed: bool = False, **kw: int | None) -> None:
    extract_archive(io.BytesIO(data), dest, name="files", compressed=compressed, **kw)


# ---------------------------------------------------------------------------- packing


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "folder"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "b.txt").write_bytes(b"B")
    (root / "a.txt").write_bytes(b"A")
    (root / "sub" / "c.bin").write_bytes(bytes(range(256)))
    (root / "sub" / "deeper" / "d").write_bytes(b"")
    (root / "sub" / "deeper" / "d").chmod(0o751)
    os.symlink("/etc/passwd", root / "link")
    os.symlink("sub", root / "dirlink")
    os.mkfifo(root / "fifo")
    return root


def test_tar_gz_directory_names_members_like_the_reference(folder: Path) -> None:
    data = tar_gz_directory(folder)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        members = [(m.name, m.type, m.mode) for m in tar.getmembers()]
        contents = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isreg()}  # type: ignore[union-attr]
    assert [(name, kind) for name, kind, _ in members] == [
        ("", tarfile.DIRTYPE),
        ("/a.txt", tarfile.REGTYPE),
        ("/b.txt", tarfile.REGTYPE),
        ("/sub", tarfile.DIRTYPE),
        ("/sub/c.bin", tarfile.REGTYPE),
        ("/sub/deeper", tarfile.DIRTYPE),
        ("/sub/deeper/d", tarfile.REGTYPE),
    ]
    assert {n: mode for n, _, mode in members}["/sub/deeper/d"] == 0o751
    assert contents == {
        "/a.txt": b"A",
        "/b.txt": b"B",
        "/sub/c.bin": bytes(range(256)),
        "/sub/deeper/d": b"",
    }


def test_tar_gz_directory_writes_directory_names_without_a_slash(folder: Path) -> None:
    raw = gzip.decompress(tar_gz_directory(folder))
    assert raw[:100] == b"\0" * 100  # the folder itself: an empty name
    names = [raw[offset : offset + 100].rstrip(b"\0") for offset in range(0, len(raw), 512)]
    assert b"/sub" in names
    assert b"/sub/" not in names


def test_tar_gz_directory_is_deterministic(folder: Path) -> None:
    assert tar_gz_directory(folder) == tar_gz_directory(folder)


def test_packed_folders_unpack_to_the_same_tree(folder: Path, dest: Path) -> None:
    extract(tar_gz_directory(folder), dest, compressed=True)
    expected = {k: v for k, v in tree(folder).items() if k not in ("link", "dirlink", "fifo")}
    assert tree(dest) == expected
    assert stat.S_IMODE((dest / "sub").stat().st_mode) == 0o750


# ---------------------------------------------------------------------------- unpacking


@pytest.mark.parametrize("compressed", [False, True])
def test_empty_data_gives_an_empty_folder(dest: Path, compressed: bool) -> None:
    extract(b"", dest, compressed=compressed)
    assert dest.is_dir()
    assert snapshot(dest) == []


@pytest.mark.parametrize("compressed", [False, True])
def test_files_and_folders_are_unpacked(dest: Path, compressed: bool) -> None:
    data = make_tar(
        [
            ("top.txt", tarfile.REGTYPE, b"top"),
            ("dir", tarfile.DIRTYPE, None),
            ("dir/inner.txt", tarfile.REGTYPE, b"inner"),
            ("implicit/parent.txt", tarfile.REGTYPE, b"p"),
            ("top.txt", tarfile.REGTYPE, b"later wins"),
        ],
        compressed=compressed,
    )
    extract(data, dest, compressed=compressed)
    assert tree(dest) == {
        "dir": None,
        "dir/inner.txt": b"inner",
        "implicit": None,
        "implicit/parent.txt": b"p",
        "top.txt": b"later wins",
    }


def test_leading_slashes_are_relative_to_the_folder(dest: Path, tmp_path: Path) -> None:
    before = snapshot(tmp_path)
    data = make_tar([("", tarfile.DIRTYPE, None), ("/etc/evil", tarfile.REGTYPE, b"x")])
    extract(data, dest)
    assert tree(dest) == {"etc": None, "etc/evil": b"x"}
    assert snapshot(tmp_path) == sorted(
        [*before, "area/dest", "area/dest/etc", "area/dest/etc/evil"]
    )


def test_members_without_permissions_get_the_default_create_mode(dest: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, mode in (("exec", 0o755), ("open", 0o777), ("none", 0o000)):
            info = tarfile.TarInfo(name)
            info.mode, info.size = mode, 1
            tar.addfile(info, io.BytesIO(b"x"))
    extract(buffer.getvalue(), dest)
    umask = os.umask(0)
    os.umask(umask)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in dest.iterdir()}
    assert modes == dict.fromkeys(("exec", "open", "none"), 0o666 & ~umask)


def test_a_dotdot_that_stays_inside_is_cleaned_as_direktiv_does(dest: Path) -> None:
    extract(
        make_tar([("d/../ok", tarfile.REGTYPE, b"1"), ("e/./f/../g", tarfile.REGTYPE, b"2")]), dest
    )
    assert tree(dest) == {"e": None, "e/g": b"2", "ok": b"1"}


def test_permissions_apply_to_every_regular_file(dest: Path) -> None:
    data = make_tar([("a", tarfile.REGTYPE, b"1"), ("d/b", tarfile.REGTYPE, b"2")])
    extract(data, dest, permissions=0o640)
    assert stat.S_IMODE((dest / "a").stat().st_mode) == 0o640
    assert stat.S_IMODE((dest / "d" / "b").stat().st_mode) == 0o640


@pytest.mark.parametrize(
    ("members", "reason"),
    [
        (
            [("../evil", tarfile.REGTYPE, b"x")],
            "member '../evil' climbs out of the folder with '..'; remove it from the archive",
        ),
        (
            [("ok", tarfile.REGTYPE, b"1"), ("a/../../evil", tarfile.REGTYPE, b"x")],
            "member 'a/../../evil' climbs out of the folder with '..'; remove it from the archive",
        ),
        (
            [("/../evil", tarfile.REGTYPE, b"x")],
            "member '/../evil' climbs out of the folder with '..'; remove it from the archive",
        ),
        (
            [("link", tarfile.SYMTYPE, b"/etc/passwd")],
            "member 'link' is a symbolic link; only regular files and directories are allowed",
        ),
        (
            [("inner", tarfile.SYMTYPE, b"sub")],
            "member 'inner' is a symbolic link; only regular files and directories are allowed",
        ),
        (
            [("a", tarfile.REGTYPE, b"1"), ("hard", tarfile.LNKTYPE, b"a")],
            "member 'hard' is a hard link; only regular files and directories are allowed",
        ),
        (
            [("tty", tarfile.CHRTYPE, None)],
            "member 'tty' is a character device; only regular files and directories are allowed",
        ),
        (
            [("disk", tarfile.BLKTYPE, None)],
            "member 'disk' is a block device; only regular files and directories are allowed",
        ),
        (
            [("pipe", tarfile.FIFOTYPE, None)],
            "member 'pipe' is a fifo; only regular files and directories are allowed",
        ),
        (
            [("/", tarfile.REGTYPE, b"x")],
            "member '/' is a file without a name; name it",
        ),
    ],
)
@pytest.mark.parametrize("compressed", [False, True])
def test_hostile_members_are_refused_and_nothing_lands_outside(
    dest: Path,
    tmp_path: Path,
    members: list[tuple[str, bytes, bytes | None]],
    reason: str,
    compressed: bool,
) -> None:
    before = snapshot(tmp_path)
    with pytest.raises(ArchiveError) as caught:
        extract(make_tar(members, compressed=compressed), dest, compressed=compressed)
    assert str(caught.value) == f"cannot unpack 'files': {reason}"
    assert (caught.value.name, caught.value.reason) == ("files", reason)
    outside = [p for p in snapshot(tmp_path) if not p.startswith("area/dest")]
    assert outside == before
    assert not (tmp_path / "evil").exists()
    assert not (tmp_path / "area" / "evil").exists()


VALID_TAR = make_tar([("a.txt", tarfile.REGTYPE, b"A" * 5000), ("b.txt", tarfile.REGTYPE, b"B")])
VALID_TAR_GZ = gzip.compress(VALID_TAR, mtime=0)  # fixed bytes: test ids must not change


@pytest.mark.parametrize(
    ("data", "compressed", "reason"),
    [
        (b"hello, not a tar", False, "it is not a valid tar archive (truncated header)"),
        (b"x" * 600, False, "it is not a valid tar archive (invalid header)"),
        (VALID_TAR[:1000], False, "it is not a valid tar archive (unexpected end of data)"),
        (VALID_TAR, True, "the gzip data is corrupt or truncated (Not a gzipped file (b'a.'))"),
        (
            VALID_TAR_GZ[:-4],
            True,
            "the gzip data is corrupt or truncated (Compressed file ended before the "
            "end-of-stream marker was reached)",
        ),
        (
            VALID_TAR_GZ[: len(VALID_TAR_GZ) // 2],
            True,
            "the gzip data is corrupt or truncated (Compressed file ended before the "
            "end-of-stream marker was reached)",
        ),
        (
            VALID_TAR_GZ[:-8] + b"\0\0\0\0" + VALID_TAR_GZ[-4:],
            True,
            "the gzip data is corrupt or truncated (CRC check failed 0x0 != ",
        ),
    ],
    ids=[
        "text",
        "bad-header",
        "truncated-tar",
        "tar-as-gzip",
        "gzip-without-trailer",
        "half-a-gzip",
        "bad-crc",
    ],
)
def test_corrupt_archives_are_errors(
    dest: Path, tmp_path: Path, data: bytes, compressed: bool, reason: str
) -> None:
    before = snapshot(tmp_path)
    with pytest.raises(ArchiveError) as caught:
        extract(data, dest, compressed=compressed)
    assert str(caught.value).startswith(f"cannot unpack 'files': {reason}")
    assert [p for p in snapshot(tmp_path) if not p.startswith("area/dest")] == before


def test_a_member_below_a_file_is_an_error(dest: Path) -> None:
    data = make_tar([("a", tarfile.REGTYPE, b"1"), ("a/b", tarfile.REGTYPE, b"2")])
    with pytest.raises(ArchiveError) as caught:
        extract(data, dest)
    assert str(caught.value).startswith("cannot unpack 'files': member 'a/b' cannot be written (")


# ---------------------------------------------------------------------------- property

_SEGMENTS = st.sampled_from(["a", "b", "..", ".", "", "c.txt"])
_NAMES = st.lists(_SEGMENTS, min_size=1, max_size=4).map("/".join)
_KINDS = st.sampled_from(
    [tarfile.REGTYPE, tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE]
)
_MEMBERS = st.lists(
    st.tuples(_NAMES, _KINDS, st.sampled_from([b"x", b"../../outside", b"/etc/passwd"])),
    min_size=1,
    max_size=6,
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(members=_MEMBERS, compressed=st.booleans())
def test_no_archive_ever_writes_outside_the_folder(
    tmp_path: Path, members: list[tuple[str, bytes, bytes]], compressed: bool
) -> None:
    area = Path(tempfile.mkdtemp(dir=tmp_path))
    try:
        dest = area / "inner" / "dest"
        dest.parent.mkdir()
        (area / "inner" / "guard").write_bytes(b"guard")
        before = snapshot(area)
        with contextlib.suppress(ArchiveError):
            extract(make_tar(members, compressed=compressed), dest, compressed=compressed)
        outside = [p for p in snapshot(area) if not p.startswith("inner/dest")]
        assert outside == before
        assert (area / "inner" / "guard").read_bytes() == b"guard"
        for path in dest.rglob("*"):
            assert not path.is_symlink()
            assert path.is_dir() or path.is_file()
    finally:
        shutil.rmtree(area)
