"""YAML the way Direktiv reads it: ``gopkg.in/yaml.v3`` scalar rules on PyYAML nodes.

PyYAML implements YAML 1.1 (``yes`` is a boolean, ``1e5`` a string, ``1:30`` the integer 90);
Direktiv uses yaml.v3, where only ``true``/``false`` are booleans, ``1e5`` is a float and
timestamps stay strings. We compose nodes with PyYAML (keeping line numbers) and resolve plain
scalars with yaml.v3's rules ourselves. Every value then passes through JSON in the reference,
so integers become floats, ``.inf``/``.nan`` and non-string mapping keys are errors.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from typing import TYPE_CHECKING, Final

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

if TYPE_CHECKING:
    from direktiv_sdk.expr.gojson import JSON

__all__ = [
    "MappingNode",
    "Node",
    "ScalarNode",
    "SequenceNode",
    "YamlError",
    "compose",
    "kind_of",
    "line_of",
    "mapping_items",
    "scalar_value",
    "to_json",
]

_TAG: Final = "tag:yaml.org,2002:"
_BOOLS: Final = {
    "true": True,
    "True": True,
    "TRUE": True,
    "false": False,
    "False": False,
    "FALSE": False,
}
_NULLS: Final = frozenset(("", "~", "null", "Null", "NULL"))
_SPECIAL_FLOATS: Final = {
    ".nan": math.nan,
    ".NaN": math.nan,
    ".NAN": math.nan,
    ".inf": math.inf,
    ".Inf": math.inf,
    ".INF": math.inf,
    "+.inf": math.inf,
    "+.Inf": math.inf,
    "+.INF": math.inf,
    "-.inf": -math.inf,
    "-.Inf": -math.inf,
    "-.INF": -math.inf,
}
_YAML_FLOAT: Final = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")
_GO_INT: Final = re.compile(
    r"^[-+]?(0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)$", re.ASCII
)
_MAX_NODES: Final = 1_000_000
"""Bound on values built from one document (yaml.v3 refuses excessive aliasing too)."""

_MAX_EXPANDED: Final = 64 << 20
"""Bound on the characters of scalars in one document once its aliases are expanded."""


class YamlError(ValueError):
    """The text is not YAML Direktiv accepts; carries the 1-based ``line`` when known."""

    def __init__(self, message: str, line: int | None) -> None:
        self.line = line
        super().__init__(message)


_PLAIN: Final = "!direktiv-sdk/plain"


class _Loader(yaml.SafeLoader):
    """SafeLoader without YAML 1.1 implicit typing: plain scalars are tagged for us to resolve."""

    yaml_implicit_resolvers: dict[str | None, list[tuple[str, re.Pattern[str]]]] = {}


_Loader.add_implicit_resolver(_PLAIN, re.compile(r"(?s).*"), None)


def compose(text: str) -> Node | None:
    """Return the root node of ``text`` (``None`` for an empty document).

    Raises:
        YamlError: The text is not YAML, nests too deeply, or its aliases would expand beyond
            :data:`_MAX_EXPANDED` characters of scalars.
    """
    try:
        root = yaml.compose(text, Loader=_Loader)
    except RecursionError:
        raise YamlError("document nests too deeply for the YAML reader", None) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or "invalid YAML"
        if exc.context:
            problem = f"{exc.context}: {problem}"
        raise YamlError(problem, None if mark is None else mark.line + 1) from exc
    except yaml.YAMLError as exc:
        raise YamlError(str(exc), None) from exc
    if root is not None:
        _check_expansion(root)
    return root


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _check_expansion(root: Node) -> None:
    """Refuse a document whose aliases would expand to too many characters of scalars.

    yaml.v3 refuses excessive aliasing by counting values (:func:`to_json` does too); a string
    anchor aliased many times is few values but many bytes once expanded (and copied by every
    later step), so the characters count here, for the whole document. Iterative, each node
    sized once.
    """
    sizes: dict[int, tuple[int, int]] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            nodes, chars = 1, 0
            for child in _children(node):
                # A node that contains itself has no size yet: to_json reports it, in place.
                child_nodes, child_chars = sizes.get(id(child), (0, 0))
                nodes, chars = nodes + child_nodes, chars + child_chars
            if chars > _MAX_EXPANDED:  # too many values: to_json says so, per field
                raise YamlError("document contains excessive aliasing", line_of(node))
            sizes[key] = (nodes, chars)
            open_nodes.discard(key)
            continue
        if key in sizes:
            continue
        if isinstance(node, ScalarNode):
            sizes[key] = (1, len(node.value))
            continue
        if key in open_nodes:
            continue
        open_nodes.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node))


def line_of(node: Node) -> int:
    """Return the 1-based line where ``node`` starts."""
    return int(node.start_mark.line) + 1


def _go_int(text: str) -> int | None:
    plain = text.replace("_", "")
    if not _GO_INT.match(plain):
        return None
    sign = -1 if plain.startswith("-") else 1
    body = plain.lstrip("+-")
    lower = body.lower()
    if lower.startswith(("0x", "0o", "0b")):
        value = int(body[2:], {"x": 16, "o": 8, "b": 2}[lower[1]])
    elif len(body) > 1 and body.startswith("0"):
        value = int(body, 8)
    else:
        value = int(body)
    value *= sign
    # ParseInt(…, 64) then ParseUint(…, 64); anything larger falls through to the float rule.
    if -(2**63) <= value < 2**64:
        return value
    return None


def _resolve_plain(text: str) -> JSON:
    if text in _NULLS:
        return None
    if text in _BOOLS:
        return _BOOLS[text]
    if text in _SPECIAL_FLOATS:
        return _SPECIAL_FLOATS[text]
    first = text[0]
    if first == ".":
        try:
            return float(text)
        except ValueError:
            return text
    if first in "+-0123456789":
        value = _go_int(text)
        if value is not None:
            return value
        plain = text.replace("_", "")
        if _YAML_FLOAT.match(plain):
            return float(plain)
    return text


def scalar_value(node: ScalarNode) -> JSON:
    """Return the value of a scalar as yaml.v3 decodes it into ``interface{}``."""
    tag = node.tag or ""
    text = str(node.value)
    if tag == _PLAIN:
        return _resolve_plain(text)
    if tag in (_TAG + "str", "!"):
        return text
    if tag == _TAG + "binary":
        try:
            return base64.b64decode(re.sub(r"\s", "", text), validate=True).decode(
                "utf-8", "replace"
            )
        except (binascii.Error, ValueError) as exc:
            raise YamlError(f"!!binary value is not valid base64: {text!r}", line_of(node)) from exc
    if tag.startswith(_TAG) and tag[len(_TAG) :] in ("null", "bool", "int", "float"):
        value = _resolve_plain(text)
        wanted = tag[len(_TAG) :]
        kinds = {"null": type(None), "bool": bool, "int": int, "float": float}
        if wanted == "float" and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kinds[wanted]) or (wanted == "int" and isinstance(value, bool)):
            raise YamlError(f"cannot decode !!{wanted} {text!r}", line_of(node))
        return value
    # yaml.v3 leaves scalars with other tags (timestamps, custom tags) as strings.
    return text


def mapping_items(node: MappingNode) -> list[tuple[str, Node, Node]]:
    """Return ``(key, key node, value node)`` of a mapping (merge keys applied, keys checked)."""
    items: list[tuple[str, Node, Node]] = []
    seen: dict[str, int] = {}
    merged: list[tuple[str, Node, Node]] = []
    for key_node, value_node in node.value:
        if isinstance(key_node, ScalarNode) and (
            key_node.tag == _TAG + "merge" or (key_node.tag == _PLAIN and key_node.value == "<<")
        ):
            sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
            for source in sources:
                if not isinstance(source, MappingNode):
                    raise YamlError("map merge requires map or sequence of maps", line_of(source))
                merged.extend(mapping_items(source))
            continue
        key = scalar_value(key_node) if isinstance(key_node, ScalarNode) else key_node
        if not isinstance(key, str):
            raise YamlError(
                f"mapping key {_describe_key(key_node)} is not a string: "
                "quote it (Direktiv passes every value through JSON)",
                line_of(key_node),
            )
        if key in seen:
            raise YamlError(
                f'mapping key "{key}" already defined at line {seen[key]}', line_of(key_node)
            )
        seen[key] = line_of(key_node)
        items.append((key, key_node, value_node))
    for key, key_node, value_node in merged:
        if key not in seen:
            seen[key] = line_of(key_node)
            items.append((key, key_node, value_node))
    return items


def _describe_key(node: Node) -> str:
    if isinstance(node, ScalarNode):
        return repr(node.value)
    return "of type " + ("mapping" if isinstance(node, MappingNode) else "sequence")


def kind_of(node: Node | None) -> str:
    """Return the JSON kind of a node's value as Go's decoder names it in messages."""
    if node is None:
        return "null"
    if isinstance(node, MappingNode):
        return "object"
    if isinstance(node, SequenceNode):
        return "array"
    value = scalar_value(node)  # type: ignore[arg-type]
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return "string"


def to_json(node: Node | None) -> JSON:
    """Return the JSON value of ``node``: numbers as float, string keys only, no Inf/NaN."""
    budget = [_MAX_NODES]
    return _to_json(node, budget, set())


def _to_json(node: Node | None, budget: list[int], active: set[int]) -> JSON:
    if node is None:
        return None
    budget[0] -= 1
    if budget[0] < 0:
        raise YamlError("document contains excessive aliasing", line_of(node))
    if isinstance(node, ScalarNode):
        value = scalar_value(node)
        if isinstance(value, bool) or value is None or isinstance(value, str):
            return value
        number = float(value)  # type: ignore[arg-type]
        if math.isinf(number) or math.isnan(number):
            raise YamlError(
                f"unsupported value {node.value!r}: JSON has no infinity or NaN", line_of(node)
            )
        return number
    if id(node) in active:
        raise YamlError("recursive alias: a node contains itself", line_of(node))
    active.add(id(node))
    try:
        if isinstance(node, SequenceNode):
            return [_to_json(item, budget, active) for item in node.value]
        if isinstance(node, MappingNode):
            return {key: _to_json(value, budget, active) for key, _, value in mapping_items(node)}
    finally:
        active.discard(id(node))
    raise YamlError(f"unsupported YAML node {type(node).__name__}", line_of(node))
