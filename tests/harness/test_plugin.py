"""The pytest plugin, driven through ``pytester``: fixtures, options, marker, backends."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from direktiv_sdk.errors import InvalidStoreURLError
from harness.testing.pytest_plugin import per_test_store_url

pytest_plugins = ["pytester"]


@pytest.fixture(autouse=True, scope="module")
def _engine_loaded_before_inner_runs() -> None:
    """Import what the fixtures load lazily before any ``runpytest_inprocess`` does.

    An in-process run drops the modules it imported from ``sys.modules`` when it ends; if the
    engine were first imported inside one, later tests of this session would import a second
    copy beside the objects the first one left behind (in-process pytester only).
    """
    import importlib

    from direktiv_sdk.engine.states import LOGIC_NAMES

    for module in ("direktiv_sdk.engine.namespace", "direktiv_sdk.flow.lint"):
        importlib.import_module(module)
    for family in {family for family, _ in LOGIC_NAMES.values()}:
        importlib.import_module(f"direktiv_sdk.engine.states.{family}")


TIMEOUT = 60.0
"""Seconds a subprocess of these tests may take."""

HEAVY = ("hypothesis", "jq", "s3fs")

# A tiny suite that only passes if every test gets its own empty store.
FRESH_SUITE = """
    import pytest
    from direktiv_sdk.store import Owner

    REF = Owner.for_namespace("default").ref("x")

    @pytest.mark.parametrize("n", [1, 2, 3])
    def test_store_is_fresh(direktiv_store, n):
        assert direktiv_store.get(REF) is None
        direktiv_store.set(REF, b"%d" % n, if_absent=True)
        assert direktiv_store.get(REF).data == b"%d" % n
"""


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run inner sessions without a store URL from the environment."""
    monkeypatch.delenv("DIREKTIV_STORE_URL", raising=False)
    monkeypatch.delenv("DIREKTIV_SIDECAR_PORT", raising=False)


# --------------------------------------------------------------------------- loading


def test_importing_the_plugin_imports_nothing_heavy() -> None:
    code = (
        "import sys, harness.testing.pytest_plugin; "
        f"heavy = {set(HEAVY)!r} & set(sys.modules); "
        "assert not heavy, heavy"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=TIMEOUT, check=False
    )
    assert done.returncode == 0, done.stderr


