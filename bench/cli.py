"""CLI start-up: ``direktiv-sdk run`` of the counter flow against ``python -c 'import yaml, jq'``.

Run with ``make bench`` or ``.venv/bin/python -m bench.cli [--runs N]``. Both are whole
processes started the same way, alternately, in the same run; the median of each is printed and
their ratio (target <= 2.5x): what the command adds to the two libraries every flow needs.
The packages are byte-compiled first, as an installed wheel is (with
``PYTHONDONTWRITEBYTECODE`` set, an editable install would otherwise compile every module on
every start).
"""

from __future__ import annotations

import argparse
import compileall
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COUNTER = ROOT / "examples" / "counter.yaml"
CLI = str(Path(sys.executable).with_name("direktiv-sdk"))


def _once(command: list[str]) -> float:
    """Return the wall time of one process, from spawn to exit.

    ``Popen.wait(timeout=...)`` polls with sleeps that double up to 50 ms, which would round
    every time up to the next poll; so the wait blocks and a timer kills a process that hangs.
    """
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    watchdog = threading.Timer(60, process.kill)
    watchdog.start()
    try:
        code = process.wait()
    finally:
        watchdog.cancel()
    elapsed = time.perf_counter() - start
    if code != 0:
        raise subprocess.CalledProcessError(code, command)
    return elapsed


def main() -> None:
    """Print the start-up table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="processes of each kind")
    args = parser.parse_args()
    for package in ("direktiv_sdk", "backends", "harness"):
        compileall.compile_dir(ROOT / package, quiet=1)
    baseline = [sys.executable, "-c", "import yaml, jq"]
    run = [CLI, "run", str(COUNTER), "--store", "memory://"]
    _once(baseline), _once(run)  # warm the file cache
    base_times, run_times = [], []
    for _ in range(args.runs):
        base_times.append(_once(baseline))
        run_times.append(_once(run))
    base, cli = statistics.median(base_times), statistics.median(run_times)
    print("CLI start-up: whole processes, median of", args.runs)
    print(f"  python -c 'import yaml, jq'                    {base * 1e3:8.1f} ms")
    print(f"  direktiv-sdk run counter.yaml --store memory://  {cli * 1e3:8.1f} ms")
    print(f"  ratio                                          {cli / base:8.2f}x (target <= 2.5x)")


if __name__ == "__main__":
    main()
