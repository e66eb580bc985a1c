"""pytest plugin: a fresh variable store per test, a real fake sidecar, function and flow calls.

Installed with direktiv-sdk (entry point ``pytest11: direktiv``), so the fixtures are there in
every test without a ``conftest.py``:

``direktiv_store``
    A fresh :class:`~direktiv_sdk.store.VariableStore` per test. The backend comes from the
    ``direktiv_store_url`` marker, else ``--direktiv-store-url``, else ``$DIREKTIV_STORE_URL``,
    else the ``direktiv_store_url`` ini option, else ``memory://``: ``memory://`` gives a new
    private store, ``file://PATH`` a fresh folder per test below ``PATH`` (plain ``file://``:
    below the test's ``tmp_path``), ``s3://bucket/prefix`` a fresh prefix per test. So a whole
    suite re-runs on disk or S3 by configuration alone.
``direktiv_store_url`` / ``direktiv_store_options``
    The URL and ``open_store`` options the store is opened from; override them in a
    ``conftest.py`` to choose in code.
``direktiv_sidecar``
    A :class:`~harness.sidecar.Sidecar` listening on ``127.0.0.1`` (a free port; override
    ``direktiv_sidecar_address`` to pick one, e.g. 8889), started once per session, cleared
    before each test and checked after it: a failure inside the sidecar fails the test.
``direktiv_call``
    :func:`~harness.functions.call_function` with the test's store and sidecar.
``direktiv_run``
    :func:`~direktiv_sdk.engine.interpreter.run_workflow` with the test's store and sidecar, on a
    :class:`~direktiv_sdk.engine.clock.VirtualClock` unless given another clock.
``direktiv_namespace``
    A fresh :class:`~direktiv_sdk.Namespace` on the test's store and a ``VirtualClock``: write
    flows into its ``root`` folder, ``start`` them, ``send`` CloudEvents, ``wait``.

Loading the plugin imports neither Hypothesis, jq nor s3fs: the interpreter (jq) is imported
by ``direktiv_run`` when it runs a flow, a backend (s3fs) when its store is opened.
"""

from __future__ import annotations

import copy
import hashlib
import os
import re
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final, Protocol

import pytest

from direktiv_sdk.engine.clock import VirtualClock
from direktiv_sdk.engine.config import load_project_config
from direktiv_sdk.engine.functions import FunctionRunner
from direktiv_sdk.errors import InvalidStoreURLError
from direktiv_sdk.store.registry import STORE_URL_ENV
from harness.testing import _coverage_plugin as _coverage
from harness.testing import _plugin_report, _plugin_sidecar
from harness.testing._coverage_plugin import coverage_observer
from harness.testing._plugin_sidecar import configured_sidecar_port
from harness.testing._plugin_stores import StoreFactory, check_configured_store, run_segment

if TYPE_CHECKING:
    from typing import Self

    from direktiv_sdk.engine.clock import Clock
    from direktiv_sdk.engine.functions import FunctionFile
    from direktiv_sdk.engine.interpreter import InstanceResult, StartInput, Workflow
    from direktiv_sdk.engine.namespace import Namespace
    from direktiv_sdk.engine.observe import RunObserver
    from direktiv_sdk.expr.gojson import JSON
    from direktiv_sdk.store import VariableStore
    from harness.functions import CallResult, SidecarRunner
    from harness.sidecar import Sidecar

__all__ = [
    "DEFAULT_STORE_URL",
    "MARKER",
    "STORE_URL_INI",
    "STORE_URL_OPTION",
    "FunctionCaller",
    "LintFlows",
    "WorkflowRunner",
    "configured_store_url",
    "per_test_store_url",
]

DEFAULT_STORE_URL: Final = "memory://"
"""The store of the fixtures when nothing names one."""
STORE_URL_OPTION: Final = "--direktiv-store-url"
STORE_URL_INI: Final = "direktiv_store_url"
MARKER: Final = "direktiv_store_url"


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    """Register the sidecar fixtures and the failure report (each in its own module)."""
    for name, module in (
        ("direktiv.sidecar", _plugin_sidecar),
        ("direktiv.report", _plugin_report),
    ):
        if pluginmanager.get_plugin(name) is None:
            pluginmanager.register(module, name)


