"""Event delivery speed: events/s into a namespace session with 100 waiting instances.

Run with ``make bench`` or ``.venv/bin/python -m bench.events [--seconds N]``. Prints, in one
run:

* events/s delivered to a :class:`~direktiv_sdk.Namespace` where 100 instances wait in a
  ``consumeEvent`` for their own ``context`` value (each event wakes none: the listener index,
  the filters and the CloudEvent validation are measured, not the instances);
* events/s of one waiting instance woken per event (an instance starts, waits, is woken and
  ends: the whole round trip);
* a bare ``queue.Queue`` hand-off between two threads, the floor any delivery costs;
and the ratios against the queue.
"""

from __future__ import annotations

import argparse
import queue
import tempfile
import threading
import time
from pathlib import Path

from direktiv_sdk import Namespace
from direktiv_sdk.engine.clock import VirtualClock
from direktiv_sdk.expr.gojson import JSON

WAITER = """\
states:
- id: wait
  type: consumeEvent
  event:
    type: tick
    context:
      who: 'jq(.who)'
"""


def _event(who: str, number: int) -> dict[str, JSON]:
    return {
        "specversion": "1.0", "id": f"e{number}", "source": "bench", "type": "tick",
        "who": who, "data": {"n": number},
    }  # fmt: skip


def _queue_rate(seconds: float) -> float:
    """Items/s handed from this thread to a consumer thread through a bare queue.Queue."""
    box: queue.Queue[object] = queue.Queue()
    done = threading.Event()

    def consume() -> None:
        while box.get() is not None:
            pass
        done.set()

    threading.Thread(target=consume, daemon=True).start()
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(1000):
            box.put(n)
        n += 1000
    box.put(None)
    done.wait()
    return n / (time.perf_counter() - start)


def _miss_rate(root: Path, seconds: float) -> float:
    """Events/s offered to 100 waiting instances that none of them takes."""
    with Namespace(root, store="memory://", clock=VirtualClock()) as ns:
        for k in range(100):
            ns.start("/waiter.yaml", input={"who": f"w{k}"})
        ns.settle()
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            for _ in range(200):
                ns.send(_event("nobody", n))
                n += 1
        rate = n / (time.perf_counter() - start)
        assert all(i.status == "pending" for i in ns.instances())
    return rate


def _wake_rate(root: Path, seconds: float) -> float:
    """Round trips/s: start an instance, let it wait, wake it with an event, see it end."""
    with Namespace(root, store="memory://", clock=VirtualClock()) as ns:
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            instance = ns.start("/waiter.yaml", input={"who": f"w{n}"})
            ns.settle()
            ns.send(_event(f"w{n}", n))
            assert ns.wait(instance).status == "complete"
            n += 1
        return n / (time.perf_counter() - start)


def main() -> None:
    """Print the benchmark table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "waiter.yaml").write_text(WAITER, encoding="utf-8")
        bare = _queue_rate(args.seconds)
        missed = _miss_rate(root, args.seconds)
        woken = _wake_rate(root, args.seconds)
    print(f"{'bare queue.Queue hand-off':<52} {bare:>12,.0f} /s")
    print(f"{'events into 100 waiting instances (none taken)':<52} {missed:>12,.0f} /s"
          f"   {bare / missed:6.1f}x slower than the queue")  # fmt: skip
    print(f"{'start, wait, wake by event, end (round trips)':<52} {woken:>12,.0f} /s"
          f"   {bare / woken:6.1f}x slower than the queue")  # fmt: skip


if __name__ == "__main__":
    main()
