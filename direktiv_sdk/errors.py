"""Every exception direktiv-sdk raises, in one module with one base.

The tree::

    DirektivError
    ├── StoreError                      a store operation failed (backend errors are chained)
    │   ├── InvalidKeyError             + ValueError: a key breaks Direktiv's variable-name rule
    │   ├── InvalidScopeError           + ValueError: not one of instance, workflow, namespace
    │   ├── InvalidOwnerError           + ValueError: bad namespace, workflow path or instance id
    │   ├── InvalidStoreURLError        + ValueError: unknown scheme, malformed URL, unknown option
    │   ├── InvalidMimeTypeError        + ValueError: a mime type too long to store
    │   ├── StoreNotFoundError          a read-only command named a store that does not exist
    │   ├── BackendNotInstalledError    + ImportError: the scheme's optional extra is missing
    │   ├── PreconditionFailedError     a create-only or compare-and-set write lost
    │   └── UnsupportedOperationError   the backend cannot honour a requested condition
    ├── ConfigError                     + ValueError: [tool.direktiv-sdk] in pyproject.toml is wrong
    ├── ShadowedPackageError            + ImportError: a user's folder hides harness or backends
    ├── WorkflowLoadError               + ValueError: a flow file does not load (file, line, state)
    ├── TemplateSyntaxError             + ValueError: a jq(...)/js(...) template does not compile
    ├── NestingTooDeepError             + ValueError: JSON nested deeper than MAX_DEPTH levels
    ├── JqWorkerError                   a jq worker process failed (becomes a flow error)
    │   ├── WorkerLimitError            a program hit a memory or depth limit
    │   │   └── WorkerTimeoutError      a program ran out of time (`context deadline exceeded`)
    │   └── WorkerCrashedError          the worker process died
    ├── FlowError                       a running instance raised a Direktiv error code
    │   ├── CatchableError              a `catch` block may handle it
    │   └── UncatchableError            ends the instance regardless of `catch`
    │       └── InternalError           the instance crashes (`direktiv.internal.error`)
    ├── CloudEventError                 + ValueError: an event is malformed (names the attribute)
    ├── NamespaceError                  a namespace session refused a request
    │   ├── InstanceNotFoundError       + LookupError: no instance with that id
    │   ├── WorkflowNotFoundError       + LookupError: no flow file at that path
    │   ├── NamespaceLimitError         too many pending instances, or the session is closed
    │   └── WaitTimeoutError            + TimeoutError: an instance did not end in time
    └── HarnessError                    the local sidecar, temp dir or function call failed
        ├── ArchiveError                + ValueError: an archive is corrupt or hostile
        ├── PathEscapeError             + ValueError: a path would leave its folder
        ├── BodyTooLargeError           + ValueError: a body exceeds the 128 MiB limit
        ├── FunctionNotMappedError      + LookupError: a flow calls a function with no target
        ├── FileEntryError              + ValueError: a `files:` entry cannot be written
        ├── InvalidFileTypeError        + CatchableError, ValueError: `direktiv.var.invalidType`
        ├── OutFolderError              + ValueError: an `out/` entry cannot become a variable
        ├── SidecarAddressError         + ValueError: the sidecar would listen beyond loopback
        ├── PortInUseError              + OSError: the sidecar's port is taken
        ├── SidecarResponseError        the sidecar refused a `/var` or `/log` request
        ├── InvalidTargetError          + TypeError, ValueError: not a URL, app or callable
        ├── FunctionUnreachableError    + ConnectionError: no answer from a URL target
        ├── SidecarUnreachableError     + ConnectionError: the function could not reach its sidecar
        └── FunctionError               raised by a Python function to report an error code

Messages are built here, in one place, and are part of the API: tests match them.
"""

from __future__ import annotations

__all__ = [
    "ArchiveError",
    "BackendNotInstalledError",
    "BodyTooLargeError",
    "CatchableError",
    "CloudEventError",
    "ConfigError",
    "DirektivError",
    "FileEntryError",
    "FlowError",
    "FunctionError",
    "FunctionNotMappedError",
    "FunctionUnreachableError",
    "HarnessError",
    "InstanceNotFoundError",
    "InternalError",
    "InvalidFileTypeError",
    "InvalidKeyError",
    "InvalidMimeTypeError",
    "InvalidOwnerError",
    "InvalidScopeError",
    "InvalidStoreURLError",
    "InvalidTargetError",
    "JqWorkerError",
    "NamespaceError",
    "NamespaceLimitError",
    "NestingTooDeepError",
    "OutFolderError",
    "PathEscapeError",
    "PortInUseError",
    "PreconditionFailedError",
    "ShadowedPackageError",
    "SidecarAddressError",
    "SidecarResponseError",
    "SidecarUnreachableError",
    "StoreError",
    "StoreNotFoundError",
    "TemplateSyntaxError",
    "UncatchableError",
    "UnsupportedOperationError",
    "WaitTimeoutError",
    "WorkerCrashedError",
    "WorkerLimitError",
    "WorkerTimeoutError",
    "WorkflowLoadError",
    "WorkflowNotFoundError",
]

