"""The documented import path of :mod:`harness.testing.strategies`."""

from __future__ import annotations

from harness.testing.strategies import (
    HOSTILE_KINDS,
    HOSTILE_NAME,
    FileSpec,
    action_inputs,
    file_specs,
    invalid_variable_keys,
    mime_types,
    scopes,
    tar_archives,
    variable_keys,
    variable_values,
)

__all__ = [
    "HOSTILE_KINDS",
    "HOSTILE_NAME",
    "FileSpec",
    "action_inputs",
    "file_specs",
    "invalid_variable_keys",
    "mime_types",
    "scopes",
    "tar_archives",
    "variable_keys",
    "variable_values",
]
