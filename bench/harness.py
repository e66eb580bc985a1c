"""Benchmark the function harness against bare baselines, in one run, and print ratios.

Run: ``.venv/bin/python -m bench.harness [--quick]``. Every figure is beside a baseline measured
the same way in the same process:

* sidecar start-and-stop vs a bare ``ThreadingHTTPServer`` started and shut down (its
  ``shutdown()`` waits for ``serve_forever``'s poll interval: 0.05 s here, 0.5 s by default);
* ``GET /var`` round trips per second over one HTTP keep-alive connection vs a bare stdlib
  HTTP/1.1 server answering 200 with nothing (same httpx client settings);
* the same in-process through ``httpx.WSGITransport`` vs a WSGI app doing nothing;
* ``GET /var`` through the front door port vs the sidecar's own port (an action of this
  process, then one of another process: the kernel spreads connections, some are forwarded);
* one ``call_function`` of a Python function vs calling the function directly;
* one ``call_function`` with a 10-MiB tar.gz ``files:`` entry vs ``tarfile`` extracting the
  same archive (``filter="data"``) into a fresh folder;
* 1000 concurrent clients, each doing ``POST /var`` then ``GET /var`` on its own connection:
  round trips completed and the time, vs a bare stdlib ``ThreadingHTTPServer`` keeping the
  values in a dict (its listen backlog is 5 and it starts a thread per connection).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import BinaryIO

import httpx

from direktiv_sdk import open_store
from direktiv_sdk.engine.functions import FunctionFile
from direktiv_sdk.store import Owner, Scope
from harness import Sidecar, call_function


class _Dict(BaseHTTPRequestHandler):
    """A bare stdlib server's ``/var``: POST stores the body under the query, GET returns it."""

    protocol_version = "HTTP/1.1"
    values: dict[str, bytes] = {}

    def do_POST(self) -> None:
        self.values[self.path] = self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        body = self.values.get(self.path, b"")
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Nothing(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def _bare_server() -> tuple[ThreadingHTTPServer, threading.Thread]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Nothing)
    server.daemon_threads = True
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    return server, thread


def _stop_bare(server: ThreadingHTTPServer, thread: threading.Thread) -> None:
    server.shutdown()
    server.server_close()
    thread.join(10)


def _nothing_app(environ: dict[str, object], start_response: Callable[..., object]) -> list[bytes]:
    start_response("200 OK", [("Content-Length", "0")])
    return [b""]