_SLUG_UNSAFE: Final = re.compile(r"[^A-Za-z0-9_.-]+")
_LOCAL_SUBFOLDER: Final = "_pytest"
"""Per-test folders live below ``<root>/_pytest``: a name no namespace can have."""


# --------------------------------------------------------------------------- configuration


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add ``--direktiv-store-url`` and the ``direktiv_store_url`` ini option."""
    group = parser.getgroup("direktiv", "Direktiv functions and flows (direktiv-sdk)")
    group.addoption(
        STORE_URL_OPTION,
        dest="direktiv_store_url",
        default=None,
        metavar="URL",
        help=(
            "store of the direktiv_store fixture: memory://, file://PATH (file:// alone: "
            f"tmp_path) or s3://bucket/prefix; default ${STORE_URL_ENV}, the ini option, "
            f"else {DEFAULT_STORE_URL}"
        ),
    )
    parser.addini(
        STORE_URL_INI,
        help=f"store URL of the direktiv_store fixture when neither {STORE_URL_OPTION} "
        f"nor ${STORE_URL_ENV} names one (default {DEFAULT_STORE_URL})",
        default="",
    )
    _coverage.add_options(group)


def configured_store_url(config: pytest.Config) -> tuple[str, str]:
    """Return the configured store URL and where it came from.

    The command line wins over ``$DIREKTIV_STORE_URL``, which wins over the ini option, which
    wins over ``store`` in ``[tool.direktiv-sdk]`` of the nearest ``pyproject.toml``.
    """
    option = config.getoption("direktiv_store_url", default=None)
    if option:
        return str(option), STORE_URL_OPTION
    env = os.environ.get(STORE_URL_ENV)
    if env:
        return env, f"${STORE_URL_ENV}"
    ini = str(config.getini(STORE_URL_INI) or "")
    if ini:
        return ini, f"ini option {STORE_URL_INI}"
    project = load_project_config(config.rootpath)
    if project.store:
        return project.store, f"{project.file} [tool.direktiv-sdk]"
    return DEFAULT_STORE_URL, "default"


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``direktiv_store_url`` marker (and workflow coverage, when asked for)."""
    config.addinivalue_line(
        "markers",
        f"{MARKER}(url, **options): open this test's direktiv_store from url (memory://, "
        "file://PATH, s3://bucket/prefix), passing options to open_store",
    )
    _coverage.configure(config)


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Name the store and the sidecar port the fixtures use."""
    url, source = configured_store_url(config)
    port, port_source = configured_sidecar_port(config)
    door = f"localhost:{port}" if port else "off"
    return [
        f"direktiv: store {url} ({source})",
        f"direktiv: sidecar front door {door} ({port_source})",
    ]


def pytest_sessionstart(session: pytest.Session) -> None:
    """Check the configured store and sidecar port once, before any test runs."""
    config = session.config
    configured_sidecar_port(config)
    if getattr(config, "workerinput", None) is None:  # the xdist controller checks for all
        url, source = configured_store_url(config)
        check_configured_store(config, url, source, per_test_store_url)


# --------------------------------------------------------------------------- the store


def _slug(nodeid: str) -> str:
    """Return a folder or prefix name for a test: readable, unique, one path segment."""
    readable = _SLUG_UNSAFE.sub("-", nodeid).strip("-.")[:80]
    digest = hashlib.sha256(nodeid.encode()).hexdigest()[:10]
    return f"{readable}-{digest}" if readable else digest


def per_test_store_url(
    url: str,
    nodeid: str,
    *,
    tmp_path: Path | None = None,
    base: Path | None = None,
    run: str = "",
) -> str:
    """Return the URL of a fresh store for test ``nodeid`` derived from the configured ``url``.

    ``memory://…`` → ``memory://`` (a new private store; a name is not shared between tests);
    ``file://`` → ``<tmp_path>/direktiv-store``; ``file://PATH`` → ``PATH/_pytest/<run>/<test>``
    (relative paths from ``base``); ``s3://bucket/prefix`` → ``…/prefix/<run>/<test>``.
    ``run`` (``<run id>-<xdist worker>``) keeps workers and runs apart; without it a file
    folder is ``PATH/_pytest/<test>`` and an S3 prefix ends in a random suffix.

    Raises:
        InvalidStoreURLError: No scheme, or another scheme: there is no generic way to make a
            fresh store for it.
    """
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not (sep and scheme):
        raise InvalidStoreURLError(
            url, "a store URL needs a scheme: use memory://, file://PATH or s3://bucket/prefix"
        )
    if scheme == "memory":
        return "memory://"
    if scheme == "file":
        if not rest:
            if tmp_path is None:
                raise ValueError(f"cannot make a fresh store from {url!r}: pass tmp_path=")
            return f"file://{tmp_path / 'direktiv-store'}"
        path, mark, query = rest.partition("?")
        root = Path(path).expanduser()
        if base is not None:
            root = base / root  # an absolute root stays as it is
        folder = root.absolute() / _LOCAL_SUBFOLDER
        folder = folder / run if run else folder
        return f"file://{folder / _slug(nodeid)}{mark}{query}"
    if scheme == "s3":
        head, mark, query = url.partition("?")
        if run:
            return f"{head.rstrip('/')}/{run}/{_slug(nodeid)}{mark}{query}"
        return f"{head.rstrip('/')}/{_slug(nodeid)}-{uuid.uuid4().hex[:8]}{mark}{query}"
    raise InvalidStoreURLError(
        url,
        "direktiv_store makes a fresh store per test for memory://, file:// and s3:// only; "
        "override the direktiv_store fixture for this scheme",
    )


def _marker(request: pytest.FixtureRequest) -> pytest.Mark | None:
    marker: pytest.Mark | None = request.node.get_closest_marker(MARKER)
    if marker is not None and (len(marker.args) != 1 or not isinstance(marker.args[0], str)):
        raise TypeError(
            f"invalid {MARKER} marker arguments {marker.args!r}: pass one store URL, "
            f"like @pytest.mark.{MARKER}('file://')"
        )
    return marker


@pytest.fixture
def direktiv_store_url(request: pytest.FixtureRequest) -> str:
    """Return the store URL of this test: the marker's, else the configured one."""
    marker = _marker(request)
    if marker is not None:
        return str(marker.args[0])
    return configured_store_url(request.config)[0]


