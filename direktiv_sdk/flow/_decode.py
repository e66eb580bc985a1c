"""Strict, case-insensitive decoding of YAML mappings into flow objects, with line numbers.

The reference decodes every state, function and block with Go's JSON decoder in strict mode:
unknown keys are errors, keys match field names case-insensitively, and a value of the wrong
JSON kind cannot be decoded into a typed field. :class:`Fields` reproduces that on YAML nodes
and raises :class:`~direktiv_sdk.errors.WorkflowLoadError` naming the file, line and state.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, NoReturn

from direktiv_sdk.errors import WorkflowLoadError
from direktiv_sdk.flow._findings import Finding
from direktiv_sdk.flow._yaml import (
    MappingNode,
    Node,
    ScalarNode,
    SequenceNode,
    YamlError,
    kind_of,
    line_of,
    mapping_items,
    scalar_value,
    to_json,
)

if TYPE_CHECKING:
    from direktiv_sdk.expr.gojson import JSON

__all__ = ["Fields", "LoadContext", "fold"]


def fold(key: str) -> str:
    """Return ``key`` folded the way Go's JSON decoder compares field names."""
    # Go's simple folding also maps U+017F (long s) to 's' and U+212A (Kelvin) to 'k'.
    return key.lower().replace("\u017f", "s")


class LoadContext:
    """Where errors point: the file name and the state being decoded.

    ``strict`` makes every :meth:`report` a load error; otherwise reports are kept in
    :attr:`findings` (problems Direktiv only meets when the state runs).
    """

    def __init__(self, file: str, *, strict: bool = False) -> None:
        self.file = file
        self.strict = strict
        self.findings: list[Finding] = []

    def error(
        self, detail: str, line: int | None, state: str | None = None, rule: str = "D001"
    ) -> WorkflowLoadError:
        """Return a :class:`WorkflowLoadError` for ``detail`` at ``line``."""
        return WorkflowLoadError(detail, file=self.file, line=line, state=state, rule=rule)

    def fail(
        self, detail: str, line: int | None, state: str | None = None, rule: str = "D001"
    ) -> NoReturn:
        """Raise a :class:`WorkflowLoadError` for ``detail`` at ``line``."""
        raise self.error(detail, line, state, rule)

    def report(self, rule: str, detail: str, node: Node | None, state: str | None = None) -> None:
        """Fail (strict) or keep a finding for a problem Direktiv meets only at run time."""
        line = line_of(node) if node is not None else 1
        if self.strict:
            self.fail(detail, line, state, rule)
        column = int(node.start_mark.column) + 1 if node is not None else 1
        self.findings.append(Finding(self.file, line, column, rule, detail, state))

    def json(self, node: Node | None, state: str | None = None, prefix: str = "") -> JSON:
        """Return the JSON value of ``node`` or fail with the YAML problem."""
        try:
            return to_json(node)
        except YamlError as exc:
            self.fail(prefix + str(exc), exc.line, state)


