"""Benchmark the stores against the raw fsspec calls doing the same I/O (``make bench``).

For every backend case: the median time of ``set`` and ``get`` of a 100-byte and a 10-MiB
value, beside ``pipe_file`` / ``cat_file`` on the same kind of filesystem at the same path
depth, measured in the same run with the two calls interleaved round by round (so drift of the
machine hits both alike), and their ratio. Then a 1 GiB ``set`` from a stream and an
``open``/read-through on the local store, in a child process whose peak RSS is printed (it must
stay under 100 MiB). ``--no-large`` skips that part.

Add a backend by appending a builder to ``CASES``: it gets a scratch folder and returns a
:class:`Case` (or ``None`` when the backend cannot run here).
"""

from __future__ import annotations

import argparse
import atexit
import importlib.util
import multiprocessing
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Final

from fsspec import AbstractFileSystem

from direktiv_sdk import Owner, VariableStore

REF: Final = Owner.for_namespace("ns").ref("value")
SMALL: Final = 100
LARGE: Final = 10 << 20
HUGE: Final = 1 << 30
RSS_LIMIT_MIB: Final = 100
CHUNK: Final = 1 << 20


@dataclass
class Case:
    """One backend: our store, and the raw fsspec filesystem plus the path doing the same I/O."""

    name: str
    store: VariableStore
    fs: AbstractFileSystem
    """An fsspec filesystem of the same kind the store writes to."""
    path: str
    """Where the raw calls write: same path depth as the store's data file of ``REF``."""
    rounds: dict[int, int]
    """Timed rounds per value size (after a warm-up of a tenth as many)."""
    extra: dict[str, Callable[[bytes], object]] = field(default_factory=dict)
    """More raw baselines for ``set``, printed for context (name -> call with the data)."""


def memory_case(scratch: Path) -> Case | None:
    """Return the ``memory://`` case: MemoryStore vs a private MemoryFileSystem."""
    from fsspec.implementations.memory import MemoryFileSystem

    from backends.memory import MemoryStore

    fs = MemoryFileSystem(global_store=False, skip_instance_cache=True)
    return Case("memory", MemoryStore(), fs, "/ns/namespace/value", {SMALL: 20_000, LARGE: 200})


def local_case(scratch: Path) -> Case | None:
    """Return the ``file://`` case: LocalStore vs LocalFileSystem on the same disk."""
    from fsspec.implementations.local import LocalFileSystem

    from backends.local import LocalStore

    fs = LocalFileSystem()
    raw = scratch / "raw" / "ns" / "namespace"
    raw.mkdir(parents=True)
    tmp = str(raw / ".value.tmp")
    final = str(raw / "value")

    def atomic(data: bytes) -> None:
        fs.pipe_file(tmp, data)
        fs.mv(tmp, final)

    store = LocalStore(scratch / "store")
    rounds = {SMALL: 1_500, LARGE: 40}
    return Case("local", store, fs, final, rounds, {"pipe_file + mv (atomic)": atomic})


def s3_case(scratch: Path) -> Case | None:
    """Return the ``s3://`` case: S3Store vs s3fs, both on one moto server in a child process.

    Also prints how many HTTP requests each call sends, counted on the botocore clients.
    """
    try:
        import s3fs
        from fsspec.asyn import sync

        from backends.s3 import S3Store
        from bench._moto import MotoServer
    except ImportError:  # the [s3] extra is not installed
        return None
    if importlib.util.find_spec("moto") is None:  # moto[server] comes with the [dev] extra
        return None
    server = MotoServer().start()
    atexit.register(server.stop)
    server.create_bucket("bench")
    options = {"endpoint_url": server.url, "key": "bench", "secret": "bench", "region": "us-east-1"}
    store = S3Store.from_url("s3://bench/store", **options)
    fs = s3fs.S3FileSystem(
        endpoint_url=server.url,
        key="bench",
        secret="bench",
        client_kwargs={"region_name": "us-east-1"},
        skip_instance_cache=True,
    )
    # s3fs would close its client at garbage collection, too late for a clean exit.
    atexit.register(lambda: fs._s3 and sync(fs.loop, fs._s3creator.__aexit__, None, None, None))
    path = "bench/raw/ns/namespace/value"
    counts = {
        "set": _requests(store.fs.s3, lambda: store.set(REF, b"x" * SMALL)),
        "get": _requests(store.fs.s3, lambda: store.get(REF)),
        "pipe_file": _requests(fs.s3, lambda: fs.pipe_file(path, b"x" * SMALL)),
        "cat_file": _requests(fs.s3, lambda: fs.cat_file(path)),
    }
    print("s3 requests per call: " + "; ".join(f"{k} {', '.join(v)}" for k, v in counts.items()))
    return Case("s3 (moto)", store, fs, path, {SMALL: 300, LARGE: 15})