KEY_RULE = "a letter first, then letters, digits, '_', '-' or '.', ending in a letter or digit"


class DirektivError(Exception):
    """Base of every error raised by direktiv-sdk."""


# --------------------------------------------------------------------------- store


class StoreError(DirektivError):
    """A variable store operation failed; backend errors are chained as ``__cause__``."""


class InvalidKeyError(StoreError, ValueError):
    """A variable key does not match Direktiv's variable-name rule."""

    def __init__(self, key: object, pattern: str) -> None:
        self.key = key
        self.pattern = pattern
        super().__init__(f"invalid variable key {key!r}: keys must match {pattern} ({KEY_RULE})")


class InvalidScopeError(StoreError, ValueError):
    """A scope is not one of the scopes the operation accepts."""

    def __init__(self, scope: object, allowed: tuple[str, ...]) -> None:
        self.scope = scope
        self.allowed = allowed
        super().__init__(f"invalid scope {scope!r}: use one of {', '.join(allowed)}")


class InvalidOwnerError(StoreError, ValueError):
    """A namespace, workflow path or instance id could address another owner's data."""

    def __init__(self, field: str, value: object, rule: str) -> None:
        self.field = field
        self.value = value
        self.rule = rule
        super().__init__(f"invalid {field} {value!r}: {rule}")


class InvalidStoreURLError(StoreError, ValueError):
    """A store URL or option cannot be used to open a store."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"cannot open store {url!r}: {reason}")


class InvalidMimeTypeError(StoreError, ValueError):
    """A mime type is longer than a store keeps (RFC 6838: 127 + '/' + 127, plus parameters)."""

    def __init__(self, mime_type: str, limit: int) -> None:
        self.mime_type = mime_type
        self.limit = limit
        shown = mime_type if len(mime_type) <= 60 else mime_type[:60] + "..."
        super().__init__(
            f"mime type {shown!r} is {len(mime_type)} characters long; "
            f"use at most {limit} (like application/json)"
        )


class StoreNotFoundError(StoreError):
    """A command that only reads was pointed at a store that does not exist."""

    def __init__(self, location: str) -> None:
        self.location = location
        super().__init__(f"no store at {location} (create it with `vars set` or pass --create)")


class BackendNotInstalledError(StoreError, ImportError):
    """The backend for a URL scheme needs an optional extra that is not installed."""

    def __init__(self, scheme: str, hint: str) -> None:
        self.scheme = scheme
        self.hint = hint
        super().__init__(f"the {scheme!r} store backend is not installed: {hint}")


class PreconditionFailedError(StoreError):
    """A create-only or compare-and-set write (or conditional delete) lost to another writer."""

    def __init__(self, ref: object, reason: str) -> None:
        self.ref = ref
        self.reason = reason
        super().__init__(f"precondition failed for {ref}: {reason}")


class UnsupportedOperationError(StoreError):
    """The backend cannot perform the requested operation or condition."""

    def __init__(self, backend: str, operation: str) -> None:
        self.backend = backend
        self.operation = operation
        super().__init__(f"{backend} does not support {operation}")


# --------------------------------------------------------------------------- flows


class ConfigError(DirektivError, ValueError):
    """The project config (``[tool.direktiv-sdk]`` in ``pyproject.toml``) cannot be used."""

    def __init__(self, file: str, reason: str) -> None:
        self.file = file
        self.reason = reason
        super().__init__(f"{file}: [tool.direktiv-sdk]: {reason}")


class WorkflowLoadError(DirektivError, ValueError):
    """A flow file does not load; the message names the file, the line and the state."""

    def __init__(
        self,
        detail: str,
        *,
        file: str | None = None,
        line: int | None = None,
        state: str | None = None,
        rule: str = "D001",
        column: int | None = None,
    ) -> None:
        self.detail = detail
        self.file = file
        self.line = line
        self.state = state
        self.rule = rule
        """The ``direktiv-sdk lint`` code of the problem (docs/lint.md)."""
        self.column = column
        where = file or "<workflow>"
        if line is not None:
            where = f"{where}:{line}"
        prefix = f"state {state!r}: " if state is not None else ""
        super().__init__(f"{where}: {prefix}{detail}")


class TemplateSyntaxError(DirektivError, ValueError):
    """A ``jq(...)``/``js(...)`` template cannot be compiled (raised when the flow loads).

    ``detail`` is the whole message, starting with the ``error in 'key': `` /
    ``error in element <i>: `` prefixes of the value's position (built by
    :mod:`direktiv_sdk.expr.jx`); ``expression`` is the offending jq program, string or value.
    """

    def __init__(self, detail: str, expression: str, *, rule: str = "D001") -> None:
        self.detail = detail
        self.expression = expression
        self.rule = rule
        """The ``direktiv-sdk lint`` code of the problem (docs/lint.md)."""
        super().__init__(detail)


class NestingTooDeepError(DirektivError, ValueError):
    """A JSON value nests deeper than the SDK's limit (``limit`` levels, at ``offset``)."""

    def __init__(self, limit: int, offset: int) -> None:
        self.limit = limit
        self.offset = offset
        super().__init__(
            f"the JSON value is nested deeper than {limit} levels (at character {offset}); "
            "flatten it"
        )


