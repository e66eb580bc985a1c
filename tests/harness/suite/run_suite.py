"""Run ``pytest ARGS...`` on a store kind, in this network namespace: ``run_suite.py KIND ARGS``.

``KIND`` is ``memory``, ``file`` or ``s3``; for ``s3`` a moto server starts here on 127.0.0.1,
a bucket is made and the AWS variables point at it. Exits with pytest's code.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
import urllib.request


def main() -> int:
    """Run the suite; return pytest's exit code."""
    kind, args = sys.argv[1], sys.argv[2:]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "DIREKTIV_"))}
    with tempfile.TemporaryDirectory(prefix="direktiv-suite-") as scratch:
        server = None
        if kind == "file":
            env["DIREKTIV_STORE_URL"] = f"file://{scratch}/stores"
        elif kind == "s3":
            from moto.server import ThreadedMotoServer

            logging.getLogger("werkzeug").setLevel(logging.ERROR)
            server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
            server.start()
            host, port = server.get_host_and_port()
            endpoint = f"http://{host}:{port}"
            with urllib.request.urlopen(
                urllib.request.Request(f"{endpoint}/suite", method="PUT"), timeout=30
            ) as answer:
                answer.read()
            env.update(
                AWS_ACCESS_KEY_ID="testing",
                AWS_SECRET_ACCESS_KEY="testing",
                AWS_DEFAULT_REGION="us-east-1",
                AWS_ENDPOINT_URL=endpoint,
                AWS_CONFIG_FILE=f"{scratch}/no-config",
                AWS_SHARED_CREDENTIALS_FILE=f"{scratch}/no-credentials",
                DIREKTIV_STORE_URL="s3://suite/runs",
            )
        try:
            command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args]
            return subprocess.run(command, env=env, timeout=540, check=False).returncode
        finally:
            if server is not None:
                server.stop()


if __name__ == "__main__":
    sys.exit(main())