def test_a_session_with_the_fixtures_imports_nothing_heavy(
    pytester: pytest.Pytester, clean_env: None
) -> None:
    pytester.makepyfile(
        f"""
        import sys

        def test_light(direktiv_store, direktiv_sidecar, direktiv_call):
            heavy = {set(HEAVY)!r} & set(sys.modules)
            assert not heavy, heavy
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=TIMEOUT)
    result.assert_outcomes(passed=1)


def test_the_entry_point_loads_the_plugin(pytester: pytest.Pytester, clean_env: None) -> None:
    result = pytester.runpytest_inprocess("--help")
    result.stdout.fnmatch_lines(
        ["*--direktiv-store-url=URL*", "*direktiv_store_url (string):*", "*store URL of the*"]
    )
    markers = pytester.runpytest_inprocess("--markers")
    markers.stdout.fnmatch_lines(
        ["@pytest.mark.direktiv_store_url(url, [*][*]options): open this test*"]
    )


def test_the_report_header_names_the_store(pytester: pytest.Pytester, clean_env: None) -> None:
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest_inprocess("--direktiv-store-url", "file://")
    result.stdout.fnmatch_lines(["direktiv: store file:// (--direktiv-store-url)"])


# --------------------------------------------------------------------------- choosing the store

CHOICE_TEST = """
    from backends.local import LocalStore
    from backends.memory import MemoryStore

    def test_choice(direktiv_store_url, direktiv_store, tmp_path):
        assert direktiv_store_url == {url!r}
        assert type(direktiv_store).__name__ == {kind!r}
"""


@pytest.mark.parametrize(
    "case",
    [
        (None, None, None, "memory://"),
        (None, None, "file://", "file://"),
        (None, "memory://", "file://", "memory://"),
        ("file://", "memory://", None, "file://"),
        ("memory://", "file://", "file://", "memory://"),
    ],
    ids=["default", "ini", "env-over-ini", "cli-over-env", "cli-over-all"],
)
def test_the_store_url_comes_from_cli_then_env_then_ini(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    case: tuple[str | None, str | None, str | None, str],
) -> None:
    cli, env, ini, url = case
    if env is None:
        monkeypatch.delenv("DIREKTIV_STORE_URL", raising=False)
    else:
        monkeypatch.setenv("DIREKTIV_STORE_URL", env)
    if ini is not None:
        pytester.makeini(f"[pytest]\ndirektiv_store_url = {ini}\n")
    kind = "MemoryStore" if url.startswith("memory") else "LocalStore"
    pytester.makepyfile(CHOICE_TEST.format(url=url, kind=kind))
    args = ["--direktiv-store-url", cli] if cli else []
    pytester.runpytest_inprocess(*args).assert_outcomes(passed=1)


def test_the_marker_wins_and_passes_its_options(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIREKTIV_STORE_URL", "memory://")
    pytester.makepyfile(
        """
        import pytest
        from direktiv_sdk.errors import InvalidStoreURLError

        @pytest.mark.direktiv_store_url("file://")
        def test_marked(direktiv_store, direktiv_store_options, tmp_path):
            assert type(direktiv_store).__name__ == "LocalStore"
            assert direktiv_store_options == {}

        @pytest.mark.direktiv_store_url("file://", fsync=False)
        def test_options(direktiv_store_options):
            assert direktiv_store_options == {"fsync": False}

        @pytest.mark.direktiv_store_url("memory://", colour="blue")
        def test_bad_option(request):
            with pytest.raises(InvalidStoreURLError, match="unknown option 'colour'"):
                request.getfixturevalue("direktiv_store")

        def test_unmarked(direktiv_store):
            assert type(direktiv_store).__name__ == "MemoryStore"
        """
    )
    pytester.runpytest_inprocess("--strict-markers").assert_outcomes(passed=4)


def test_a_marker_without_one_url_is_an_error(pytester: pytest.Pytester, clean_env: None) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.direktiv_store_url()
        def test_marked(direktiv_store):
            pass
        """
    )
    result = pytester.runpytest_inprocess()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*TypeError: invalid direktiv_store_url marker arguments (): pass one store URL, "
            "like @pytest.mark.direktiv_store_url('file://')"
        ]
    )


def test_the_url_fixture_can_be_overridden(pytester: pytest.Pytester, clean_env: None) -> None:
    pytester.makeconftest(
        """
        import pytest

        @pytest.fixture
        def direktiv_store_url():
            return "file://"
        """
    )
    pytester.makepyfile(
        """
        def test_overridden(direktiv_store, tmp_path):
            assert type(direktiv_store).__name__ == "LocalStore"
            assert direktiv_store.url == f"file://{tmp_path / 'direktiv-store'}"
        """
    )
    pytester.runpytest_inprocess().assert_outcomes(passed=1)


# --------------------------------------------------------------------------- fresh stores


def test_each_test_gets_a_fresh_memory_store(pytester: pytest.Pytester, clean_env: None) -> None:
    pytester.makepyfile(FRESH_SUITE)
    pytester.runpytest_inprocess().assert_outcomes(passed=3)


def test_the_same_suite_runs_on_disk_by_configuration_alone(
    pytester: pytest.Pytester, clean_env: None, tmp_path: Path
) -> None:
    pytester.makepyfile(FRESH_SUITE)
    root = tmp_path / "store-root"
    for _ in range(2):  # each run gets its own <run>-<worker> folder
        result = pytester.runpytest_inprocess("--direktiv-store-url", f"file://{root}")
        result.assert_outcomes(passed=3)
    runs = sorted((root / "_pytest").iterdir())
    assert len(runs) == 2
    assert all(run.name.endswith("-main") for run in runs)
    for run in runs:
        folders = sorted(p.name for p in run.iterdir())
        assert len(folders) == 3
        assert all(name.startswith("test_the_same_suite_runs_on_disk") for name in folders)
        # The data stays for a look after the run.
        assert all(any((run / name).rglob("x*")) for name in folders)