class JqWorkerError(DirektivError):
    """A jq program running in a worker process failed; the engine makes it a flow error."""


class WorkerLimitError(JqWorkerError):
    """An evaluation hit a limit; the message says which, in gojq's words where it has some."""


class WorkerTimeoutError(WorkerLimitError):
    """The evaluation ran out of its time (``context deadline exceeded``)."""


class WorkerCrashedError(JqWorkerError):
    """The worker process died during an evaluation (a signal or an exit status)."""


class FlowError(DirektivError):
    """An error with a Direktiv error code raised while an instance runs."""

    catchable: bool = False

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}" if message else code)


class CatchableError(FlowError):
    """A Direktiv error that a state's ``catch`` list may handle."""

    catchable = True


class UncatchableError(FlowError):
    """A Direktiv error that ends the instance whatever its ``catch`` list says."""


class InternalError(UncatchableError):
    """An internal failure: the instance ends with status ``crashed``."""

    def __init__(self, message: str = "an internal error occurred") -> None:
        super().__init__("direktiv.internal.error", message)


# --------------------------------------------------------------------------- events, namespaces


class CloudEventError(DirektivError, ValueError):
    """A CloudEvent is malformed; ``attribute`` names the missing or bad attribute."""

    def __init__(self, attribute: str, detail: str) -> None:
        self.attribute = attribute
        self.detail = detail
        super().__init__(f"invalid CloudEvent ({attribute}): {detail}")


class NamespaceError(DirektivError):
    """A namespace session refused a request."""


class InstanceNotFoundError(NamespaceError, LookupError):
    """No instance of the session has this id."""

    def __init__(self, instance_id: str) -> None:
        self.instance_id = instance_id
        super().__init__(f"no instance {instance_id!r} in this namespace session")


class WorkflowNotFoundError(NamespaceError, LookupError):
    """No flow file exists at the workflow path."""

    def __init__(self, path: str, root: str) -> None:
        self.path = path
        super().__init__(f"workflow not found: {path} (no such file under {root})")


class NamespaceLimitError(NamespaceError):
    """The session cannot take another instance (its cap, or it is closed)."""


class WaitTimeoutError(NamespaceError, TimeoutError):
    """An instance (or the whole session) did not finish within the time allowed."""


# --------------------------------------------------------------------------- harness


class HarnessError(DirektivError):
    """The local sidecar, the temp dir handling or a function call failed."""


class ArchiveError(HarnessError, ValueError):
    """A variable that should be a tar or tar.gz archive is corrupt or hostile."""

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = reason
        super().__init__(f"cannot unpack {name!r}: {reason}")


class PathEscapeError(HarnessError, ValueError):
    """A path would leave the folder it must stay in."""

    def __init__(self, path: str, root: str) -> None:
        self.path = path
        self.root = root
        super().__init__(f"path {path!r} escapes {root!r}: keep it inside that folder")


class BodyTooLargeError(HarnessError, ValueError):
    """A request or response body is larger than the sidecar accepts."""

    def __init__(self, what: str, size: int, limit: int) -> None:
        self.what = what
        self.size = size
        self.limit = limit
        super().__init__(f"{what} of {size} bytes exceeds the limit of {limit} bytes")


