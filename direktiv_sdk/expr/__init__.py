"""The expression layer: Go-JSON and Go-%v formatting, the jq program cache, ``jq(...)`` templates.

:mod:`~direktiv_sdk.expr.gojson` writes values as Direktiv's Go code does;
:mod:`~direktiv_sdk.expr.jx` compiles and evaluates templates. Nothing here knows of flows,
stores or engines. Names are imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from direktiv_sdk._lazy import lazy_exports

if TYPE_CHECKING:
    from direktiv_sdk.expr.gojson import (
        JSON,
        JSONObject,
        dumps,
        dumps_indent,
        format_number,
        format_v,
        loads,
    )
    from direktiv_sdk.expr.jx import (
        BAD_COMMAND,
        DEFAULT_CACHE,
        NOT_OBJECT,
        JqCache,
        Snapshot,
        Template,
        compile_template,
        truth,
    )

__all__ = [
    "BAD_COMMAND",
    "DEFAULT_CACHE",
    "JSON",
    "NOT_OBJECT",
    "JSONObject",
    "JqCache",
    "Snapshot",
    "Template",
    "compile_template",
    "dumps",
    "dumps_indent",
    "format_number",
    "format_v",
    "loads",
    "truth",
]

_LAZY: dict[str, str] = {
    "JSON": "direktiv_sdk.expr.gojson",
    "JSONObject": "direktiv_sdk.expr.gojson",
    "dumps": "direktiv_sdk.expr.gojson",
    "dumps_indent": "direktiv_sdk.expr.gojson",
    "format_number": "direktiv_sdk.expr.gojson",
    "format_v": "direktiv_sdk.expr.gojson",
    "loads": "direktiv_sdk.expr.gojson",
    "BAD_COMMAND": "direktiv_sdk.expr.jx",
    "DEFAULT_CACHE": "direktiv_sdk.expr.jx",
    "NOT_OBJECT": "direktiv_sdk.expr.jx",
    "JqCache": "direktiv_sdk.expr.jx",
    "Snapshot": "direktiv_sdk.expr.jx",
    "Template": "direktiv_sdk.expr.jx",
    "compile_template": "direktiv_sdk.expr.jx",
    "truth": "direktiv_sdk.expr.jx",
}
"""Public names by the module that defines them (imported on first access)."""

__getattr__ = lazy_exports(__name__, _LAZY, globals())
