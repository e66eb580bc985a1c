"""Where the CLI's settings come from: command line > environment > pyproject.toml > default."""

from __future__ import annotations

import argparse
import functools
import os
from typing import Final

from direktiv_sdk.cli._targets import resolve_target
from direktiv_sdk.engine.config import ProjectConfig, load_project_config
from direktiv_sdk.store.registry import DEFAULT_STORE_URL, STORE_URL_ENV

__all__ = [
    "NAMESPACE_ENV",
    "PRECEDENCE",
    "option_pairs",
    "project_config",
    "resolve_functions",
    "store_url",
]

NAMESPACE_ENV: Final = "DIREKTIV_NAMESPACE"
PRECEDENCE: Final = (
    "Settings: the command line wins over the environment ($DIREKTIV_STORE_URL, "
    "$DIREKTIV_NAMESPACE), which wins over [tool.direktiv-sdk] in the nearest pyproject.toml "
    "(store, namespace, functions, secrets, sidecar-port), which wins over the defaults."
)


@functools.cache
def project_config() -> ProjectConfig:
    """Return ``[tool.direktiv-sdk]`` of the nearest ``pyproject.toml`` (read once)."""
    return load_project_config()


def store_url(option: str | None, config: ProjectConfig) -> str:
    """Return the store URL: ``--store``, else ``$DIREKTIV_STORE_URL``, the config, the default."""
    return option or os.environ.get(STORE_URL_ENV) or config.store or DEFAULT_STORE_URL


def resolve_functions(config: ProjectConfig, options: dict[str, str]) -> dict[str, object]:
    """Return the function targets: the config's, overridden id by id by ``--function``."""
    base = None if config.file is None else config.file.parent
    targets: dict[str, object] = {}
    for function_id, spec in config.functions.items():
        if function_id not in options:
            targets[function_id] = resolve_target(function_id, spec, base)
    for function_id, spec in options.items():
        targets[function_id] = resolve_target(function_id, spec)
    return targets


def option_pairs(parser: argparse.ArgumentParser, values: list[str], option: str) -> dict[str, str]:
    """Return ``{NAME: VALUE}`` of repeated ``--option NAME=VALUE`` arguments."""
    pairs: dict[str, str] = {}
    for value in values:
        name, sep, target = value.partition("=")
        if not sep or not name or not target:
            parser.error(f"{option} {value!r}: write {option} NAME=VALUE")
        pairs[name] = target
    return pairs