def test_a_relative_file_root_is_relative_to_the_invocation_folder(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIREKTIV_STORE_URL", "file://./rel-store")
    pytester.makepyfile(FRESH_SUITE)
    pytester.runpytest_inprocess().assert_outcomes(passed=3)
    (run,) = (pytester.path / "rel-store" / "_pytest").iterdir()
    assert len(list(run.iterdir())) == 3


def test_plain_file_url_puts_the_store_below_tmp_path(
    pytester: pytest.Pytester, clean_env: None
) -> None:
    pytester.makepyfile(FRESH_SUITE)
    pytester.runpytest_inprocess("--direktiv-store-url", "file://").assert_outcomes(passed=3)


@pytest.mark.s3
def test_the_same_suite_runs_on_s3_by_configuration_alone(
    pytester: pytest.Pytester, s3_endpoint: str, s3_bucket: str
) -> None:
    import s3fs

    pytester.makepyfile(FRESH_SUITE)
    result = pytester.runpytest_inprocess("--direktiv-store-url", f"s3://{s3_bucket}/suite")
    result.assert_outcomes(passed=3)
    fs = s3fs.S3FileSystem(endpoint_url=s3_endpoint, skip_instance_cache=True)
    prefixes = fs.ls(f"{s3_bucket}/suite", refresh=True)
    (run,) = prefixes  # <run>-<worker>
    assert len(fs.ls(run, refresh=True)) == 3


def test_per_test_urls() -> None:
    node = "tests/test_a.py::test_b[x/y]"
    assert per_test_store_url("memory://", node) == "memory://"
    assert per_test_store_url("memory://shared", node) == "memory://"
    local = per_test_store_url("file:///data", node)
    assert local.startswith("file:///data/_pytest/tests-test_a.py-test_b-x-y-")
    assert local == per_test_store_url("file:///data", node)  # stable from run to run
    assert per_test_store_url("file://", node, tmp_path=Path("/t")) == "file:///t/direktiv-store"
    assert per_test_store_url("file://rel", node, base=Path("/base")).startswith(
        "file:///base/rel/_pytest/"
    )
    first = per_test_store_url("s3://bucket/prefix/", node)
    assert first.startswith("s3://bucket/prefix/tests-test_a.py-test_b-x-y-")
    assert first != per_test_store_url("s3://bucket/prefix", node)  # fresh on every run
    other = per_test_store_url("file:///data", "tests/test_a.py::test_c")
    assert other != local


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "redis://localhost",
            "cannot open store 'redis://localhost': direktiv_store makes a fresh store per test "
            "for memory://, file:// and s3:// only; override the direktiv_store fixture for "
            "this scheme",
        ),
        (
            "nonsense",
            "cannot open store 'nonsense': a store URL needs a scheme: use memory://, "
            "file://PATH or s3://bucket/prefix",
        ),
    ],
)
def test_per_test_urls_refuse_what_they_cannot_make_fresh(url: str, message: str) -> None:
    with pytest.raises(InvalidStoreURLError) as caught:
        per_test_store_url(url, "t.py::t")
    assert str(caught.value) == message


def test_a_per_test_file_store_without_a_path_needs_tmp_path() -> None:
    with pytest.raises(
        ValueError, match=r"^cannot make a fresh store from 'file://': pass tmp_path=$"
    ):
        per_test_store_url("file://", "t.py::t")


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("nonsense", "cannot open store 'nonsense'*"),
        ("ftp://x", "*makes a fresh store per test for memory://, file:// and s3:// only*"),
    ],
)
def test_a_bad_configured_url_is_one_usage_error(
    pytester: pytest.Pytester, clean_env: None, url: str, reason: str
) -> None:
    # Issue 9, case 7: one usage error at session start, not one error per test.
    pytester.makepyfile(
        """
        def test_store(direktiv_store):
            pass

        def test_other():
            pass
        """
    )
    result = pytester.runpytest_subprocess("--direktiv-store-url", url, "-p", "no:randomly")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"ERROR: the direktiv store {url!r} (--direktiv-store-url) cannot be used: {reason}"]
    )
    assert "test_store" not in result.stdout.str()


# --------------------------------------------------------------------------- the sidecar


def test_the_sidecar_is_shared_by_the_session_and_cleared_per_test(
    pytester: pytest.Pytester, clean_env: None
) -> None:
    pytester.makepyfile(
        """
        import urllib.error
        import urllib.request

        import pytest

        PORTS = []

        def get(url):
            try:
                with urllib.request.urlopen(url, timeout=10) as response:
                    return response.status
            except urllib.error.HTTPError as error:
                return error.code

        @pytest.mark.parametrize("n", [1, 2])
        def test_sidecar(direktiv_sidecar, n):
            assert direktiv_sidecar.running
            assert direktiv_sidecar.host == "127.0.0.1"
            assert direktiv_sidecar.requests == ()
            assert get(f"{direktiv_sidecar.url}/var?aid=nobody&scope=instance&key=x") == 404
            assert [r.status for r in direktiv_sidecar.requests] == [404]
            PORTS.append(direktiv_sidecar.port)
            assert len(set(PORTS)) == 1
        """
    )
    pytester.runpytest_inprocess().assert_outcomes(passed=2)


