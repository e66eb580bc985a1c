"""Store options in the URL query (``file://./x?metadata=sidecar``), typed by the backend.

A backend lists its URL options and their types in ``url_options`` (``bool``, ``int`` or
``str``); the registry converts the query's text with them, so every scheme takes options the
same way and an unknown name is one clear error listing the known ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final
from urllib.parse import parse_qsl

from direktiv_sdk.errors import InvalidStoreURLError

__all__ = ["coerce_options", "split_query"]

_TRUE: Final = ("1", "true", "yes", "on")
_FALSE: Final = ("0", "false", "no", "off")


def split_query(url: str) -> tuple[str, dict[str, str]]:
    """Return ``url`` without its query, and the query's options (each named once)."""
    if "#" in url:
        raise InvalidStoreURLError(url, "a store URL has no fragment: remove the '#' part")
    base, sep, query = url.partition("?")
    if not sep:
        return url, {}
    if not query:
        raise InvalidStoreURLError(url, "write the options as ?name=value&name=value")
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        raise InvalidStoreURLError(url, "write the options as ?name=value&name=value") from None
    options: dict[str, str] = {}
    for name, value in pairs:
        if name in options:
            raise InvalidStoreURLError(url, f"option {name!r} is given twice")
        options[name] = value
    return base, options


def coerce_options(
    url: str, options: Mapping[str, str], kinds: Mapping[str, type]
) -> dict[str, object]:
    """Return the query ``options`` converted to the backend's option types ``kinds``."""
    typed: dict[str, object] = {}
    for name, text in options.items():
        kind = kinds.get(name)
        if kind is None:
            known = ", ".join(sorted(kinds)) or "none"
            raise InvalidStoreURLError(url, f"unknown option {name!r}; known options: {known}")
        typed[name] = _coerce(url, name, text, kind)
    return typed


def _coerce(url: str, name: str, text: str, kind: type) -> object:
    if kind is bool:
        lowered = text.lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise InvalidStoreURLError(url, f"option {name!r} must be true or false, not {text!r}")
    if kind is int:
        try:
            return int(text)
        except ValueError:
            raise InvalidStoreURLError(
                url, f"option {name!r} must be a whole number, not {text!r}"
            ) from None
    return text
