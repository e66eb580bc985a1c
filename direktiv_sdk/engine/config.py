"""The project config: ``[tool.direktiv-sdk]`` in the nearest ``pyproject.toml``.

Precedence everywhere: command line > environment > this file > built-in default.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from direktiv_sdk.errors import ConfigError

__all__ = ["CONFIG_TABLE", "ProjectConfig", "find_pyproject", "load_project_config"]

CONFIG_TABLE: Final = "direktiv-sdk"
_KEYS: Final = ("functions", "namespace", "secrets", "sidecar-port", "store")


@dataclass(frozen=True, slots=True)
class ProjectConfig:
    """What ``[tool.direktiv-sdk]`` says; empty when there is no such table."""

    file: Path | None = None
    store: str | None = None
    namespace: str | None = None
    sidecar_port: int | None = None
    functions: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)


def find_pyproject(start: Path) -> Path | None:
    """Return the nearest ``pyproject.toml`` in ``start`` or a parent folder."""
    for folder in (start, *start.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def load_project_config(start: str | os.PathLike[str] | None = None) -> ProjectConfig:
    """Read ``[tool.direktiv-sdk]`` from the nearest ``pyproject.toml`` (from the cwd up)."""
    file = find_pyproject(Path(start or os.getcwd()).absolute())
    if file is None:
        return ProjectConfig()
    import tomllib  # noqa: PLC0415 - only when there is a pyproject.toml to read

    try:
        with file.open("rb") as handle:
            document = tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(str(file), f"cannot read the file ({exc})") from exc
    tool = document.get("tool", {})
    table = tool.get(CONFIG_TABLE) if isinstance(tool, dict) else None
    if table is None:
        return ProjectConfig(file=file)
    if not isinstance(table, dict):
        raise ConfigError(str(file), "it must be a table")
    unknown = sorted(set(table) - set(_KEYS))
    if unknown:
        raise ConfigError(str(file), f"unknown key {unknown[0]!r}; known keys: {', '.join(_KEYS)}")
    return ProjectConfig(
        file=file,
        store=_string(file, table, "store"),
        namespace=_string(file, table, "namespace"),
        sidecar_port=_port(file, table.get("sidecar-port")),
        functions=_strings(file, table, "functions"),
        secrets=_strings(file, table, "secrets"),
    )


def _string(file: Path, table: dict[str, object], key: str) -> str | None:
    value = table.get(key)
    if value is None or isinstance(value, str):
        return value
    raise ConfigError(str(file), f"{key} must be a string, not {value!r}")


def _strings(file: Path, table: dict[str, object], key: str) -> dict[str, str]:
    value = table.get(key, {})
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ConfigError(str(file), f'{key} must be a table of strings, like {key}.ID = "..."')
    return dict(value)


def _port(file: Path, value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 65535:
        return value
    raise ConfigError(str(file), f"sidecar-port must be a port number 0-65535, not {value!r}")
