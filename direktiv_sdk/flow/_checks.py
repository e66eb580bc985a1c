"""Value rules shared by the loader (for literal values) and the runtime (for computed ones).

"A flow that loads must never fail later for a reason the loader could have seen": every rule
the runtime applies to an evaluated key, scope, path or file entry is applied by the loader to
values written literally (templates without ``jq(...)``), with the same message.
"""

from __future__ import annotations

import base64
import binascii
import posixpath
import re
from typing import TYPE_CHECKING, Final

from direktiv_sdk.errors import CatchableError
from direktiv_sdk.expr.gojson import dumps
from direktiv_sdk.flow.model import FILE_TYPES, FunctionFile
from direktiv_sdk.store import KEY_PATTERN

if TYPE_CHECKING:
    from direktiv_sdk.expr.gojson import JSON
    from direktiv_sdk.expr.jx import Template
    from direktiv_sdk.flow.model import ActionFile

__all__ = [
    "SYSTEM_KEYS",
    "LiteralChecks",
    "check_file",
    "decode_base64",
    "file_path",
    "key_error",
    "parse_permissions",
]

_NAME: Final = re.compile(KEY_PATTERN)
SYSTEM_KEYS: Final = ("instance", "uuid", "epoch", "trace")
_FILE_SCOPES: Final = ("", "instance", "workflow", "namespace", "file")
_GO_SPACE: Final = (
    " \t\n\v\f\r\x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009"
    "\u200a\u2028\u2029\u202f\u205f\u3000"
)
_B64_ALPHABET: Final = re.compile(rb"^[A-Za-z0-9+/]*={0,2}$")


def go_trim(text: str) -> str:
    """Return ``text`` without leading/trailing Unicode white space (Go's ``strings.TrimSpace``)."""
    return text.strip(_GO_SPACE)


def _name_ok(value: str) -> bool:
    return "\n" not in value and _NAME.match(value) is not None


def key_error(key: str) -> CatchableError | None:
    """Return the ``direktiv.var.invalidKey`` error for a getter/setter key, if it is invalid."""
    if _name_ok(key):
        return None
    return CatchableError(
        "direktiv.var.invalidKey", f"variable key must match regex: {KEY_PATTERN} (got: {key})"
    )


def file_path(path: str) -> str | None:
    """Return the clean absolute form of a ``file`` scope path, or ``None`` if it is invalid.

    A leading ``/`` is added, the path is cleaned like Go's ``path.Clean`` and every segment
    must follow the variable-name rule. The root itself is not a file.
    """
    clean = posixpath.normpath("/" + path)
    if clean.startswith("//"):
        clean = "/" + clean.lstrip("/")
    segments = [s for s in clean.split("/") if s]
    if not segments or not all(_name_ok(s) for s in segments):
        return None
    return "/" + "/".join(segments)


def decode_base64(text: str) -> bytes | None:
    """Decode standard base64 with padding, ignoring CR/LF (Go's decoder); ``None`` if invalid."""
    data = text.replace("\r", "").replace("\n", "").encode("utf-8", "surrogatepass")
    if len(data) % 4 or not _B64_ALPHABET.match(data):
        return None
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return None


def parse_permissions(text: str) -> tuple[int | None, str]:
    """Parse an octal mode like Go's ``strconv.ParseUint(s, 8, 32)``; return (mode, error)."""
    if not text or not all(c in "01234567" for c in text):
        return None, f'strconv.ParseUint: parsing "{text}": invalid syntax'
    value = int(text, 8)
    if value >= 2**32:
        return None, f'strconv.ParseUint: parsing "{text}": value out of range'
    return value, ""


def check_file(
    index: int,
    *,
    key: str,
    as_name: str,
    scope: str,
    kind: str,
    permissions: str,
    raw_scope: str,
) -> FunctionFile:
    """Return the evaluated ``files:`` entry ``index`` or raise its catchable error (§5.3)."""
    if not key:
        raise CatchableError(
            "direktiv.var.invalidKey",
            f"invalid 'key' for function file {index}: got zero-length string",
        )
    if raw_scope != "file" and not _name_ok(key):
        raise CatchableError(
            "direktiv.var.invalidKey",
            f"invalid 'key' for function file {index}: must start with a letter and only "
            "contain letters, numbers and '_'",
        )
    if scope not in _FILE_SCOPES:
        raise CatchableError(
            "direktiv.var.invalidScope", f"invalid 'scope' for function file {index}: {scope}"
        )
    if kind not in FILE_TYPES:
        raise CatchableError(
            "direktiv.var.invalidType",
            f"invalid 'type' for function file {index}: {kind} (use plain, base64, tar or tar.gz)",
        )
    mode = None
    if permissions:
        mode, problem = parse_permissions(permissions)
        if mode is None:
            raise CatchableError(
                "direktiv.var.perms", f"invalid 'permissions' for function file {index}: {problem}"
            )
    return FunctionFile(
        key=key, scope=scope or "instance", as_name=as_name, type=kind, permissions=mode
    )


