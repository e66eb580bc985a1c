"""The store layer: scopes, owners, references, the ``VariableStore`` contract, the URL registry.

Everything here is plain data and one ABC; :mod:`direktiv_sdk.store.registry` turns a URL
(``memory://``, ``file://PATH``, ``s3://bucket/prefix``) into a backend, imported lazily.
"""

from __future__ import annotations

from direktiv_sdk.store._contract import (
    MAX_MIME_TYPE,
    VariableReader,
    VariableStore,
    check_mime_type,
    translate_os_error,
)
from direktiv_sdk.store._model import (
    CHUNK_SIZE,
    KEY_PATTERN,
    Owner,
    Scope,
    Variable,
    VariableData,
    VariableMeta,
    VariableRef,
    format_timestamp,
    validate_key,
)

__all__ = [
    "CHUNK_SIZE",
    "KEY_PATTERN",
    "MAX_MIME_TYPE",
    "Owner",
    "Scope",
    "Variable",
    "VariableData",
    "VariableMeta",
    "VariableReader",
    "VariableRef",
    "VariableStore",
    "check_mime_type",
    "format_timestamp",
    "translate_os_error",
    "validate_key",
]
