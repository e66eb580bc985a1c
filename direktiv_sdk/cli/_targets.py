"""Resolve ``--function ID=TARGET``: a URL, ``module:attr`` or ``path/app.py:attr``."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path

from direktiv_sdk.errors import InvalidTargetError

__all__ = ["resolve_target"]


def resolve_target(function_id: str, spec: str, base: Path | None = None) -> object:
    """Return what ``spec`` names: a URL string as it is, else the imported object.

    ``module:attr`` imports ``module`` as uvicorn does (the current directory, or ``base``, is
    on the import path) and follows dotted ``attr``; ``path/app.py:attr`` loads that file
    (relative to ``base`` when given: the folder of the config file that named it).
    """
    if "://" in spec:
        return spec  # a URL: the harness checks its scheme and host
    source, sep, attr = spec.rpartition(":")
    if not sep or not source or not attr:
        raise InvalidTargetError(
            function_id, spec, "write an http(s) URL, module:attr or path/app.py:attr"
        )
    if source.endswith(".py") or "/" in source or os.sep in source:
        path = Path(source) if base is None else base / source
        module = _load_file(function_id, spec, path)
    else:
        module = _import(function_id, spec, source, base)
    value: object = module
    for part in attr.split("."):
        try:
            value = getattr(value, part)
        except AttributeError:
            raise InvalidTargetError(
                function_id, spec, f"{source!r} has no attribute {attr!r}"
            ) from None
    return value


def _import(function_id: str, spec: str, name: str, base: Path | None) -> object:
    folder = os.getcwd() if base is None else str(base)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and (name == exc.name or name.startswith(exc.name + ".")):
            raise InvalidTargetError(function_id, spec, f"no module named {exc.name!r}") from exc
        raise


def _load_file(function_id: str, spec: str, path: Path) -> object:
    if not path.is_file():
        raise InvalidTargetError(function_id, spec, f"no Python file {str(path)!r}")
    folder = str(path.resolve().parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    name = f"direktiv_function_{function_id}_{path.stem}".replace("-", "_").replace(".", "_")
    loaded = importlib.util.spec_from_file_location(name, path)
    if loaded is None or loaded.loader is None:
        raise InvalidTargetError(function_id, spec, f"cannot load {str(path)!r} as Python")
    module = importlib.util.module_from_spec(loaded)
    sys.modules[name] = module
    loaded.loader.exec_module(module)
    return module
