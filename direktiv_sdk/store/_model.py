"""The values of the store contract: scopes, keys, owners, references, metadata and variables."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import IO, TYPE_CHECKING, Final
from urllib.parse import quote, unquote

from direktiv_sdk.errors import (
    InvalidKeyError,
    InvalidOwnerError,
    InvalidScopeError,
)

if TYPE_CHECKING:
    pass

__all__ = [
    "CHUNK_SIZE",
    "KEY_PATTERN",
    "Owner",
    "Scope",
    "Variable",
    "VariableData",
    "VariableMeta",
    "VariableRef",
    "format_timestamp",
    "validate_key",
]

KEY_PATTERN: Final = r"^(([a-zA-Z][a-zA-Z0-9_\-\.]*[a-zA-Z0-9])|([a-zA-Z]))$"
"""Direktiv's variable-name rule (``utils.VarNameRegexPattern``); namespaces follow it too."""

_KEY_RE: Final = re.compile(KEY_PATTERN)
_INSTANCE_RE: Final = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9_.\-]{0,126}[A-Za-z0-9])?$")
_FORBIDDEN_PATH_CHARS: Final = re.compile(r"[\x00-\x1f\x7f\\]")

VariableData = bytes | bytearray | memoryview | IO[bytes]
"""What :meth:`VariableStore.set` accepts: bytes-like data or a binary stream."""

CHUNK_SIZE: Final = 1 << 20
"""Streams are copied in chunks of this many bytes, so large values never sit in memory."""


class Scope(StrEnum):
    """The three scopes a variable can live in."""

    INSTANCE = "instance"
    WORKFLOW = "workflow"
    NAMESPACE = "namespace"

    @classmethod
    def parse(cls, value: object) -> Scope:
        """Return the scope named by ``value`` or raise :class:`InvalidScopeError`."""
        if isinstance(value, Scope):
            return value
        if isinstance(value, str):
            try:
                return cls(value)
            except ValueError:
                pass
        raise InvalidScopeError(value, tuple(s.value for s in cls))


def validate_key(key: object) -> str:
    """Return ``key`` if it is a valid variable name, else raise :class:`InvalidKeyError`."""
    if isinstance(key, str) and _KEY_RE.match(key) and "\n" not in key:
        return key
    raise InvalidKeyError(key, KEY_PATTERN)


def _check_namespace(namespace: object) -> str:
    if isinstance(namespace, str) and _KEY_RE.match(namespace) and "\n" not in namespace:
        return namespace
    raise InvalidOwnerError("namespace", namespace, f"namespace names must match {KEY_PATTERN}")


def _check_workflow_path(path: object) -> str:
    rule = (
        "workflow paths must be absolute and clean, like '/flows/a.yaml' "
        "(no '.', '..' or empty segments, no backslashes or control characters)"
    )
    if not isinstance(path, str) or not path.startswith("/") or len(path) < 2:
        raise InvalidOwnerError("workflow path", path, rule)
    if _FORBIDDEN_PATH_CHARS.search(path):
        raise InvalidOwnerError("workflow path", path, rule)
    if any(segment in ("", ".", "..") for segment in path[1:].split("/")):
        raise InvalidOwnerError("workflow path", path, rule)
    return path


def _check_instance_id(instance: object) -> str:
    if isinstance(instance, str) and _INSTANCE_RE.match(instance) and "\n" not in instance:
        return instance
    raise InvalidOwnerError(
        "instance id",
        instance,
        "instance ids are 1-128 letters, digits, '_', '-' or '.', "
        "starting and ending with a letter or digit",
    )


