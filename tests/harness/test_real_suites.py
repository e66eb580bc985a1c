"""The nine cases a new user hit with the harness in a real test suite (issue 9).

Each runs an inner pytest session with pytester. Functions hard-code the front door port;
the tests choose a free port with ``--direktiv-sidecar-port`` so they do not depend on who
else uses 8889 on this machine (``test_suites.py`` runs the example suite on 8889 itself).
"""

from __future__ import annotations

import socket
import sys
import textwrap
from pathlib import Path

import pytest

from direktiv_sdk.errors import SidecarUnreachableError
from harness import call_function

pytest_plugins = ["pytester"]

HARD_CODED = """
import json, urllib.request

PORT = {port}

def post(aid, key, data):
    request = urllib.request.Request(
        f"http://localhost:{{PORT}}/var?aid={{aid}}&scope=workflow&key={{key}}",
        data=data, method="POST")
    with urllib.request.urlopen(request, timeout=10) as answer:
        answer.read()

def app(environ, start_response):
    post(environ["HTTP_DIREKTIV_ACTIONID"], "seen", environ["DIREKTIV_SIDECAR_URL"].encode())
    start_response("200 OK", [("Content-Type", "application/json")])
    return [b"{{}}"]
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def port(monkeypatch: pytest.MonkeyPatch) -> int:
    """Return a free front door port; inner sessions get no store or port from outside."""
    for name in ("DIREKTIV_STORE_URL", "DIREKTIV_SIDECAR_PORT"):
        monkeypatch.delenv(name, raising=False)
    return _free_port()


def test_case1_a_wsgi_app_reaches_the_hard_coded_port(pytester: pytest.Pytester, port: int) -> None:
    pytester.makepyfile(function=HARD_CODED.format(port=port))
    pytester.makepyfile(
        """
        from function import app

        def test_app(direktiv_call):
            result = direktiv_call(app, {})
            assert result.ok
            # The environ carried the sidecar's own URL; the front door routed the request.
            assert result.written("seen", "workflow").data.decode() == direktiv_call.sidecar.url
        """
    )
    pytester.runpytest_inprocess("--direktiv-sidecar-port", str(port)).assert_outcomes(passed=1)


def test_case1_a_function_that_cannot_reach_the_sidecar_says_so() -> None:
    dead = _free_port()

    def function(value: object, context: object) -> object:
        import httpx

        return httpx.post(f"http://localhost:{dead}/var", params={"aid": "x"}).text

    with pytest.raises(SidecarUnreachableError) as caught:
        call_function(function, {})
    assert str(caught.value).startswith(
        f"the function could not reach the sidecar at localhost:{dead} (ConnectError: "
    )
    assert "the function should use $DIREKTIV_SIDECAR_URL (or localhost:8889)" in str(caught.value)


def test_case2_the_port_does_not_depend_on_test_order(pytester: pytest.Pytester, port: int) -> None:
    pytester.makepyfile(function=HARD_CODED.format(port=port))
    test = """
        from function import app

        def test_app(direktiv_call):
            assert direktiv_call(app, {}).written("seen", "workflow") is not None
    """
    pytester.mkpydir("a").joinpath("test_a.py").write_text(textwrap.dedent(test))
    sub = pytester.mkpydir("b")
    sub.joinpath("test_b.py").write_text(textwrap.dedent(test))
    sub.joinpath("conftest.py").write_text(
        "import pytest\n\n@pytest.fixture(scope='session')\ndef direktiv_sidecar_address():\n"
        f"    return ('127.0.0.1', {port})\n"
    )
    for order in (["a", "b"], ["b", "a"]):
        result = pytester.runpytest_inprocess("--direktiv-sidecar-port", str(port), *order)
        result.assert_outcomes(passed=2)


def test_case3_xdist_workers_share_the_port_and_errors_stay_local(
    pytester: pytest.Pytester, port: int
) -> None:
    pytester.makepyfile(function=HARD_CODED.format(port=port))
    pytester.makeconftest(
        "import pytest\n\n@pytest.fixture(scope='session')\ndef direktiv_sidecar_address():\n"
        f"    return ('127.0.0.1', {port})\n"
    )
    pytester.makepyfile(
        """
        import pytest
        from function import app

        @pytest.mark.parametrize("n", range(6))
        def test_app(direktiv_call, n):
            assert direktiv_call(app, {}).written("seen", "workflow") is not None

        @pytest.mark.parametrize("n", range(4))
        def test_plain(n):
            pass
        """
    )
    result = pytester.runpytest_subprocess(
        "-n", "2", "--direktiv-sidecar-port", str(port), "-p", "no:randomly", timeout=300
    )
    result.assert_outcomes(passed=10)


def test_case5_fresh_gives_each_hypothesis_example_an_empty_store(
    pytester: pytest.Pytester, port: int
) -> None:
    pytester.makepyfile(
        """
        from hypothesis import HealthCheck, given, settings, strategies as st

        def count(value, context):
            before = context.vars.get("n", "workflow")
            context.vars.set("n", str(int(before or 0) + 1), "workflow")
            return int(before or 0) + 1

        @settings(max_examples=15, deadline=None,
                  suppress_health_check=[HealthCheck.function_scoped_fixture])
        @given(st.integers())
        def test_fresh(direktiv_call, value):
            assert direktiv_call.fresh()(count, value).value == 1

        @settings(max_examples=15, deadline=None,
                  suppress_health_check=[HealthCheck.function_scoped_fixture])
        @given(st.integers())
        def test_isolated(direktiv_call, value):
            assert direktiv_call(count, value, isolate=True).value == 1
        """
    )
    pytester.runpytest_inprocess("--direktiv-sidecar-port", str(port)).assert_outcomes(passed=2)


def test_case7_a_dead_s3_endpoint_is_one_short_usage_error(
    pytester: pytest.Pytester, port: int, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{_free_port()}")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    pytester.makepyfile(
        "import pytest\n\n@pytest.mark.parametrize('n', range(5))\n"
        "def test_store(direktiv_store, n):\n    pass\n"
    )
    result = pytester.runpytest_subprocess(
        "--direktiv-store-url", "s3://bucket/prefix", "-p", "no:randomly", timeout=120
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.stderr.lines if line.startswith("ERROR: ")]
    assert len(errors) == 1
    assert errors[0].startswith(
        "ERROR: the direktiv store 's3://bucket/prefix' (--direktiv-store-url) cannot be used: "
    )
    assert "Could not connect to the endpoint URL" in errors[0]
    assert len(result.stderr.lines) < 10


@pytest.mark.parametrize("package", ["harness", "backends"])
def test_case8_a_project_folder_that_shadows_a_package_is_named(
    pytester: pytest.Pytester, port: int, package: str
) -> None:
    pytester.mkpydir(package)
    pytester.makepyfile("def test_nothing():\n    pass\n")
    # python -m pytest puts the project folder first on sys.path, before site-packages.
    result = pytester.run(sys.executable, "-m", "pytest", "-p", "no:randomly", timeout=120)
    assert result.ret != 0
    found = pytester.path / package / "__init__.py"
    result.stderr.fnmatch_lines(
        [
            f"*ShadowedPackageError: the package {package!r} is '{found}', not direktiv-sdk's "
            f"*: a folder of that name earlier on sys.path shadows it; rename your folder, or "
            "run pytest with --import-mode=importlib*"
        ]
    )


def test_case8_open_store_names_a_shadowing_backends_folder(pytester: pytest.Pytester) -> None:
    pytester.mkpydir("backends")
    script = "from direktiv_sdk import open_store\nopen_store('memory://')\n"
    result = pytester.run(sys.executable, "-c", script, timeout=120)
    assert result.ret == 1
    result.stderr.fnmatch_lines(["*ShadowedPackageError: the package 'backends' is *"])


def test_case4_each_worker_gets_its_own_file_store(
    pytester: pytest.Pytester, port: int, tmp_path: Path
) -> None:
    meeting = tmp_path / "meeting"
    meeting.mkdir()
    pytester.makepyfile(
        f"""
        import os, time
        from pathlib import Path
        from direktiv_sdk.store import Owner

        def test_same_test_on_both_workers(direktiv_store):
            me = os.environ["PYTEST_XDIST_WORKER"]
            ref = Owner.for_namespace("default").ref("who")
            direktiv_store.set(ref, me.encode())
            # Meet the other worker: both have written before either reads.
            Path({str(meeting)!r}, me).touch()
            deadline = time.monotonic() + 60
            while len(list(Path({str(meeting)!r}).iterdir())) < 2:
                assert time.monotonic() < deadline, "the other worker never came"
                time.sleep(0.01)
            assert direktiv_store.get(ref).data == me.encode()
        """
    )
    result = pytester.runpytest_subprocess(
        "-n",
        "2",
        "--dist",
        "each",
        "-p",
        "no:randomly",
        "--direktiv-store-url",
        f"file://{tmp_path / 'stores'}",
        timeout=300,
    )
    result.assert_outcomes(passed=2)
