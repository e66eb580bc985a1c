"""The typed model of a ``workflow/v1`` flow: frozen dataclasses built by the loader.

Every template field (``transform``, ``log``, a getter ``key``...) holds a compiled
:class:`~direktiv_sdk.expr.jx.Template`, so running a flow never parses YAML or compiles jq again.
Every object keeps the ``line`` it came from, for messages. Build a model with
:func:`direktiv_sdk.flow.loader.load_workflow`. This layer is pure data: it knows nothing of
stores, engines or functions (the engine's :class:`direktiv_sdk.engine.Workflow` adds ``run``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Final, Protocol

from direktiv_sdk.flow._duration import Duration
from direktiv_sdk.flow._findings import Finding

if TYPE_CHECKING:
    from jsonschema.protocols import Validator

    from direktiv_sdk.expr.gojson import JSON
    from direktiv_sdk.expr.jx import Template

__all__ = [
    "DEFAULT_RETRY_DELAY",
    "FILE_SCOPES",
    "FILE_TYPES",
    "FUNCTION_TYPES",
    "STATE_TYPES",
    "Action",
    "ActionFile",
    "ActionState",
    "Catch",
    "DelayState",
    "Duration",
    "ErrorState",
    "EventDef",
    "EventState",
    "ForeachState",
    "FunctionDef",
    "FunctionFile",
    "GetterState",
    "GetterVariable",
    "NoopState",
    "ParallelState",
    "Retries",
    "SetterState",
    "SetterVariable",
    "Start",
    "State",
    "SwitchCondition",
    "SwitchState",
    "Timeouts",
    "ValidateState",
    "Workflow",
    "file_mode",
]

STATE_TYPES: Final = (
    "action",
    "consumeEvent",
    "delay",
    "error",
    "eventsAnd",
    "eventsXor",
    "foreach",
    "generateEvent",
    "getter",
    "noop",
    "parallel",
    "setter",
    "switch",
    "validate",
)
"""Every state ``type`` the loader accepts (``eventAnd``/``eventXor`` are aliases)."""

FUNCTION_TYPES: Final = ("knative-workflow", "knative-namespace", "knative-system", "subflow")
"""Function ``type`` values (``reusable`` is an alias of ``knative-workflow``)."""

DEFAULT_RETRY_DELAY: Final = 5.0
"""Seconds between retries when ``retries.delay`` is absent."""


class ErrorPattern(Protocol):
    """A compiled error-code pattern (an RE2 regular expression)."""

    def search(self, text: str) -> object | None:
        """Return a match object when the pattern occurs anywhere in ``text``, else ``None``."""


def compile_pattern(pattern: str) -> ErrorPattern | None:
    """Return the regex Direktiv matches error codes with (``*`` means ``.*``), or ``None``.

    Direktiv uses Go's ``regexp``, which is RE2: so do we (``google-re2``), so that a pattern
    is valid, and matches, exactly when it would be and would in Direktiv. RE2 is imported
    here, by the first flow with a ``catch`` or ``retries`` pattern, not by every start.
    """
    import re2  # noqa: PLC0415

    options = re2.Options()
    options.log_errors = False  # an invalid pattern is our error to report, not RE2's log line
    try:
        return re2.compile(".*" if pattern == "*" else pattern, options)  # type: ignore[no-any-return]
    except re2.error:
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class Catch:
    """One ``catch`` entry: an unanchored regex on the error code and where to go."""

    error: str
    transition: str = ""
    line: int = 0
    pattern: ErrorPattern | None = field(default=None, repr=False, compare=False)
    """The compiled regex; ``None`` when ``error`` is not a valid regex (never matches)."""

    def matches(self, code: str) -> bool:
        """Return whether this entry catches an error with ``code``."""
        return self.pattern is not None and self.pattern.search(code) is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class Retries:
    """An action's ``retries`` policy."""

    max_attempts: int
    codes: tuple[str, ...]
    delay: Duration | None = None
    multiplier: float = 0.0
    line: int = 0
    patterns: tuple[ErrorPattern | None, ...] = field(default=(), repr=False, compare=False)

    def matches(self, code: str) -> bool:
        """Return whether an error with ``code`` may be retried."""
        return any(p is not None and p.search(code) is not None for p in self.patterns)

    def delay_seconds(self, retry: int, now: float) -> float:
        """Return how long to wait before retry number ``retry`` (0-based) starting at ``now``."""
        base = DEFAULT_RETRY_DELAY if self.delay is None else self.delay.total_seconds(now)
        if self.multiplier:
            return float(base * self.multiplier**retry)
        return base


