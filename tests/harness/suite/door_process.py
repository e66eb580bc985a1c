"""A process with one action behind the front door: ``door_process.py PORT AID``.

Prints ``ready`` once routed, then serves until its stdin closes or says ``exit``; on
``listeners`` it prints how many listening sockets its front door holds (its own and those
other processes handed over).
"""

from __future__ import annotations

import sys

from direktiv_sdk import open_store
from direktiv_sdk.store import Scope
from harness import Sidecar


def main() -> None:
    """Register one action and wait."""
    port, aid = int(sys.argv[1]), sys.argv[2]
    sidecar = Sidecar(front_door=port)
    with sidecar.action(open_store("memory://"), aid=aid) as action:
        action.set_variable(Scope.INSTANCE, "who", aid.encode(), "", "var")
        assert sidecar.front_door is not None
        print("ready", sidecar.front_door.problem, flush=True)
        for line in sys.stdin:
            if line.strip() == "exit":
                break
            if line.strip() == "listeners":
                server = sidecar.front_door._server  # the test looks inside on purpose
                print("listeners", len(server.listeners) if server else 0, flush=True)
    sidecar.stop()


if __name__ == "__main__":
    main()
