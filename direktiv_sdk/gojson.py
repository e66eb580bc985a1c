"""The documented 0.1 import path of :mod:`direktiv_sdk.expr.gojson`."""

from __future__ import annotations

from direktiv_sdk.expr.gojson import (
    JSON,
    JSONObject,
    dumps,
    dumps_indent,
    format_number,
    format_v,
    loads,
)

__all__ = [
    "JSON",
    "JSONObject",
    "dumps",
    "dumps_indent",
    "format_number",
    "format_v",
    "loads",
]
