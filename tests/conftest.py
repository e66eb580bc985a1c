"""Shared fixtures: a real S3 HTTP API (moto's ThreadedMotoServer on 127.0.0.1), reset per test.

Any test that uses ``s3_endpoint`` (directly or through ``s3_bucket``, ``s3_store_url``,
``s3_options`` or ``s3_store``) is marked ``s3`` automatically: ``-m "not s3"`` deselects them.
"""

from __future__ import annotations

import logging
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from moto.server import ThreadedMotoServer

    from backends.s3 import S3Store

S3_BUCKET = "direktiv-test"
"""The bucket every S3 test starts with (created empty before each test)."""

_S3_FIXTURES = frozenset({"s3_endpoint", "s3_bucket", "s3_store_url", "s3_options", "s3_store"})
_HTTP_TIMEOUT = 10.0


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that talks to the moto server with ``s3``."""
    for item in items:
        if _S3_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.s3)


def _serial_moto_server() -> ThreadedMotoServer:
    """Return moto's threaded S3 server running one request at a time (not started).

    moto checks ``If-Match``/``If-None-Match`` and then writes, in two steps with no lock, and
    its threaded server runs requests concurrently: two writers holding the same ETag can both
    pass, and a compare-and-set increment is lost (4 processes x 50 ``update()`` ended at 199
    once in 43 runs). Real S3 evaluates the condition and the write atomically (docs/stores.md).
    One request at a time makes moto's conditional writes atomic too, so the tests prove what
    the store guarantees on S3, not moto's race.
    """
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    app = DomainDispatcherApplication(create_backend_app)
    lock = threading.Lock()

    def one_at_a_time(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        with lock:  # the response body too: moto may build it lazily
            return list(app(environ, start_response))

    class SerialMotoServer(ThreadedMotoServer):
        def _server_entry(self) -> None:
            # moto 5's (private) entry point, with the app wrapped.
            self._server = make_server(
                self._ip_address,
                self._port,
                one_at_a_time,
                True,
                request_handler=MotoRequestHandler,
            )
            self._server_ready_event.set()
            self._server.serve_forever()

    return SerialMotoServer(ip_address="127.0.0.1", port=0, verbose=False)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """Run one moto S3 server on 127.0.0.1 (a free port) per session; yield its URL."""
    # werkzeug logs every request at INFO; the server is an implementation detail here.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = _serial_moto_server()
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_endpoint(s3_server: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """Reset the moto server, create an empty bucket and point the AWS env at the server.

    Sets the credentials, the region and ``AWS_ENDPOINT_URL``, and hides any AWS config file,
    so ``open_store("s3://…")`` and subprocesses reach the moto server without options.
    """
    import s3fs

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    reset = urllib.request.Request(f"{s3_server}/moto-api/reset", method="POST")
    with urllib.request.urlopen(reset, timeout=_HTTP_TIMEOUT) as response:
        assert response.status == 200
    # Moto accepts unsigned requests, so a plain PUT creates the bucket (us-east-1).
    create = urllib.request.Request(f"{s3_server}/{S3_BUCKET}", method="PUT")
    with urllib.request.urlopen(create, timeout=_HTTP_TIMEOUT) as response:
        assert response.status == 200
    s3fs.S3FileSystem.clear_instance_cache()
    return s3_server


@pytest.fixture
def s3_bucket(s3_endpoint: str) -> str:
    """Return the name of the empty bucket the moto server holds for this test."""
    del s3_endpoint
    return S3_BUCKET


@pytest.fixture
def s3_store_url(s3_endpoint: str, request: pytest.FixtureRequest) -> str:
    """Return ``s3://direktiv-test/<test name>``: a store URL in the fresh bucket."""
    del s3_endpoint
    name = "".join(c if c.isalnum() else "-" for c in request.node.name).strip("-")
    return f"s3://{S3_BUCKET}/{name[:100] or 'store'}"


@pytest.fixture
def s3_options(s3_endpoint: str) -> dict[str, object]:
    """Return the ``open_store`` options that name the moto server explicitly."""
    return {"endpoint_url": s3_endpoint}


@pytest.fixture
def s3_store(s3_store_url: str, s3_options: dict[str, object]) -> Iterator[S3Store]:
    """Yield an empty S3 store on the moto server, closed after the test."""
    from backends.s3 import S3Store

    with S3Store.from_url(s3_store_url, **s3_options) as store:
        yield store