@dataclass(frozen=True, slots=True, kw_only=True)
class ActionFile:
    """One ``files:`` entry of an action; every field is a string template (jqString)."""

    key: Template
    as_name: Template | None = None
    scope: Template | None = None
    type: Template | None = None
    permissions: Template | None = None
    raw_scope: str = ""
    """The scope exactly as written (decides whether the key must match the variable rule)."""
    line: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Action:
    """What an action, foreach or parallel branch calls, and how."""

    function: str
    input: Template | None = None
    """``None``: the function gets the whole instance data."""
    secrets: tuple[str, ...] = ()
    retries: Retries | None = None
    files: tuple[ActionFile, ...] = ()
    line: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class FunctionDef:
    """A ``functions:`` entry."""

    id: str
    type: str
    """One of :data:`FUNCTION_TYPES` (``reusable`` is stored as ``knative-workflow``)."""
    image: str = ""
    size: str = ""
    cmd: str = ""
    service: str = ""
    workflow: str = ""
    """For ``subflow`` functions: the child flow's path (relative to the caller's folder)."""
    envs: tuple[tuple[str, str], ...] = ()
    line: int = 0

    @property
    def is_subflow(self) -> bool:
        """Return whether calling this function starts a child instance."""
        return self.type == "subflow"


@dataclass(frozen=True, slots=True, kw_only=True)
class State:
    """Fields every state has; the subclasses add their own."""

    id: str
    type: str
    index: int
    line: int = 0
    log: Template | None = None
    metadata: Template | None = None
    catch: tuple[Catch, ...] = ()
    transform: Template | None = None
    """``None`` when absent, null, ``""`` or ``"."`` (the data is left as it is)."""
    transition: str = ""
    """The next state; ``""`` ends the flow."""
    transition_line: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class NoopState(State):
    """``noop``: only log, metadata, transform and transition."""