class FunctionNotMappedError(HarnessError, LookupError):
    """A flow calls a function id that has no target (URL, app or callable)."""

    def __init__(self, function_id: str) -> None:
        self.function_id = function_id
        super().__init__(
            f"function {function_id!r} has no target: map it with --function "
            f"{function_id}=URL or functions={{{function_id!r}: ...}}"
        )


class FileEntryError(HarnessError, ValueError):
    """A ``files:`` entry of an action cannot be written into the temp dir."""

    def __init__(self, target: str, reason: str) -> None:
        self.target = target
        self.reason = reason
        super().__init__(f"cannot write files: entry {target!r}: {reason}")


class InvalidFileTypeError(CatchableError, HarnessError, ValueError):
    """A ``files:`` entry names an unknown ``type`` (catchable ``direktiv.var.invalidType``)."""

    def __init__(self, index: int, file_type: object) -> None:
        self.index = index
        self.file_type = file_type
        super().__init__(
            "direktiv.var.invalidType",
            f"invalid 'type' for function file {index}: {file_type!r}; "
            "use '', 'plain', 'base64', 'tar' or 'tar.gz'",
        )


class OutFolderError(HarnessError, ValueError):
    """An entry of the action's ``out/`` folders cannot be created or stored as a variable."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"cannot collect {path!r}: {reason}")


class SidecarAddressError(HarnessError, ValueError):
    """The sidecar was asked to listen on an address other machines can reach."""

    def __init__(self, host: str) -> None:
        self.host = host
        super().__init__(
            f"refusing to bind the sidecar to {host!r}: it serves variables without "
            "authentication; use 127.0.0.1 or pass allow_remote=True"
        )


class PortInUseError(HarnessError, OSError):
    """The sidecar cannot listen on its port because something else already does."""

    def __init__(self, host: str, port: int, reason: str) -> None:
        self.host = host
        self.port = port
        self.reason = reason
        super().__init__(
            f"cannot listen on {host}:{port} ({reason}): stop what uses that port "
            "or pass port=0 for a free one"
        )


class SidecarResponseError(HarnessError):
    """The sidecar answered a ``/var`` or ``/log`` request with an error status."""

    def __init__(self, method: str, path: str, status: int, text: str) -> None:
        self.method = method
        self.path = path
        self.status = status
        self.text = text
        super().__init__(f"the sidecar answered {status} to {method} {path}: {text!r}")


class InvalidTargetError(HarnessError, TypeError, ValueError):
    """A function target is not an HTTP URL, a WSGI/ASGI app, a callable or a runner."""

    def __init__(self, function_id: str, target: object, reason: str) -> None:
        self.function_id = function_id
        self.target = target
        self.reason = reason
        super().__init__(f"cannot call function {function_id!r} through {target!r}: {reason}")


class FunctionUnreachableError(HarnessError, ConnectionError):
    """A URL function target did not answer (refused, reset, or not HTTP)."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(
            f"cannot reach the function at {url!r} ({reason}): start it or fix the URL"
        )


class SidecarUnreachableError(HarnessError, ConnectionError):
    """The function could not connect to its sidecar, so the call failed."""

    def __init__(self, where: str, reason: str, hint: str) -> None:
        self.where = where
        self.reason = reason
        self.hint = hint
        super().__init__(f"the function could not reach the sidecar at {where} ({reason}): {hint}")


class ShadowedPackageError(DirektivError, ImportError):
    """A folder of the user's project is imported instead of one of direktiv-sdk's packages."""

    def __init__(self, package: str, found: str, expected: str) -> None:
        self.package = package
        self.found = found
        self.expected = expected
        super().__init__(
            f"the package {package!r} is {found!r}, not direktiv-sdk's {expected!r}: a folder of "
            f"that name earlier on sys.path shadows it; rename your folder, or run pytest with "
            "--import-mode=importlib (and not as 'python -m pytest', which puts the current "
            "folder first on sys.path)"
        )


class FunctionError(HarnessError):
    """Raise this from a Python function target to report a Direktiv error code.

    The call then ends like a container answering with ``Direktiv-ErrorCode: <code>`` and
    ``Direktiv-ErrorMessage: <message>``: a catchable error of the calling state.
    """

    def __init__(self, code: str, message: str = "") -> None:
        if not isinstance(code, str) or not code:
            raise ValueError(f"invalid error code {code!r}: pass a non-empty string")
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}" if message else code)