@dataclass(frozen=True, slots=True)
class Owner:
    """Who a set of variables belongs to: a namespace, a workflow file or an instance.

    Build one with :meth:`for_namespace`, :meth:`for_workflow` or :meth:`for_instance`; every
    field is validated so that no two owners can ever address the same data.
    """

    scope: Scope
    namespace: str
    workflow: str | None = None
    instance: str | None = None

    def __post_init__(self) -> None:
        scope = Scope.parse(self.scope)
        object.__setattr__(self, "scope", scope)
        _check_namespace(self.namespace)
        if scope is Scope.WORKFLOW:
            _check_workflow_path(self.workflow)
        elif self.workflow is not None:
            raise InvalidOwnerError(
                "workflow path", self.workflow, f"only workflow scope takes one, not {scope}"
            )
        if scope is Scope.INSTANCE:
            _check_instance_id(self.instance)
        elif self.instance is not None:
            raise InvalidOwnerError(
                "instance id", self.instance, f"only instance scope takes one, not {scope}"
            )

    @classmethod
    def for_namespace(cls, namespace: str) -> Owner:
        """Return the owner of namespace-scope variables."""
        return cls(Scope.NAMESPACE, namespace)

    @classmethod
    def for_workflow(cls, namespace: str, workflow: str) -> Owner:
        """Return the owner of the workflow-scope variables of one flow file."""
        return cls(Scope.WORKFLOW, namespace, workflow=workflow)

    @classmethod
    def for_instance(cls, namespace: str, instance: str) -> Owner:
        """Return the owner of the instance-scope variables of one run."""
        return cls(Scope.INSTANCE, namespace, instance=instance)

    def ref(self, key: str) -> VariableRef:
        """Return a reference to variable ``key`` of this owner."""
        return VariableRef(self, key)

    @property
    def segments(self) -> tuple[str, ...]:
        """Return the storage path segments: ``(ns, scope[, encoded workflow | instance id])``.

        A workflow path is percent-encoded into one segment (``/a/b.yaml`` → ``%2Fa%2Fb.yaml``),
        so the layout has a fixed depth and no owner's folder can contain another's.
        """
        if self.scope is Scope.WORKFLOW:
            assert self.workflow is not None
            return (self.namespace, "workflow", quote(self.workflow, safe=""))
        if self.scope is Scope.INSTANCE:
            assert self.instance is not None
            return (self.namespace, "instance", self.instance)
        return (self.namespace, "namespace")

    @classmethod
    def from_segments(cls, segments: tuple[str, ...]) -> Owner:
        """Return the owner whose :attr:`segments` are ``segments``."""
        if len(segments) == 2 and segments[1] == "namespace":
            return cls.for_namespace(segments[0])
        if len(segments) == 3 and segments[1] == "workflow":
            return cls.for_workflow(segments[0], unquote(segments[2]))
        if len(segments) == 3 and segments[1] == "instance":
            return cls.for_instance(segments[0], segments[2])
        raise InvalidOwnerError("owner path", "/".join(segments), "not a variable folder")

    def __str__(self) -> str:
        if self.scope is Scope.WORKFLOW:
            return f"workflow {self.namespace}:{self.workflow}"
        if self.scope is Scope.INSTANCE:
            return f"instance {self.namespace}:{self.instance}"
        return f"namespace {self.namespace}"


@dataclass(frozen=True, slots=True)
class VariableRef:
    """One variable: an owner and a key (validated against Direktiv's variable-name rule)."""

    owner: Owner
    key: str

    def __post_init__(self) -> None:
        if not isinstance(self.owner, Owner):
            raise TypeError(f"owner must be an Owner, not {type(self.owner).__name__}")
        validate_key(self.key)

    @property
    def scope(self) -> Scope:
        """Return the scope of the variable."""
        return self.owner.scope

    def __str__(self) -> str:
        return f"{self.owner} variable {self.key!r}"


def format_timestamp(value: datetime) -> str:
    """Return ``value`` as RFC 3339 UTC with microseconds: ``2026-01-02T03:04:05.000006Z``."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True, slots=True)
class VariableMeta:
    """Everything known about a stored variable except its data."""

    ref: VariableRef
    size: int
    mime_type: str
    created_at: datetime
    updated_at: datetime
    version: str
    """An opaque token that changes on every write; pass it back as ``if_version``."""

    @property
    def name(self) -> str:
        """Return the variable's key."""
        return self.ref.key

    def to_json(self) -> dict[str, str | int]:
        """Return the listing form: ``name, size, mimeType, createdAt, updatedAt``."""
        return {
            "name": self.ref.key,
            "size": self.size,
            "mimeType": self.mime_type,
            "createdAt": format_timestamp(self.created_at),
            "updatedAt": format_timestamp(self.updated_at),
        }


@dataclass(frozen=True, slots=True)
class Variable:
    """A stored variable: its metadata and its bytes."""

    meta: VariableMeta
    data: bytes

    @property
    def name(self) -> str:
        """Return the variable's key."""
        return self.meta.ref.key

    @property
    def mime_type(self) -> str:
        """Return the stored mime type (possibly ``""``)."""
        return self.meta.mime_type

    @property
    def version(self) -> str:
        """Return the version token of this value."""
        return self.meta.version
