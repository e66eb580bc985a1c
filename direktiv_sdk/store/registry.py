"""Open a variable store from a URL: a lazy registry of URL schemes.

Built-in schemes map to dotted paths that are imported only when used, so ``direktiv_sdk``
never imports a backend (or its optional dependencies) up front. Third-party backends register
through the ``direktiv_sdk.stores`` entry-point group (name = scheme, value =
``module:StoreClass``) or :func:`register_store`. A store class provides
``from_url(url, **options)``; options may also be written in the URL's query
(``file://./x?metadata=sidecar``), typed by the class's ``url_options`` mapping.
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Protocol, cast

from direktiv_sdk._shadowing import check_package
from direktiv_sdk.errors import BackendNotInstalledError, InvalidStoreURLError
from direktiv_sdk.store._contract import VariableStore
from direktiv_sdk.store._urls import coerce_options, split_query

__all__ = [
    "DEFAULT_STORE_URL",
    "ENTRY_POINT_GROUP",
    "STORE_URL_ENV",
    "default_store_url",
    "known_schemes",
    "open_store",
    "register_store",
]

DEFAULT_STORE_URL: Final = "file://./.direktiv"
"""The store used when neither an argument nor ``DIREKTIV_STORE_URL`` names one."""

STORE_URL_ENV: Final = "DIREKTIV_STORE_URL"
ENTRY_POINT_GROUP: Final = "direktiv_sdk.stores"


class StoreFactory(Protocol):
    """What a registered store class offers: construction from a URL and options."""

    def from_url(self, url: str, /, **options: object) -> VariableStore: ...


@dataclass(frozen=True, slots=True)
class _Entry:
    target: str | StoreFactory
    hint: str | None = None


_REGISTRY: dict[str, _Entry] = {
    "memory": _Entry("backends.memory:MemoryStore"),
    "file": _Entry("backends.local:LocalStore"),
    "s3": _Entry("backends.s3:S3Store", hint="pip install 'direktiv-sdk[s3]'"),
}


def register_store(
    scheme: str, target: str | StoreFactory, *, hint: str | None = None, replace: bool = False
) -> None:
    """Map ``scheme`` to a store class or its ``module:Class`` path.

    ``hint`` is shown when importing the target fails (e.g. how to install an extra).
    """
    if not scheme.isidentifier() or scheme != scheme.lower():
        raise ValueError(f"scheme must be a lower-case identifier, not {scheme!r}")
    if scheme in _REGISTRY and not replace:
        raise ValueError(f"scheme {scheme!r} is already registered; pass replace=True")
    _REGISTRY[scheme] = _Entry(target, hint)


def _load_entry_points() -> None:
    # importlib.metadata is slow to import; only an unknown scheme or a listing needs it.
    from importlib.metadata import entry_points  # noqa: PLC0415

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        _REGISTRY.setdefault(ep.name, _Entry(ep.value))


def known_schemes() -> list[str]:
    """Return the registered URL schemes, entry points included, sorted."""
    _load_entry_points()
    return sorted(_REGISTRY)


def default_store_url() -> str:
    """Return ``$DIREKTIV_STORE_URL`` if set and non-empty, else :data:`DEFAULT_STORE_URL`."""
    return os.environ.get(STORE_URL_ENV) or DEFAULT_STORE_URL


def _resolve(scheme: str, entry: _Entry) -> StoreFactory:
    if not isinstance(entry.target, str):
        return entry.target
    module_name, _, attr = entry.target.partition(":")
    package = module_name.partition(".")[0]
    if package in ("backends", "harness"):
        check_package(package)  # a user's backends/ folder is not "not installed"
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        hint = entry.hint or f"install the package that provides {module_name!r}"
        raise BackendNotInstalledError(scheme, f"{hint} ({exc})") from exc
    return cast(StoreFactory, getattr(module, attr))


def open_store(url: str | None = None, **options: object) -> VariableStore:
    """Open the store named by ``url`` (default: :func:`default_store_url`).

    Schemes: ``memory://[name]``, ``file://PATH``, ``s3://bucket/prefix`` and any registered
    third-party scheme. ``options`` go to the backend, and so do the options in the URL's
    query (``?name=value&...``); unknown ones are an error, and so is a ``#`` fragment.
    """
    if url is None:
        url = default_store_url()
    if not isinstance(url, str):
        raise TypeError(f"store URL must be a str, not {type(url).__name__}")
    scheme, sep, _ = url.partition("://")
    if not sep or not scheme:
        forms = ", ".join(s + "://" for s in known_schemes())
        if re.match(r"^[A-Za-z][A-Za-z0-9+.\-]*:", url):  # `file:/x`: a scheme without `//`
            raise InvalidStoreURLError(url, f"write the scheme with '//', like {forms}")
        raise InvalidStoreURLError(url, f"a store URL needs a scheme, like {forms}")
    entry = _REGISTRY.get(scheme.lower())
    if entry is None:
        _load_entry_points()
        entry = _REGISTRY.get(scheme.lower())
    if entry is None:
        raise InvalidStoreURLError(
            url, f"unknown scheme {scheme!r}; known schemes: {', '.join(known_schemes())}"
        )
    base, query = split_query(url)
    factory = _resolve(scheme.lower(), entry)
    if query:
        kinds: Mapping[str, type] | None = getattr(factory, "url_options", None)
        typed = coerce_options(url, query, kinds) if kinds is not None else dict(query)
        for name in typed:
            if name in options:
                raise InvalidStoreURLError(
                    url, f"option {name!r} is in the URL and given as an argument: keep one"
                )
        options = {**typed, **options}
    return factory.from_url(base, **options)
