"""Call the front door without a pause: ``door_caller.py PORT AID THREADS``.

Registers one action behind the front door on ``PORT`` (so this process listens there too),
prints ``ready``, then calls ``GET /var`` for its own action from ``THREADS`` threads, each
request on a new connection to ``127.0.0.1:PORT`` (as a function that hard-codes its sidecar
does). Prints ``running`` after the first answers; when stdin says ``stop`` (or closes), or
after a bounded number of requests or seconds, prints a JSON summary and exits.
"""

from __future__ import annotations

import http.client
import json
import sys
import threading
import time

from direktiv_sdk import open_store
from direktiv_sdk.store import Scope
from harness import Sidecar

MAX_REQUESTS = 200_000
MAX_SECONDS = 120.0
REQUEST_TIMEOUT = 10.0
RUNNING_AFTER = 100


class Tally:
    """Answers and failures, counted across threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ok = 0
        self.failed = 0
        self.errors: list[str] = []
        self.running = threading.Event()

    def record(self, error: str | None) -> None:
        with self.lock:
            if error is None:
                self.ok += 1
                if self.ok == RUNNING_AFTER:
                    print("running", flush=True)
            else:
                self.failed += 1
                if len(self.errors) < 10:
                    self.errors.append(error)

    def total(self) -> int:
        with self.lock:
            return self.ok + self.failed


def call_once(port: int, aid: str) -> str | None:
    """Send one request on a new connection; return what went wrong, or ``None``."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT)
    try:
        connection.request("GET", f"/var?aid={aid}&scope=instance&key=who")
        response = connection.getresponse()
        body = response.read()
        if response.status != 200 or body != aid.encode():
            return f"{response.status} {body[:200]!r}"
        return None
    except (OSError, http.client.HTTPException) as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        connection.close()


def main() -> None:
    """Register the action, call it until told to stop, print the summary."""
    port, aid, threads = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    sidecar = Sidecar(front_door=port)
    tally = Tally()
    stop = threading.Event()
    deadline = time.monotonic() + MAX_SECONDS

    def loop() -> None:
        while not stop.is_set() and time.monotonic() < deadline and tally.total() < MAX_REQUESTS:
            tally.record(call_once(port, aid))

    with sidecar.action(open_store("memory://"), aid=aid) as action:
        action.set_variable(Scope.INSTANCE, "who", aid.encode(), "", "var")
        print("ready", flush=True)
        workers = [threading.Thread(target=loop, daemon=True) for _ in range(threads)]
        for worker in workers:
            worker.start()
        for line in sys.stdin:
            if line.strip() == "stop":
                break
        stop.set()
        for worker in workers:
            worker.join(REQUEST_TIMEOUT + 5)
    sidecar.stop()
    print(json.dumps({"ok": tally.ok, "failed": tally.failed, "errors": tally.errors}), flush=True)


if __name__ == "__main__":
    main()
