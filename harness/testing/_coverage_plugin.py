"""``pytest --direktiv-coverage``: workflow coverage of the flows the fixtures run.

The main plugin (:mod:`harness.testing.pytest_plugin`) adds the options and calls
:func:`configure`; when coverage is on, a :class:`CoveragePlugin` is registered. Every
``direktiv_run`` passes :func:`coverage_observer` to the engine. Under pytest-xdist each
worker sends its data to the controller (``workeroutput``), which merges them and writes the
reports once: the terminal table, ``direktiv-coverage.json`` and ``direktiv-coverage.xml``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Final

import pytest

if TYPE_CHECKING:
    from direktiv_sdk.engine.observe import RunObserver

__all__ = ["COVERAGE_OPTION", "CoveragePlugin", "add_options", "configure", "coverage_observer"]

COVERAGE_OPTION: Final = "--direktiv-coverage"
_WORKER_KEY: Final = "direktiv_coverage"
_PLUGIN_NAME: Final = "direktiv-coverage"
_KEY: Final = pytest.StashKey["CoveragePlugin"]()


def add_options(group: pytest.OptionGroup) -> None:
    """Add ``--direktiv-coverage`` and where its reports go."""
    group.addoption(
        COVERAGE_OPTION,
        dest="direktiv_coverage",
        action="store_true",
        default=False,
        help="record the states, transitions, switch branches and catches the flows run by "
        "direktiv_run take; print a table and write direktiv-coverage.json and .xml",
    )
    group.addoption(
        "--direktiv-coverage-json",
        dest="direktiv_coverage_json",
        default="direktiv-coverage.json",
        metavar="PATH",
        help="where --direktiv-coverage writes its JSON data ('' for none)",
    )
    group.addoption(
        "--direktiv-coverage-xml",
        dest="direktiv_coverage_xml",
        default="direktiv-coverage.xml",
        metavar="PATH",
        help="where --direktiv-coverage writes Cobertura XML ('' for none)",
    )


def configure(config: pytest.Config) -> None:
    """Register the coverage plugin when ``--direktiv-coverage`` is given."""
    if config.getoption("direktiv_coverage", default=False):
        plugin = CoveragePlugin(config)
        config.stash[_KEY] = plugin
        config.pluginmanager.register(plugin, _PLUGIN_NAME)


def coverage_observer(config: pytest.Config) -> RunObserver | None:
    """Return the observer ``direktiv_run`` passes to the engine (``None``: coverage is off)."""
    plugin = config.stash.get(_KEY, None)
    return None if plugin is None else plugin.recorder


class CoveragePlugin:
    """Collects workflow coverage for one pytest session and reports it at the end."""

    def __init__(self, config: pytest.Config) -> None:
        # Loaded only with --direktiv-coverage: the plugin itself stays light.
        from harness.testing.coverage import CoverageData, CoverageRecorder  # noqa: PLC0415

        self.config = config
        self.data = CoverageData(config.rootpath)
        self.recorder = CoverageRecorder(self.data)
        self.is_worker = hasattr(config, "workerinput")

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: object, error: object) -> None:
        """Merge the data a pytest-xdist worker sent."""
        output = getattr(node, "workeroutput", {})
        raw = output.get(_WORKER_KEY)
        if raw:
            self.data.merge(json.loads(raw))

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Send the data to the controller (xdist worker) or write the report files."""
        from direktiv_sdk import __version__  # noqa: PLC0415
        from harness.testing.coverage import cobertura_xml  # noqa: PLC0415

        if self.is_worker:
            output: dict[str, str] = self.config.workeroutput  # type: ignore[attr-defined]
            output[_WORKER_KEY] = json.dumps(self.data.to_json())
            return
        base = self.config.invocation_params.dir
        json_path = self.config.getoption("direktiv_coverage_json")
        if json_path:
            (base / json_path).write_text(
                json.dumps(self.data.to_json(), indent=1, sort_keys=True) + "\n", encoding="utf-8"
            )
        xml_path = self.config.getoption("direktiv_coverage_xml")
        if xml_path:
            (base / xml_path).write_bytes(cobertura_xml(self.data, f"direktiv-sdk {__version__}"))

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        """Print the per-flow table."""
        from harness.testing.coverage import format_table, summary_rows  # noqa: PLC0415

        if self.is_worker:
            return
        terminalreporter.write_sep("-", "direktiv workflow coverage")
        rows = summary_rows(self.data)
        if not rows:
            terminalreporter.write_line("no flow ran through direktiv_run")
            return
        terminalreporter.write_line(format_table(rows))
        written = [
            str(Path(p))
            for p in (
                self.config.getoption("direktiv_coverage_json"),
                self.config.getoption("direktiv_coverage_xml"),
            )
            if p
        ]
        if written:
            terminalreporter.write_line(f"written: {', '.join(written)}")