@pytest.fixture
def direktiv_store_options(request: pytest.FixtureRequest) -> dict[str, object]:
    """Return the ``open_store`` options of this test's store (the marker's keywords)."""
    marker = _marker(request)
    return {} if marker is None else dict(marker.kwargs)


@pytest.fixture
def direktiv_store_factory(
    request: pytest.FixtureRequest,
    direktiv_store_url: str,
    direktiv_store_options: dict[str, object],
) -> Iterator[StoreFactory]:
    """Yield a factory of fresh, empty stores for this test (one per Hypothesis example)."""
    factory = StoreFactory(
        direktiv_store_url,
        direktiv_store_options,
        request.node.nodeid,
        make_url=per_test_store_url,
        tmp_path=lambda: Path(request.getfixturevalue("tmp_path")),
        base=request.config.invocation_params.dir,
        run=run_segment(request.config),
    )
    try:
        yield factory
    finally:
        factory.close()


@pytest.fixture
def direktiv_store(direktiv_store_factory: StoreFactory) -> VariableStore:
    """Return a fresh, empty variable store for this test (closed afterwards)."""
    return direktiv_store_factory()


# --------------------------------------------------------------------------- the sidecar


# --------------------------------------------------------------------------- calls and runs


class _BoundToTest:
    """What ``direktiv_call`` and ``direktiv_run`` share: the test's store, sidecar, temp dirs."""

    def __init__(
        self,
        store: VariableStore,
        sidecar: Sidecar,
        temp_root: Path,
        factory: Callable[[], VariableStore] | None = None,
    ) -> None:
        self.store = store
        self.sidecar = sidecar
        self.temp_root = temp_root
        self._factory = factory
        self.history: list[CallResult | InstanceResult] = []
        """Every result of this test (fresh copies too), for the failure report."""

    def fresh(self) -> Self:
        """Return a copy bound to a new, empty store (:attr:`store`), sharing the history."""
        clone = copy.copy(self)
        clone.store = _fresh_store(self._factory)
        return clone


