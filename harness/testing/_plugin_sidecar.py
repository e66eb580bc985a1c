"""The plugin's sidecar: one per process on a free port, behind the machine's front door.

The front door port (8889, where Direktiv functions send ``/var`` and ``/log``) comes from one
place: ``--direktiv-sidecar-port``, else ``$DIREKTIV_SIDECAR_PORT``, else the ini option
``direktiv_sidecar_port``, else 8889; ``0`` turns the front door off. Every pytest-xdist worker
keeps its own sidecar; the front door routes each request by its ``aid``. A fixture override of
``direktiv_sidecar_address`` that disagrees is an error naming both places.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Final

import pytest

from direktiv_sdk.engine.config import load_project_config

if TYPE_CHECKING:
    from harness.sidecar import Sidecar

__all__ = [
    "SIDECAR_PORT_INI",
    "SIDECAR_PORT_OPTION",
    "check_address_override",
    "configured_sidecar_port",
    "direktiv_sidecar",
    "direktiv_sidecar_address",
    "direktiv_sidecar_server",
    "pytest_addoption",
]

SIDECAR_PORT_OPTION: Final = "--direktiv-sidecar-port"
SIDECAR_PORT_INI: Final = "direktiv_sidecar_port"
_PORT_ENV: Final = "DIREKTIV_SIDECAR_PORT"  # harness.sidecar.SIDECAR_PORT_ENV, without importing it
_DEFAULT_PORT: Final = 8889
_HOST: Final = "127.0.0.1"


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add ``--direktiv-sidecar-port`` and the ``direktiv_sidecar_port`` ini option."""
    group = parser.getgroup("direktiv", "Direktiv functions and flows (direktiv-sdk)")
    group.addoption(
        SIDECAR_PORT_OPTION,
        dest="direktiv_sidecar_port",
        default=None,
        metavar="PORT",
        help=(
            "port of the sidecar front door that functions hard-code (default "
            f"${_PORT_ENV}, the ini option, else {_DEFAULT_PORT}; 0: no front door)"
        ),
    )
    parser.addini(
        SIDECAR_PORT_INI,
        help=f"port of the sidecar front door when neither {SIDECAR_PORT_OPTION} nor "
        f"${_PORT_ENV} names one (default {_DEFAULT_PORT}; 0: none)",
        default="",
    )


def configured_sidecar_port(config: pytest.Config) -> tuple[int | None, str]:
    """Return the front door port (``None``: off) and where it came from.

    Raises:
        pytest.UsageError: The configured value is not a port.
    """
    option = config.getoption("direktiv_sidecar_port", default=None)
    if option not in (None, ""):
        value, source = str(option), SIDECAR_PORT_OPTION
    elif os.environ.get(_PORT_ENV):
        value, source = os.environ[_PORT_ENV], f"${_PORT_ENV}"
    elif str(config.getini(SIDECAR_PORT_INI) or ""):
        value, source = str(config.getini(SIDECAR_PORT_INI)), f"ini option {SIDECAR_PORT_INI}"
    else:
        project = load_project_config(config.rootpath)
        if project.sidecar_port is None:
            return _DEFAULT_PORT, "default"
        value, source = str(project.sidecar_port), f"{project.file} [tool.direktiv-sdk]"
    text = value.strip()
    if not text.isdigit() or int(text) > 65535:
        raise pytest.UsageError(
            f"{source} {value!r} is not a port: use 1-65535, or 0 for no front door"
        )
    return int(text) or None, source


class _ConfiguredAddress(tuple[str, int]):
    """The address the plugin's own ``direktiv_sidecar_address`` returns (not an override)."""

    __slots__ = ()


@pytest.fixture(scope="session")
def direktiv_sidecar_address(pytestconfig: pytest.Config) -> tuple[str, int]:
    """Return where functions that hard-code the sidecar reach it: ``("127.0.0.1", 8889)``.

    Read-only: choose the port with ``--direktiv-sidecar-port``, ``$DIREKTIV_SIDECAR_PORT``,
    the ini option ``direktiv_sidecar_port`` or ``sidecar-port`` in ``[tool.direktiv-sdk]`` of
    ``pyproject.toml``, in that order (port 0: no front door).
    """
    port, _ = configured_sidecar_port(pytestconfig)
    return _ConfiguredAddress((_HOST, port or 0))


@pytest.fixture(scope="session")
def direktiv_sidecar_server(pytestconfig: pytest.Config) -> Iterator[Sidecar]:
    """Yield this process's running sidecar (use ``direktiv_sidecar`` in tests)."""
    from harness.sidecar import Sidecar  # noqa: PLC0415 - keeps plugin loading light

    port, _ = configured_sidecar_port(pytestconfig)
    sidecar = Sidecar(port=0, front_door=port).start()
    try:
        yield sidecar
    finally:
        sidecar.stop()


def _where_defined(request: pytest.FixtureRequest, name: str) -> str:
    """Return where the fixture ``name`` that ``request``'s test sees is defined."""
    try:
        manager = request._fixturemanager
        definitions = manager.getfixturedefs(name, request.node)
        function = definitions[-1].func if definitions else None
        source = inspect.getsourcefile(function) if function is not None else None
        line = inspect.getsourcelines(function)[1] if function is not None else 0
    except (AttributeError, TypeError, OSError):
        return "a fixture override"
    return f"{os.path.relpath(source)}:{line}" if source else "a fixture override"


def check_address_override(request: pytest.FixtureRequest) -> None:
    """Fail the test when its ``direktiv_sidecar_address`` disagrees with the configuration.

    Raises:
        pytest.UsageError: The override names another port than the configured one.
    """
    address = request.getfixturevalue("direktiv_sidecar_address")
    if isinstance(address, _ConfiguredAddress):
        return
    port, source = configured_sidecar_port(request.config)
    try:
        wanted = int(tuple(address)[1]) or None
    except (TypeError, ValueError, IndexError):
        wanted = -1
    if wanted == port:
        return
    where = _where_defined(request, "direktiv_sidecar_address")
    raise pytest.UsageError(
        f"direktiv_sidecar_address is overridden in {where} as {address!r}, but the sidecar "
        f"port is {port or 0} ({source}); the port comes from one place: remove the override "
        f"and set {SIDECAR_PORT_OPTION}, ${_PORT_ENV} or the ini option {SIDECAR_PORT_INI}"
    )


@pytest.fixture
def direktiv_sidecar(
    request: pytest.FixtureRequest, direktiv_sidecar_server: Sidecar
) -> Iterator[Sidecar]:
    """Yield the session's sidecar, cleared before the test and checked after it."""
    check_address_override(request)
    direktiv_sidecar_server.clear()
    yield direktiv_sidecar_server
    direktiv_sidecar_server.check()