@dataclass(frozen=True, slots=True, kw_only=True)
class GetterVariable:
    """One variable a getter reads into ``.var``."""

    key: Template
    scope: str
    as_name: str = ""
    line: int = 0
    fixed_key: str | None = None
    """The key when it is written without ``jq(...)`` (already checked by the loader)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class GetterState(State):
    """``getter``: read variables into ``.var``."""

    variables: tuple[GetterVariable, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class SetterVariable:
    """One variable a setter writes (or deletes, when the value is null)."""

    key: Template
    scope: str
    value: Template
    mime_type: Template | None = None
    raw_mime_type: JSON = None
    """``mimeType`` as written in YAML: it decides how the value is encoded (§4.2 step 4)."""
    line: int = 0
    fixed_key: str | None = None
    """The key when it is written without ``jq(...)`` (already checked by the loader)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SetterState(State):
    """``setter``: write variables, all or nothing."""

    variables: tuple[SetterVariable, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class SwitchCondition:
    """One ``conditions:`` entry of a switch."""

    condition: Template
    transform: Template | None = None
    transition: str = ""
    line: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class SwitchState(State):
    """``switch``: the first true condition picks the transform and transition."""

    conditions: tuple[SwitchCondition, ...]
    default_transform: Template | None = None
    default_transition: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ErrorState(State):
    """``error``: set the instance error (Go format string ``message`` with ``args``)."""

    error: str
    message: Template
    args: tuple[Template, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ValidateState(State):
    """``validate``: check ``subject`` (default: the whole data) against a JSON Schema."""

    schema: JSON
    subject: Template | None = None
    validator: Validator | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class DelayState(State):
    """``delay``: wait ``duration`` on the clock."""

    duration: Duration


@dataclass(frozen=True, slots=True, kw_only=True)
class ActionState(State):
    """``action``: call one function (or subflow)."""

    action: Action
    timeout: Duration | None = None
    async_: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ForeachState(State):
    """``foreach``: call the action once per element of ``array`` (at most 3 at a time)."""

    array: Template
    action: Action
    timeout: Duration | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ParallelState(State):
    """``parallel``: call every action at once; ``mode`` is ``and`` or ``or``."""

    actions: tuple[Action, ...]
    mode: str = "and"
    timeout: Duration | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class EventState(State):
    """The base of the event states (their classes are in :mod:`direktiv_sdk.flow.events`)."""

    definition: JSON = None
    """The state's event fields as written (kept for tooling)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class EventDef:
    """An event a flow waits for or starts on: its ``type`` and ``context`` filter."""

    type: str
    context: tuple[tuple[str, Template], ...] = ()
    """The context values as templates (waiting states evaluate them on the data)."""
    raw_context: tuple[tuple[str, JSON], ...] = ()
    """The context values as written (start filters use them as they are)."""
    line: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Start:
    """The ``start:`` block."""

    type: str = "default"
    state: str = ""
    line: int = 0
    events: tuple[EventDef, ...] = ()
    """The events of an event-started flow (``event``: one; ``eventsAnd``/``eventsXor``: all)."""
    lifespan: str = ""
    """``eventsAnd``: how long a received event counts (ISO 8601, as written)."""

    @property
    def is_event_start(self) -> bool:
        """Return whether only events can start this flow."""
        return self.type in ("event", "eventsXor", "eventsAnd")


@dataclass(frozen=True, slots=True, kw_only=True)
class Timeouts:
    """``timeouts:``: the workflow's soft (interrupt) and hard (kill) limits."""

    interrupt: Duration | None = None
    kill: Duration | None = None

    def deadlines(self, start: float) -> tuple[float, float]:
        """Return the soft and hard deadlines of an instance started at ``start``."""
        soft = start + 15 * 60 if self.interrupt is None else self.interrupt.shift(start)
        hard = soft + 5 * 60 if self.kill is None else self.kill.shift(start)
        return soft, hard


@dataclass(frozen=True, slots=True, kw_only=True)
class Workflow:
    """A loaded flow: frozen, so any number of instances can run it."""

    states: tuple[State, ...]
    functions: tuple[FunctionDef, ...] = ()
    start: Start | None = None
    timeouts: Timeouts = field(default_factory=Timeouts)
    description: str = ""
    url: str = ""
    direktiv_api: str = ""
    file: str | None = None
    """The file the flow was loaded from (``None`` for YAML text)."""
    source: str = field(default="", repr=False)
    state_map: Mapping[str, State] = field(
        default_factory=lambda: MappingProxyType({}), repr=False, compare=False
    )
    function_map: Mapping[str, FunctionDef] = field(
        default_factory=lambda: MappingProxyType({}), repr=False, compare=False
    )
    findings: tuple[Finding, ...] = field(default=(), repr=False, compare=False)
    """Problems a lenient load deferred to run time (``direktiv-sdk lint`` reports them)."""

    @property
    def start_state(self) -> State:
        """Return the state an instance starts in (``start.state`` or the first state)."""
        if self.start is not None and self.start.state:
            return self.state_map[self.start.state]
        return self.states[0]

    def state(self, state_id: str) -> State:
        """Return the state with id ``state_id`` (``KeyError`` if there is none)."""
        return self.state_map[state_id]

    def function(self, function_id: str) -> FunctionDef:
        """Return the function with id ``function_id`` (``KeyError`` if there is none)."""
        return self.function_map[function_id]

    def used_functions(self) -> tuple[FunctionDef, ...]:
        """Return the functions that some action of this flow calls, in definition order."""
        used: set[str] = set()
        for state in self.states:
            if isinstance(state, ActionState | ForeachState):
                used.add(state.action.function)
            elif isinstance(state, ParallelState):
                used.update(action.function for action in state.actions)
        return tuple(f for f in self.functions if f.id in used)


FILE_SCOPES: Final = ("instance", "workflow", "namespace", "file")
"""Scopes a ``files:`` entry may read from (``file`` = the namespace file tree)."""

FILE_TYPES: Final = ("", "plain", "base64", "tar", "tar.gz")
"""How a ``files:`` entry is written into the temp dir (``""`` means ``plain``)."""


_GO_MODE_BITS: Final = ((1 << 23, 0o4000), (1 << 22, 0o2000), (1 << 20, 0o1000))
"""Go's ``os.ModeSetuid``, ``ModeSetgid`` and ``ModeSticky`` and the Unix bits they become."""


def file_mode(permissions: int) -> int:
    """Return the mode Go's ``os.Chmod(name, os.FileMode(permissions))`` sets (as the sidecar).

    Only the permission bits (``0o777``) count, plus Go's own setuid, setgid and sticky flags
    (bits 23, 22 and 20); Unix's ``0o7000`` bits mean nothing to Go: ``0o4777`` gives ``0o777``.
    """
    mode = permissions & 0o777
    for go_bit, unix_bit in _GO_MODE_BITS:
        if permissions & go_bit:
            mode |= unix_bit
    return mode


@dataclass(frozen=True, slots=True)
class FunctionFile:
    """One evaluated ``files:`` entry of an action."""

    key: str
    scope: str = "instance"
    as_name: str = ""
    """The file name in the temp dir; ``""`` means use :attr:`key`."""
    type: str = ""
    permissions: int | None = None
    """The parsed ``permissions`` (below 2**32, as Go's ``ParseUint(s, 8, 32)``), if given.

    What a written file gets is :func:`file_mode` of it.
    """

    def __post_init__(self) -> None:
        permissions = self.permissions
        if permissions is not None and (
            isinstance(permissions, bool)
            or not isinstance(permissions, int)
            or not 0 <= permissions < 2**32
        ):
            raise ValueError(
                f"invalid permissions {permissions!r}: use an octal mode below 0o40000000000, "
                "like 0o755"
            )

    @property
    def target(self) -> str:
        """Return the name the file gets inside the temp dir."""
        return self.as_name or self.key