class FunctionCaller(_BoundToTest):
    """What ``direktiv_call`` is: :func:`~harness.functions.call_function` bound to a test.

    Calls use the test's store and sidecar; temp dirs go below the test's ``tmp_path``.
    :meth:`fresh` returns one bound to a new empty store (one per Hypothesis example).
    """

    def __call__(
        self,
        target: object,
        input: JSON | bytes,
        *,
        files: Sequence[FunctionFile | Mapping[str, object]] = (),
        namespace: str = "default",
        workflow: str = "/workflow.yaml",
        instance: str | None = None,
        iterator: int = 0,
        root: str | os.PathLike[str] | None = None,
        keep_tempdir: bool = False,
        timeout: float = 900.0,
        action_id: str | None = None,
        function_id: str = "function",
        raise_errors: bool = True,
        sidecar: Sidecar | None = None,
        isolate: bool = False,
    ) -> CallResult:
        """Call ``target`` once with ``input``; see :func:`~harness.functions.call_function`.

        ``sidecar`` replaces the test's sidecar for this call; ``isolate=True`` runs it on a
        new, empty store (``result.store``) instead of the test's.
        """
        # A ready runner keeps its own sidecar and temp dir settings.
        from harness.functions import SidecarRunner, call_function  # noqa: PLC0415 - lazy

        own = not isinstance(target, SidecarRunner)
        result = call_function(
            target,
            input,
            files=files,
            store=_fresh_store(self._factory) if isolate else self.store,
            namespace=namespace,
            workflow=workflow,
            instance=instance,
            iterator=iterator,
            root=root,
            keep_tempdir=keep_tempdir,
            temp_root=self.temp_root if own else None,
            timeout=timeout,
            action_id=action_id,
            sidecar=(sidecar or self.sidecar) if own else sidecar,
            function_id=function_id,
            raise_errors=raise_errors,
        )
        self.history.append(result)
        return result


class WorkflowRunner(_BoundToTest):
    """What ``direktiv_run`` is: :func:`~direktiv_sdk.engine.run_workflow` bound to a test.

    Flows use the test's store; their functions talk to the test's sidecar and get temp dirs
    below ``tmp_path``; time is virtual unless a ``clock`` is given, so delays and retry
    back-off do not sleep. :meth:`fresh` returns one bound to a new empty store.
    """

    def __init__(
        self,
        store: VariableStore,
        sidecar: Sidecar,
        temp_root: Path,
        factory: Callable[[], VariableStore] | None = None,
        *,
        observer: RunObserver | None = None,
    ) -> None:
        super().__init__(store, sidecar, temp_root, factory)
        self.observer = observer
        """Told about every instance run (``--direktiv-coverage`` records through it)."""

    def __call__(
        self,
        flow: Workflow | str | os.PathLike[str],
        *,
        input: StartInput | None = None,
        functions: Mapping[str, object] | None = None,
        namespace: str = "default",
        path: str | None = None,
        root: str | os.PathLike[str] | None = None,
        instance_id: str | None = None,
        clock: Clock | None = None,
        secrets: Mapping[str, str] | None = None,
        sidecar: Sidecar | None = None,
    ) -> InstanceResult:
        """Run one instance of ``flow``; see :func:`~direktiv_sdk.engine.interpreter.run_workflow`.

        ``functions`` maps function ids to URLs, WSGI/ASGI apps, Python functions or runners;
        ``sidecar`` replaces the test's sidecar for them.
        """
        # The interpreter imports jq: only a test that runs a flow pays for it.
        from direktiv_sdk.engine.interpreter import run_workflow  # noqa: PLC0415

        runners, made = self._runners(functions or {}, sidecar or self.sidecar)
        try:
            result = run_workflow(
                flow,
                input=input,
                store=self.store,
                namespace=namespace,
                path=path,
                root=root,
                instance_id=instance_id,
                functions=runners,
                clock=clock if clock is not None else VirtualClock(),
                secrets=secrets,
                observer=self.observer,
            )
        finally:
            for runner in made:
                runner.close()
        self.history.append(result)
        return result

    def _runners(
        self, functions: Mapping[str, object], sidecar: Sidecar
    ) -> tuple[dict[str, FunctionRunner], list[SidecarRunner]]:
        from harness.functions import make_runner  # noqa: PLC0415 - keeps plugin loading light

        runners: dict[str, FunctionRunner] = {}
        made: list[SidecarRunner] = []
        for function_id, target in functions.items():
            if isinstance(target, FunctionRunner):
                runners[function_id] = target
                continue
            runner = make_runner(function_id, target, sidecar=sidecar, temp_root=self.temp_root)
            runners[function_id] = runner
            made.append(runner)
        return runners, made


