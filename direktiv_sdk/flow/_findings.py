"""What ``direktiv-sdk lint`` reports: findings with stable, ruff-like codes.

Each rule has one code; the table below is the source of docs/lint.md. Errors are problems
Direktiv meets when the flow runs (or refuses to load); warnings are flows that run but
probably do not do what their author meant.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

__all__ = ["RULES", "Finding", "Severity"]

Severity = Literal["error", "warning"]

RULES: Final[dict[str, tuple[Severity, str]]] = {
    "D001": ("error", "the flow does not load (Direktiv refuses it too)"),
    "D002": ("error", "a transition names a state that does not exist"),
    "D003": ("error", "an action calls a function that is not defined"),
    "D004": ("error", "a catch or retry pattern is not a valid (RE2) regular expression"),
    "D005": ("error", "a delay, timeout or duration is not an ISO-8601 duration"),
    "J101": ("error", "a jq( or js( without its closing )"),
    "J102": ("error", "a jq syntax error"),
    "J103": ("error", "a JavaScript syntax error in js(...)"),
    "J104": ("error", "js(...) needs the [js] extra, which is not installed"),
    "V201": ("error", "a transform that can never produce an object"),
    "V202": ("error", "a foreach array that can never be a list"),
    "V203": ("error", "a literal variable key that breaks the key rule"),
    "V204": ("error", "a literal files: entry that fails (key, scope, permissions, duplicate)"),
    "V205": ("error", "an unknown files[].type"),
    "V206": ("error", "a literal octet-stream value that is not base64"),
    "S301": ("warning", "a state no transition reaches"),
    "S302": ("warning", "a function no action calls"),
}
"""Every lint code: (severity, what it finds)."""


@dataclass(frozen=True, slots=True)
class Finding:
    """One lint finding: ``file:line:col: CODE message``."""

    file: str
    line: int
    column: int
    code: str
    message: str
    state: str | None = None

    @property
    def severity(self) -> Severity:
        """Return ``error`` or ``warning`` (from :data:`RULES`)."""
        return RULES[self.code][0]

    def __str__(self) -> str:
        """Return ``file:line:col: CODE message``."""
        where = f"state {self.state!r}: " if self.state else ""
        return f"{self.file}:{self.line}:{self.column}: {self.code} {where}{self.message}"