def test_a_failure_inside_the_sidecar_fails_the_test_at_teardown(
    pytester: pytest.Pytester, clean_env: None
) -> None:
    pytester.makepyfile(
        """
        import urllib.error
        import urllib.request

        from backends.memory import MemoryStore

        class BrokenStore(MemoryStore):
            def _get(self, ref):
                raise RuntimeError("the disk is on fire")

        def test_broken(direktiv_sidecar):
            with direktiv_sidecar.action(BrokenStore()) as action:
                url = f"{direktiv_sidecar.url}/var?aid={action.aid}&scope=instance&key=x"
                try:
                    urllib.request.urlopen(url, timeout=10)
                except urllib.error.HTTPError as error:
                    assert error.code == 500

        def test_next(direktiv_sidecar):
            assert direktiv_sidecar.requests == ()
        """
    )
    result = pytester.runpytest_inprocess()
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        ["*ERROR at teardown of test_broken*", "*RuntimeError: the disk is on fire*"]
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_conflicting_address_override_is_an_error_naming_both_places(
    pytester: pytest.Pytester, clean_env: None
) -> None:
    port = _free_port()
    pytester.makeconftest(
        f"""
        import pytest

        @pytest.fixture(scope="session")
        def direktiv_sidecar_address():
            return ("127.0.0.1", {port})
        """
    )
    pytester.makepyfile(
        """
        def test_port(direktiv_sidecar):
            pass
        """
    )
    result = pytester.runpytest_inprocess()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            f"*direktiv_sidecar_address is overridden in conftest.py:3 as ('127.0.0.1', {port}), "
            "but the sidecar port is 8889 (default); the port comes from one place*"
        ]
    )


def test_the_sidecar_port_option_sets_the_address(
    pytester: pytest.Pytester, clean_env: None
) -> None:
    port = _free_port()
    pytester.makepyfile(
        f"""
        def test_port(direktiv_sidecar, direktiv_sidecar_address):
            assert direktiv_sidecar_address == ("127.0.0.1", {port})
            assert direktiv_sidecar.front_door.port == {port}
            assert direktiv_sidecar.port != {port}  # its own port; the front door routes to it
        """
    )
    pytester.runpytest_inprocess("--direktiv-sidecar-port", str(port)).assert_outcomes(passed=1)


@pytest.mark.parametrize("value", ["x", "70000", "-1"])
def test_a_bad_sidecar_port_is_a_usage_error(
    pytester: pytest.Pytester, clean_env: None, value: str
) -> None:
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest_subprocess(f"--direktiv-sidecar-port={value}", "-p", "no:randomly")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            f"ERROR: --direktiv-sidecar-port {value!r} is not a port: use 1-65535, "
            "or 0 for no front door"
        ]
    )


# --------------------------------------------------------------------------- calls and runs