class Fields:
    """One YAML mapping being decoded into one struct with the given field names.

    Args:
        ctx: the load context.
        node: the mapping node (``None`` or null decodes as an empty mapping).
        fields: the accepted field names (matched case-insensitively).
        state: the state id for messages, if known.
        prefix: prepended to every detail (``"catch[0]: "``...).
        strict: whether unknown keys are errors (setter variables are not strict).
        what: how to name this object if it is not a mapping.
    """

    def __init__(
        self,
        ctx: LoadContext,
        node: Node | None,
        fields: Iterable[str],
        *,
        state: str | None = None,
        prefix: str = "",
        strict: bool = True,
        what: str = "object",
    ) -> None:
        self.ctx = ctx
        self.state = state
        self.prefix = prefix
        self.node = node
        self.line = line_of(node) if node is not None else None
        self._values: dict[str, tuple[str, Node]] = {}
        if node is None or (isinstance(node, ScalarNode) and scalar_value(node) is None):
            return
        if not isinstance(node, MappingNode):
            self.fail(f"cannot unmarshal {kind_of(node)} into {what}", self.line)
        by_fold = {fold(name): name for name in fields}
        try:
            items = mapping_items(node)
        except YamlError as exc:
            self.fail(str(exc), exc.line)
        unknown: list[tuple[str, Node]] = []
        for key, key_node, value_node in items:
            name = by_fold.get(fold(key))
            if name is None:
                unknown.append((key, key_node))
                continue
            if name in self._values:
                other = self._values[name][0]
                self.fail(
                    f'fields "{other}" and "{key}" both set "{name}": keep one',
                    line_of(key_node),
                )
            self._values[name] = (key, value_node)
        if strict and unknown:
            # Direktiv decodes the object as sorted JSON: it names the first unknown key in
            # byte order, not in file order.
            key, key_node = min(unknown, key=lambda item: item[0].encode("utf-8", "surrogatepass"))
            known = ", ".join(sorted(by_fold.values(), key=str.lower))
            self.fail(f'unknown field "{key}" (known fields: {known})', line_of(key_node))

    # ------------------------------------------------------------------ errors

    def fail(self, detail: str, line: int | None = None, rule: str = "D001") -> NoReturn:
        """Raise a load error for this object (at ``line``, else the object's line)."""
        self.ctx.fail(self.prefix + detail, self.line if line is None else line, self.state, rule)

    def report(self, rule: str, detail: str, name: str | None = None) -> None:
        """Report a run-time problem at field ``name`` (else this object): see LoadContext."""
        node = self.node_of(name) if name is not None else None
        self.ctx.report(rule, self.prefix + detail, node or self.node, self.state)

    def _type_error(self, name: str, node: Node, wanted: str) -> NoReturn:
        self.fail(
            f'cannot unmarshal {kind_of(node)} into field "{name}" of type {wanted}',
            line_of(node),
        )

    # ------------------------------------------------------------------ access

    def has(self, name: str) -> bool:
        """Return whether ``name`` is present with a non-null value."""
        node = self.node_of(name)
        return node is not None and not (
            isinstance(node, ScalarNode) and scalar_value(node) is None
        )

    def node_of(self, name: str) -> Node | None:
        """Return the value node of ``name`` (``None`` when absent)."""
        entry = self._values.get(name)
        return None if entry is None else entry[1]

    def line_of(self, name: str) -> int | None:
        """Return the line of ``name``'s value, else the line of the object."""
        node = self.node_of(name)
        return self.line if node is None else line_of(node)

    def json(self, name: str) -> JSON:
        """Return the JSON value of ``name`` (``None`` when absent)."""
        return self.ctx.json(self.node_of(name), self.state, self.prefix)

    def _scalar(self, name: str, wanted: str) -> tuple[Node | None, JSON]:
        """Return the node and scalar value of ``name``; a mapping or list is a type error."""
        node = self.node_of(name)
        if node is None:
            return None, None
        if not isinstance(node, ScalarNode):
            self._type_error(name, node, wanted)
        try:
            return node, scalar_value(node)
        except YamlError as exc:
            self.fail(str(exc), exc.line)

    def string(self, name: str) -> str:
        """Return the string field ``name`` (``""`` when absent or null)."""
        node, value = self._scalar(name, "string")
        if node is None or value is None:
            return ""
        if not isinstance(value, str):
            self._type_error(name, node, "string")
        return value

    def boolean(self, name: str) -> bool:
        """Return the boolean field ``name`` (``False`` when absent or null)."""
        node, value = self._scalar(name, "bool")
        if node is None or value is None:
            return False
        if not isinstance(value, bool):
            self._type_error(name, node, "bool")
        return value

    def number(self, name: str, *, integer: bool = False) -> int | float:
        """Return the numeric field ``name`` (0 when absent or null)."""
        node, value = self._scalar(name, "int" if integer else "float64")
        if node is None or value is None:
            return 0
        if isinstance(value, bool) or not isinstance(value, int | float):
            self._type_error(name, node, "int" if integer else "float64")
        if isinstance(value, float) and not math.isfinite(value):
            self.fail(f"unsupported value {value!r} in field {name!r}", line_of(node))
        if integer:
            if isinstance(value, float) and not value.is_integer():
                self.fail(
                    f'cannot unmarshal number {node.value} into field "{name}" of type int',
                    line_of(node),
                )
            return int(value)
        return float(value)

    def items(self, name: str) -> list[Node]:
        """Return the element nodes of the list field ``name`` (``[]`` when absent or null)."""
        node = self.node_of(name)
        if node is None or (isinstance(node, ScalarNode) and scalar_value(node) is None):
            return []
        if not isinstance(node, SequenceNode):
            self._type_error(name, node, "array")
        return list(node.value)

    def strings(self, name: str) -> list[str]:
        """Return the list-of-strings field ``name``."""
        result: list[str] = []
        for item in self.items(name):
            value = scalar_value(item) if isinstance(item, ScalarNode) else item
            if value is None:
                result.append("")
            elif isinstance(value, str):
                result.append(value)
            else:
                self._type_error(f"{name}[{len(result)}]", item, "string")
        return result

    def child_of(
        self, node: Node | None, fields: Iterable[str], prefix: str = "", strict: bool = True
    ) -> Fields:
        """Return ``node`` (an element of one of this object's lists) decoded with ``fields``."""
        return Fields(
            self.ctx, node, fields, state=self.state, prefix=self.prefix + prefix, strict=strict
        )

    def child(
        self, name: str, fields: Iterable[str], *, prefix: str = "", strict: bool = True
    ) -> Fields:
        """Return the nested object ``name`` decoded with ``fields``."""
        return Fields(
            self.ctx,
            self.node_of(name),
            fields,
            state=self.state,
            prefix=self.prefix + prefix,
            strict=strict,
            what=f'field "{name}"',
        )