def _describe(value: JSON) -> str:
    return dumps(value)


class LiteralChecks:
    """Load-time checks of templates whose value is known without evaluation."""

    @staticmethod
    def literal(template: Template) -> tuple[bool, JSON]:
        """Return ``(True, value)`` if ``template`` contains no expression."""
        if not template.is_literal:
            return False, None
        return True, template.evaluate({})

    def fixed_string(self, template: Template) -> str | None:
        """Return the value of a template without expressions if it is a string."""
        fixed, value = self.literal(template)
        return value if fixed and isinstance(value, str) else None

    def non_object(self, template: Template, raw: JSON) -> str | None:
        """Return why a transform can never produce an object, if it cannot."""
        if isinstance(raw, dict):
            return None
        fixed, value = self.literal(template)
        if not fixed and isinstance(raw, str) and _single_expression(raw, template):
            return None
        shown = _describe(value if fixed else raw)
        return f"{shown} is not an object: write a mapping or one jq(...) expression producing one"

    def non_array(self, template: Template) -> str | None:
        """Return why a foreach ``array`` can never produce a list, if it cannot."""
        fixed, value = self.literal(template)
        if not fixed or isinstance(value, list):
            return None
        return (
            f"{_describe(value)} is not a list: write a list or a jq(...) expression producing one"
        )

    def getter_key(self, template: Template, scope: str) -> str | None:
        """Return why a literal getter key must fail at runtime, if it must."""
        fixed, key = self.literal(template)
        if not fixed:
            return None
        if not isinstance(key, str) or not key:
            return f"key {_describe(key)} is not a non-empty string: write the variable's name"
        if scope == "system":
            if key not in SYSTEM_KEYS:
                return (
                    f"unknown system key {key!r} (choose 'instance', 'uuid', 'epoch', or 'trace')"
                )
            return None
        if scope == "file":
            if file_path(key) is None:
                return (
                    f"invalid file path {key!r}: every segment must match {KEY_PATTERN} "
                    "and the path must name a file"
                )
            return None
        error = key_error(key)
        return None if error is None else error.message

    def setter_key(self, template: Template) -> str | None:
        """Return why a literal setter key must fail at runtime, if it must."""
        return self.getter_key(template, "instance")

    def setter_value(self, template: Template, raw_mime: JSON) -> str | None:
        """Return why a literal octet-stream value cannot be decoded, if it cannot."""
        fixed, value = self.literal(template)
        if not fixed or raw_mime != "application/octet-stream" or not isinstance(value, str):
            return None
        if decode_base64(value) is None:
            return (
                f"value {value!r} is not valid base64 but mimeType is application/octet-stream: "
                "write standard base64 with padding, or another mimeType"
            )
        return None

    def action_file(self, entry: ActionFile, index: int, previous: list[ActionFile]) -> str | None:
        """Return why a literal ``files:`` entry must fail at runtime, if it must."""
        parts = {}
        for name in ("key", "as_name", "scope", "type", "permissions"):
            template = getattr(entry, name)
            if template is None:
                parts[name] = ""
                continue
            fixed, value = self.literal(template)
            if not fixed:
                return None
            parts[name] = value if isinstance(value, str) else _describe(value)
        if parts["scope"] == "thread":
            return (
                f"unsupported scope 'thread' for function file {index}: "
                "use instance, workflow, namespace or file"
            )
        try:
            resolved = check_file(
                index,
                key=parts["key"],
                as_name=parts["as_name"],
                scope=parts["scope"],
                kind=parts["type"],
                permissions=parts["permissions"],
                raw_scope=entry.raw_scope,
            )
        except CatchableError as exc:
            return exc.message
        for other in previous:
            fixed_key, other_key = self.literal(other.key)
            fixed_as, other_as = self.literal(other.as_name) if other.as_name else (True, "")
            if fixed_key and fixed_as and (other_as or other_key) == resolved.target:
                return f"multiple files with same name: {resolved.target}"
        return None


def _single_expression(raw: str, template: Template) -> bool:
    """Return whether ``raw`` is one ``jq(...)`` expression and nothing else."""
    text = go_trim(raw)
    expressions = len(template.programs) + len(template.scripts) + len(template.problems)
    return expressions == 1 and text.startswith(("jq(", "js(")) and text.endswith(")")