def _fresh_store(factory: Callable[[], VariableStore] | None) -> VariableStore:
    if factory is None:
        raise TypeError("this caller has no store factory: build it with one to use fresh()")
    return factory()


@pytest.fixture
def direktiv_call(
    direktiv_store: VariableStore,
    direktiv_store_factory: StoreFactory,
    direktiv_sidecar: Sidecar,
    tmp_path: Path,
) -> FunctionCaller:
    """Return a function that calls a function target with this test's store and sidecar."""
    return FunctionCaller(
        direktiv_store, direktiv_sidecar, tmp_path / "direktiv-actions", direktiv_store_factory
    )


@pytest.fixture
def direktiv_run(
    request: pytest.FixtureRequest,
    direktiv_store: VariableStore,
    direktiv_store_factory: StoreFactory,
    direktiv_sidecar: Sidecar,
    tmp_path: Path,
) -> WorkflowRunner:
    """Return a function that runs a flow with this test's store and sidecar."""
    return WorkflowRunner(
        direktiv_store,
        direktiv_sidecar,
        tmp_path / "direktiv-actions",
        direktiv_store_factory,
        observer=coverage_observer(request.config),
    )


class LintFlows(Protocol):
    """The ``direktiv_lint`` fixture: lint flows, fail the test on errors."""

    def __call__(self, *paths: str | os.PathLike[str], warnings: bool = False) -> None:
        """Lint ``paths`` (files or folders)."""
        ...


def _lint_flows(*paths: str | os.PathLike[str], warnings: bool = False) -> None:
    """Fail the test with every lint error (and warning, if asked) of the flows under ``paths``."""
    # Imported here: linting loads flows (jq), which loading the plugin must not do.
    from direktiv_sdk.flow.lint import lint_paths  # noqa: PLC0415

    found = [f for f in lint_paths(paths) if warnings or f.severity == "error"]
    if found:
        pytest.fail("\n".join(str(f) for f in found), pytrace=False)


@pytest.fixture
def direktiv_lint() -> LintFlows:
    """Return a function that lints flow files and folders and fails the test on errors.

    ``direktiv_lint("flows/")`` checks every ``*.yaml`` under ``flows/``, as
    ``direktiv-sdk lint`` does; ``warnings=True`` also fails on warnings.
    """
    return _lint_flows


@pytest.fixture
def direktiv_namespace(direktiv_store: VariableStore, tmp_path: Path) -> Iterator[Namespace]:
    """Return a fresh namespace session: flows go in ``.root``, time is a ``VirtualClock``."""
    from direktiv_sdk.engine.namespace import Namespace  # noqa: PLC0415 - keeps loading light

    root = tmp_path / "direktiv-namespace"
    root.mkdir()
    namespace = Namespace(root, store=direktiv_store, clock=VirtualClock())
    try:
        yield namespace
    finally:
        namespace.close()
