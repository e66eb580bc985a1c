"""Tell a user's ``harness/`` or ``backends/`` folder apart from direktiv-sdk's packages.

direktiv-sdk installs the top-level packages ``direktiv_sdk``, ``backends`` and ``harness``
side by side. A project folder with one of those names, earlier on ``sys.path`` (``python -m
pytest`` puts the current folder first; pytest's default import mode prepends test roots),
would be imported instead and fail in confusing ways; :func:`check_package` says so plainly.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Final

from direktiv_sdk.errors import ShadowedPackageError

__all__ = ["check_package"]

_HOME: Final = Path(__file__).resolve().parent.parent
"""The folder holding direktiv_sdk and its sibling packages."""


def _origin(name: str) -> Path | None:
    module = sys.modules.get(name)
    if module is not None:
        location = getattr(module, "__file__", None)
        paths = list(getattr(module, "__path__", []) or [])
        if location:
            return Path(location).resolve()
        return Path(paths[0]).resolve() if paths else None
    spec = importlib.util.find_spec(name)
    if spec is None:
        return None
    if spec.origin and spec.origin not in ("namespace", "built-in"):
        return Path(spec.origin).resolve()
    locations = list(spec.submodule_search_locations or [])
    return Path(locations[0]).resolve() if locations else None


def check_package(name: str) -> None:
    """Raise :class:`ShadowedPackageError` if ``name`` is not direktiv-sdk's own package."""
    expected = _HOME / name
    found = _origin(name)
    if found is None or found == expected / "__init__.py" or found == expected:
        return
    raise ShadowedPackageError(name, str(found), str(expected / "__init__.py"))
