"""The ``direktiv-sdk`` command line: :func:`main` and one private module per command."""

from __future__ import annotations

from direktiv_sdk.cli._main import main

__all__ = ["main"]