def test_direktiv_call_uses_the_tests_store_and_sidecar(
    pytester: pytest.Pytester, clean_env: None
) -> None:
    pytester.makepyfile(
        """
        import json
        import urllib.request

        from direktiv_sdk.store import Owner
        from harness import CallableRunner, Sidecar

        def python_function(data, context):
            context.vars.set("seen", json.dumps(data), "workflow")
            (context.out("namespace") / "marker").write_bytes(b"from out/")
            return {"doubled": data["n"] * 2}

        def wsgi_function(environ, start_response):
            aid = environ["HTTP_DIREKTIV_ACTIONID"]
            base = environ["SIDECAR"]
            request = urllib.request.Request(
                f"{base}/var?aid={aid}&scope=instance&key=hello", data=b"hi", method="POST"
            )
            urllib.request.urlopen(request, timeout=10).close()
            start_response("200 OK", [("Content-Type", "application/json")])
            return [b'"done"']

        def test_python_function(direktiv_call, direktiv_store, direktiv_sidecar, tmp_path):
            result = direktiv_call(python_function, {"n": 21}, namespace="ns")
            assert result.value == {"doubled": 42}
            assert result.store is direktiv_store
            seen = Owner.for_workflow("ns", "/workflow.yaml").ref("seen")
            assert direktiv_store.get(seen).data == b'{"n": 21}'
            marker = Owner.for_namespace("ns").ref("marker")
            assert direktiv_store.get(marker).data == b"from out/"
            assert [(r.method, r.key, r.status) for r in direktiv_sidecar.requests] == [
                ("POST", "seen", 200)
            ]
            assert result.temp_dir.parent == tmp_path / "direktiv-actions"
            assert not result.temp_dir.exists()

        def test_wsgi_function_over_real_http(direktiv_call, direktiv_sidecar):
            def app(environ, start_response):
                environ["SIDECAR"] = direktiv_sidecar.url
                return wsgi_function(environ, start_response)

            result = direktiv_call(app, {}, keep_tempdir=True)
            assert result.value == "done"
            assert result.written("hello").data == b"hi"
            assert result.temp_dir.is_dir()

        def test_a_ready_runner_keeps_its_own_sidecar(direktiv_call, direktiv_sidecar):
            own = Sidecar()
            result = direktiv_call(CallableRunner(python_function, sidecar=own), {"n": 1})
            assert result.value == {"doubled": 2}
            assert direktiv_sidecar.requests == ()
            assert [r.key for r in own.requests] == ["seen"]
        """
    )
    pytester.runpytest_inprocess().assert_outcomes(passed=3)


def test_direktiv_run_runs_flows_on_the_tests_store_in_virtual_time(
    pytester: pytest.Pytester, clean_env: None
) -> None:
    pytester.makefile(
        ".yaml",
        flow="""
            direktiv_api: workflow/v1
            functions:
            - id: greet
              type: knative-workflow
              image: example/greet
            states:
            - id: wait
              type: delay
              duration: PT10M
              transition: call
            - id: call
              type: action
              action:
                function: greet
                input: 'jq(.name)'
              transition: clock
            - id: clock
              type: getter
              variables:
              - key: epoch
                scope: system
            """,
    )
    pytester.makepyfile(
        test_flow="""
        import pytest

        from direktiv_sdk.engine.clock import VirtualClock
        from direktiv_sdk.errors import FunctionNotMappedError
        from direktiv_sdk.store import Owner

        def greet(name, context):
            context.vars.set("greeted", name, "workflow")
            return f"hello {name}"

        def test_run(direktiv_run, direktiv_store, direktiv_sidecar):
            result = direktiv_run("flow.yaml", input={"name": "ada"}, functions={"greet": greet})
            assert result.ok, result.error_json()
            assert result.output["return"] == "hello ada"
            # Ten minutes of delay went by in virtual time, from VirtualClock's epoch.
            assert result.output["var"]["epoch"] == VirtualClock().now() + 600
            ref = Owner.for_workflow("default", "/flow.yaml").ref("greeted")
            assert direktiv_store.get(ref).data == b"ada"
            assert [r.key for r in direktiv_sidecar.requests] == ["greeted"]

        def test_unmapped_function(direktiv_run):
            with pytest.raises(FunctionNotMappedError, match="greet"):
                direktiv_run("flow.yaml", input={"name": "ada"})
        """
    )
    pytester.runpytest_inprocess().assert_outcomes(passed=2)


def test_direktiv_lint_checks_every_flow_in_one_test(
    pytester: pytest.Pytester, clean_env: None
) -> None:
    flows = pytester.mkdir("flows")
    (flows / "good.yaml").write_text("states:\n- {id: a, type: noop}\n")
    (flows / "bad.yaml").write_text("states:\n- {id: a, type: noop, transform: done}\n")
    (flows / "unused.yaml").write_text(
        "functions:\n- {id: f, type: knative-workflow, image: i}\nstates:\n- {id: a, type: noop}\n"
    )
    pytester.makepyfile(
        """
        def test_errors(direktiv_lint):
            direktiv_lint("flows")

        def test_warnings(direktiv_lint):
            direktiv_lint("flows/unused.yaml", warnings=True)

        def test_clean(direktiv_lint):
            direktiv_lint("flows/good.yaml", "flows/unused.yaml")
        """
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*flows/bad.yaml:2:34: V201 state 'a': transform \"done\" is not an object*",
            "*flows/unused.yaml:2:1: S302 function 'f' is never called by an action*",
        ]
    )
