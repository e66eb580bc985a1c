"""Two ``direktiv-sdk run --function`` at once against one server that hard-codes 8889.

Prints each run's exit code, stdout and stderr as JSON lines; run it in its own network
namespace (see ``test_suites.py``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

FLOW = """\
direktiv_api: workflow/v1
functions:
- id: greeter
  type: knative-workflow
  image: localhost:5000/greeter:v1
states:
- id: first
  type: action
  action:
    function: greeter
    input:
      name: 'jq(.name)'
  transition: wait
- id: wait
  type: delay
  duration: PT1S
  transition: second
- id: second
  type: action
  action:
    function: greeter
    input:
      name: 'jq(.name)'
  transform: 'jq({greetings: .return.greetings})'
"""


def main() -> int:
    """Start the server, run two flows at once, report both."""
    greeter = Path(sys.argv[1])
    cli = [sys.executable, "-m", "direktiv_sdk.cli", "run"]
    with tempfile.TemporaryDirectory() as scratch:
        flow = Path(scratch) / "greet.yaml"
        flow.write_text(FLOW)
        server = subprocess.Popen(
            [sys.executable, str(greeter), "--port", "0"], stdout=subprocess.PIPE, text=True
        )
        try:
            assert server.stdout is not None
            url = server.stdout.readline().split()[-1]
            runs = [
                subprocess.Popen(
                    [
                        *cli,
                        str(flow),
                        "--input",
                        json.dumps({"name": name}),
                        "--function",
                        f"greeter={url}",
                        "--store",
                        f"file://{scratch}/store-{name}",
                    ],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
                for name in ("a", "b")
            ]
            for run in runs:
                out, err = run.communicate(timeout=120)
                print(json.dumps({"code": run.returncode, "out": out, "err": err}))
        finally:
            server.terminate()
            server.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