def _requests(client: object, call: Callable[[], object]) -> list[str]:
    """Return the HTTP methods ``call`` sends through a botocore ``client``."""
    sent: list[str] = []

    def record(request: object, **_: object) -> None:
        sent.append(getattr(request, "method", "?"))

    events = client.meta.events  # type: ignore[attr-defined]
    events.register("before-send.s3", record)
    try:
        call()
    finally:
        events.unregister("before-send.s3", record)
    return sent


CASES: list[Callable[[Path], Case | None]] = [memory_case, local_case, s3_case]


def _median_pair(
    ours: Callable[[], object], raw: Callable[[], object], rounds: int
) -> tuple[float, float]:
    """Return the medians (seconds) of ``ours`` and ``raw``, interleaved round by round."""
    for _ in range(max(5, rounds // 10)):
        ours()
        raw()
    ours_times: list[float] = []
    raw_times: list[float] = []
    clock = time.perf_counter
    for i in range(rounds):
        pairs = ((ours, ours_times), (raw, raw_times))
        for fn, times in pairs if i % 2 else reversed(pairs):
            start = clock()
            fn()
            times.append(clock() - start)
    return statistics.median(ours_times), statistics.median(raw_times)


def _fmt_time(seconds: float) -> str:
    if seconds >= 1e-3:
        return f"{seconds * 1e3:8.2f} ms"
    return f"{seconds * 1e6:8.1f} µs"


def _fmt_size(size: int) -> str:
    return "100 B" if size == SMALL else f"{size >> 20} MiB"


def _row(  # noqa: PLR0917 - a table row, in column order
    case: Case, op: str, size: int, ours: float, raw: float, call: str
) -> tuple[str, ...]:
    return (
        case.name,
        op,
        _fmt_size(size),
        _fmt_time(ours),
        _fmt_time(raw),
        f"{ours / raw:5.2f}",
        call,
    )


def run_case(case: Case) -> list[tuple[str, ...]]:
    """Time one backend; return table rows."""
    rows: list[tuple[str, ...]] = []
    fs, path, store = case.fs, case.path, case.store
    for size, rounds in case.rounds.items():
        data = bytes(range(256)) * (size // 256) + bytes(size % 256)
        put = partial(store.set, REF, data)
        ours, raw = _median_pair(put, partial(fs.pipe_file, path, data), rounds)
        rows.append(_row(case, "set", size, ours, raw, "pipe_file"))
        for label, call in case.extra.items():
            ours, raw = _median_pair(put, partial(call, data), rounds)
            rows.append(_row(case, "set", size, ours, raw, label))
        put()
        fs.pipe_file(path, data)
        ours, raw = _median_pair(partial(store.get, REF), partial(fs.cat_file, path), rounds)
        rows.append(_row(case, "get", size, ours, raw, "cat_file"))
    return rows


def _print_table(rows: list[tuple[str, ...]]) -> None:
    header = ("backend", "op", "size", "ours (median)", "fsspec (median)", "ratio", "fsspec call")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


class _PatternStream:
    """A binary stream of ``total`` bytes made of one repeated 1 MiB chunk (never held whole)."""

    def __init__(self, chunk: bytes, total: int) -> None:
        self._chunk = chunk
        self._left = total

    def read(self, size: int = -1) -> bytes:
        if self._left <= 0:
            return b""
        piece = self._chunk if size < 0 or size >= len(self._chunk) else self._chunk[:size]
        piece = piece[: self._left]
        self._left -= len(piece)
        return piece


def _max_rss_mib() -> float:
    """Return this process's peak resident memory in MiB.

    Linux's ``ru_maxrss`` of a freshly exec'd child starts at the RSS its parent had when it
    forked (exec folds the old address space's high-water mark into it), so the high-water
    mark of the current address space, ``VmHWM``, is read where it exists.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _huge_round_trip(root: str, results: multiprocessing.queues.Queue[dict[str, float]]) -> None:
    """In a child process: 1 GiB set from a stream, then open and read it through."""
    from backends.local import LocalStore

    chunk = bytes(range(256)) * (CHUNK // 256)
    store = LocalStore(root)
    before = _max_rss_mib()
    start = time.perf_counter()
    meta = store.set(REF, _PatternStream(chunk, HUGE))  # type: ignore[arg-type]
    set_seconds = time.perf_counter() - start
    assert meta.size == HUGE
    start = time.perf_counter()
    reader = store.open(REF)
    assert reader is not None
    total = 0
    with reader:
        while block := reader.read(CHUNK):
            if block != chunk[: len(block)]:
                raise AssertionError(f"wrong data at offset {total}")
            total += len(block)
    read_seconds = time.perf_counter() - start
    assert total == HUGE
    results.put(
        {"before": before, "peak": _max_rss_mib(), "set": set_seconds, "read": read_seconds}
    )


def run_huge(scratch: Path) -> bool:
    """Run the 1 GiB round trip in a child; print it; return whether peak RSS stayed in bounds."""
    ctx = multiprocessing.get_context("spawn")
    results: multiprocessing.queues.Queue[dict[str, float]] = ctx.Queue()
    proc = ctx.Process(target=_huge_round_trip, args=(str(scratch / "huge"), results))
    proc.start()
    proc.join(600)
    if proc.is_alive():
        proc.kill()
        raise SystemExit("the 1 GiB round trip did not finish in 600 s")
    if proc.exitcode != 0:
        raise SystemExit(f"the 1 GiB round trip failed (exit code {proc.exitcode})")
    r = results.get(timeout=10)
    ok = r["peak"] < RSS_LIMIT_MIB
    print()
    print("local store, 1 GiB value (child process):")
    print(f"  set from a stream   {r['set']:6.2f} s  ({1024 / r['set']:7.1f} MiB/s)")
    print(f"  open + read through {r['read']:6.2f} s  ({1024 / r['read']:7.1f} MiB/s)")
    print(
        f"  peak RSS {r['peak']:.1f} MiB (after imports: {r['before']:.1f} MiB), "
        f"limit {RSS_LIMIT_MIB} MiB: {'ok' if ok else 'EXCEEDED'}"
    )
    return ok


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; return 1 if the 1 GiB round trip exceeded its memory limit."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--no-large", action="store_true", help="skip the 1 GiB round trip")
    parser.add_argument(
        "--scratch", metavar="DIR", help="scratch folder (default: a temp dir; use a real disk)"
    )
    args = parser.parse_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="direktiv-bench-", dir=args.scratch))
    try:
        rows: list[tuple[str, ...]] = []
        for build in CASES:
            case_dir = scratch / build.__name__
            case_dir.mkdir()
            case = build(case_dir)
            if case is None:
                print(f"skipped {build.__name__}: not available here")
                continue
            with case.store:
                rows.extend(run_case(case))
        print(f"python {sys.version.split()[0]}, scratch folder {scratch}")
        _print_table(rows)
        return 0 if args.no_large or run_huge(scratch) else 1
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