def _median_seconds(fn: Callable[[], None], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _rate(client: httpx.Client, url: str, params: dict[str, str], n: int) -> float:
    for _ in range(50):  # warm up the connection and the code paths
        client.get(url, params=params)
    start = time.perf_counter()
    for _ in range(n):
        response = client.get(url, params=params)
        assert response.status_code == 200
    return n / (time.perf_counter() - start)


def _row(label: str, ours: float, base: float, unit: str, *, higher_is_better: bool) -> None:
    ratio = base / ours if higher_is_better else ours / base
    print(f"{label:<44} {ours:>10.2f} {unit:<6} baseline {base:>10.2f} {unit:<6} x{ratio:.3g}")


def bench_start_stop(repeat: int) -> None:
    def ours() -> None:
        Sidecar(port=0).start().stop()

    def bare() -> None:
        _stop_bare(*_bare_server())

    _row(
        "sidecar start+stop (median)",
        _median_seconds(ours, repeat) * 1000,
        _median_seconds(bare, repeat) * 1000,
        "ms",
        higher_is_better=False,
    )


def bench_round_trips(n: int) -> None:
    store = open_store("memory://")
    with Sidecar(port=0) as sidecar, sidecar.action(store) as action:
        params = {"aid": action.aid, "scope": "instance", "key": "x"}
        store.set(action.ref(Scope.INSTANCE, "x"), b"0123456789")
        server, thread = _bare_server()
        try:
            with httpx.Client(timeout=30, trust_env=False) as client:
                ours = _rate(client, f"{sidecar.url}/var", params, n)
                base = _rate(client, f"http://127.0.0.1:{server.server_address[1]}/", params, n)
        finally:
            _stop_bare(server, thread)
        _row("GET /var over HTTP keep-alive", ours, base, "req/s", higher_is_better=True)
        in_process = httpx.Client(transport=httpx.WSGITransport(app=sidecar))
        nothing = httpx.Client(transport=httpx.WSGITransport(app=_nothing_app))
        with in_process, nothing:
            ours = _rate(in_process, "http://sidecar/var", params, n)
            base = _rate(nothing, "http://sidecar/var", params, n)
        _row("GET /var in-process (WSGITransport)", ours, base, "req/s", higher_is_better=True)
        sidecar.check()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


_REMOTE = """
import sys
from direktiv_sdk import open_store
from direktiv_sdk.store import Scope
from harness import Sidecar
sidecar = Sidecar(front_door=int(sys.argv[1]))
store = open_store("memory://")
with sidecar.action(store, aid="bench-remote") as action:
    store.set(action.ref(Scope.INSTANCE, "x"), b"0123456789")
    print("ready", flush=True)
    sys.stdin.read()
"""


def bench_front_door(n: int) -> None:
    """GET /var through the front door port vs the sidecar's own port, same client settings."""
    port = _free_port()  # the same code path as 8889, without depending on who holds 8889
    store = open_store("memory://")
    sidecar = Sidecar(front_door=port)
    with sidecar.action(store) as action:
        params = {"aid": action.aid, "scope": "instance", "key": "x"}
        store.set(action.ref(Scope.INSTANCE, "x"), b"0123456789")
        doors, directs = [], []
        with httpx.Client(timeout=30, trust_env=False) as client:
            for _ in range(5):  # interleaved rounds: both see the same machine load
                doors.append(_rate(client, f"http://127.0.0.1:{port}/var", params, n // 5))
                directs.append(_rate(client, f"{sidecar.url}/var", params, n // 5))
        door, direct = statistics.median(doors), statistics.median(directs)
        _row("GET /var via front door (this process)", door, direct, "req/s", higher_is_better=True)
        remote = subprocess.Popen(
            [sys.executable, "-c", _REMOTE, str(port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert remote.stdout is not None
            assert remote.stdout.readline().startswith("ready")
            params = {**params, "aid": "bench-remote"}
            # Every process listens; the kernel picks one per connection. A fresh connection
            # per 100 requests mixes requests answered there with requests forwarded here.
            rates = []
            for _ in range(max(1, n // 100)):
                with httpx.Client(timeout=30, trust_env=False) as client:
                    rates.append(_rate(client, f"http://127.0.0.1:{port}/var", params, 100))
            mixed = statistics.median(rates)
        finally:
            assert remote.stdin is not None
            remote.stdin.close()
            remote.wait(30)
            assert remote.stdout is not None
            remote.stdout.close()
        _row(
            "GET /var via front door (other process)", mixed, direct, "req/s", higher_is_better=True
        )
    sidecar.stop()


def bench_call_overhead(n: int) -> None:
    """One call_function of a Python function vs calling the function directly."""
    store = open_store("memory://")

    def function(value: object, context: object) -> object:
        return value

    sidecar = Sidecar.shared(front_door=None)
    for _ in range(20):
        call_function(function, {"a": 1}, store=store, sidecar=sidecar)
    start = time.perf_counter()
    for _ in range(n):
        call_function(function, {"a": 1}, store=store, sidecar=sidecar)
    ours = (time.perf_counter() - start) / n
    start = time.perf_counter()
    for _ in range(n * 100):
        function({"a": 1}, None)
    bare = (time.perf_counter() - start) / (n * 100)
    _row("call_function(callable) per call", ours * 1e6, bare * 1e6, "us", higher_is_better=False)


def _archive(size: int) -> bytes:
    buffer = io.BytesIO()
    piece = size // 10
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=1) as tar:
        for i in range(10):
            data = os.urandom(piece)  # incompressible: the archive is ~size bytes
            info = tarfile.TarInfo(f"dir{i % 3}/file-{i}.bin")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def bench_call_with_archive(repeat: int) -> None:
    data = _archive(10 * 1024 * 1024)
    store = open_store("memory://")
    store.set(Owner.for_instance("default", "bench").ref("bundle"), data)
    scratch = Path(tempfile.mkdtemp(prefix="direktiv-bench-"))
    try:

        def ours() -> None:
            result = call_function(
                lambda value: None,
                {},
                files=[FunctionFile("bundle", type="tar.gz")],
                store=store,
                instance="bench",
            )
            assert result.ok, result

        def bare() -> None:
            target = Path(tempfile.mkdtemp(dir=scratch))
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
                tar.extractall(target, filter="data")
            shutil.rmtree(target)

        _row(
            f"call_function, {len(data) / 2**20:.1f}-MiB tar.gz files: entry",
            _median_seconds(ours, repeat) * 1000,
            _median_seconds(bare, repeat) * 1000,
            "ms",
            higher_is_better=False,
        )
    finally:
        shutil.rmtree(scratch)


def _read_response(file: BinaryIO) -> tuple[bytes, bytes]:
    status = file.readline()
    length = 0
    while (line := file.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode().partition(":")
        if name.lower() == "content-length":
            length = int(value)
    return status, file.read(length)


def _concurrent_round_trips(port: int, query: str, clients: int) -> tuple[int, float]:
    """Return (correct POST-then-GET round trips, seconds) of ``clients`` concurrent clients."""
    done = [False] * clients
    start_all = threading.Barrier(clients + 1, timeout=120)

    def client(index: int) -> None:
        body = b"value-%d" % index
        path = f"/var?{query}&key=k{index}".encode()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
                start_all.wait()
                sock.sendall(
                    b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s"
                    % (path, len(body), body)
                )
                file = sock.makefile("rb")
                posted, _ = _read_response(file)
                sock.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path)
                got, data = _read_response(file)
            done[index] = posted.startswith(b"HTTP/1.1 200") and got.startswith(b"HTTP/1.1 200")
            done[index] = done[index] and data == body
        except (OSError, threading.BrokenBarrierError):
            pass

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    with contextlib.suppress(threading.BrokenBarrierError):
        start_all.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join(120)
    return sum(done), time.perf_counter() - started


def bench_concurrent_clients(clients: int) -> None:
    store = open_store("memory://")
    with Sidecar(port=0) as sidecar, sidecar.action(store) as action:
        ours, ours_time = _concurrent_round_trips(
            sidecar.port, f"aid={action.aid}&scope=instance", clients
        )
        sidecar.check()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Dict)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        base, base_time = _concurrent_round_trips(server.server_address[1], "x=1", clients)
    finally:
        _stop_bare(server, thread)
    print(
        f"{clients} concurrent POST+GET /var clients       ours {ours}/{clients} in "
        f"{ours_time:.2f} s   stdlib threading server {base}/{clients} in {base_time:.2f} s"
    )


def main(argv: Iterable[str] | None = None) -> None:
    """Run every benchmark and print one line per figure."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (a smoke run)")
    args = parser.parse_args(list(argv) if argv is not None else None)
    repeat, requests = (5, 300) if args.quick else (30, 3000)
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus")
    print("x = how many times slower ours is than the baseline (1.00 = as fast)")
    bench_start_stop(repeat)
    bench_round_trips(requests)
    bench_front_door(requests)
    bench_call_overhead(max(50, requests // 10))
    bench_call_with_archive(max(3, repeat // 3))
    bench_concurrent_clients(200 if args.quick else 1000)


if __name__ == "__main__":
    main()
