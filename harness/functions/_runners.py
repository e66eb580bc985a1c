"""Runners: play Direktiv's sidecar around one function call (semantics §5.5-§5.7, §6.2).

A runner creates the temp dir and writes the ``files:``, registers the action with a
:class:`~harness.sidecar.Sidecar`, sends the request, reads the response as the sidecar does,
collects ``out/``, and cleans up. Subclasses only say how the request reaches the function: a
URL, a WSGI app, an ASGI app or a Python callable.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final, TypedDict

from direktiv_sdk.engine.functions import FunctionCall, FunctionOutcome
from direktiv_sdk.engine.results import FileInfo
from direktiv_sdk.engine.results import VariableWrite as EngineWrite
from direktiv_sdk.errors import DirektivError, FlowError, FunctionUnreachableError
from harness.files._tempdir import check_file_types, collect_out, write_files
from harness.functions._diagnose import capture_logged_errors, unreachable_sidecar
from harness.sidecar import Sidecar
from harness.sidecar._action import ActionContext
from harness.sidecar._app import MAX_BODY

__all__ = [
    "CONTAINER_FAILED",
    "TIMEOUT_CODE",
    "TIMEOUT_MESSAGE",
    "TOO_LARGE",
    "CallRecord",
    "Response",
    "RunnerOptions",
    "SidecarRunner",
    "Unreachable",
    "read_capped",
]

TIMEOUT_CODE: Final = "direktiv.cancels.timeout.soft"
TIMEOUT_MESSAGE: Final = "operation timed out"
CONTAINER_FAILED: Final = "container failed"
TOO_LARGE: Final = "service response is too large"
ERROR_CODE_HEADER: Final = "Direktiv-ErrorCode"
ERROR_MESSAGE_HEADER: Final = "Direktiv-ErrorMessage"


@dataclass(frozen=True, slots=True)
class Response:
    """What came back from the function, as the sidecar reads it."""

    status: int
    headers: Mapping[str, str]
    """Case-insensitive (``httpx.Headers``)."""
    body: bytes | None
    """``None`` when the body is larger than the limit."""


class Unreachable(Exception):  # noqa: N818 - internal signal, never leaves this package
    """The request did not reach the function or got no HTTP answer."""


def read_capped(declared: str | None, chunks: Iterator[bytes], limit: int) -> bytes | None:
    """Return the body from ``chunks``, or ``None`` if it is (declared) longer than ``limit``."""
    if declared is not None and declared.strip().isdigit() and int(declared) > limit:
        return None
    parts: list[bytes] = []
    total = 0
    for chunk in chunks:
        total += len(chunk)
        if total > limit:
            return None
        parts.append(chunk)
    return b"".join(parts)


def interpret(response: Response) -> FunctionOutcome:
    """Turn a response into an outcome, in the order of semantics §5.6."""
    code = response.headers.get(ERROR_CODE_HEADER, "")
    message = response.headers.get(ERROR_MESSAGE_HEADER, "")
    if code:
        return FunctionOutcome(error_code=code, error_message=message)
    if response.body is None:
        return FunctionOutcome(crash=TOO_LARGE)
    if not 200 <= response.status < 300:
        return FunctionOutcome(error_code=CONTAINER_FAILED, error_message="")
    if message:
        return FunctionOutcome(crash=message)
    return FunctionOutcome(output=response.body)


@dataclass(slots=True)
class CallRecord:
    """Everything one :meth:`SidecarRunner.run` saw, for :func:`harness.call_function`."""

    outcome: FunctionOutcome
    context: ActionContext
    sidecar: Sidecar
    temp_dir: Path
    error: BaseException | None = None
    """The exception behind a crash or a ``container failed`` outcome, if there was one."""
    timed_out: bool = False
    files: tuple[FileInfo, ...] = ()
    """The ``files:`` entries written into the temp dir."""


class TimedOut:
    """What a runner's ``_send`` returns when its own wait for the function ran out of time."""


def _with_deadline(
    fn: Callable[[], Response | TimedOut], timeout: float, name: str
) -> Response | TimedOut:
    """Run ``fn`` in a thread and wait at most ``timeout`` seconds (the thread is abandoned)."""
    box: list[Response | TimedOut] = []
    failure: list[BaseException] = []
    done = threading.Event()

    def target() -> None:
        try:
            box.append(fn())
        except BaseException as exc:  # handed over to the waiting thread
            failure.append(exc)
        finally:
            done.set()

    threading.Thread(target=target, name=name, daemon=True).start()
    if not done.wait(None if math.isinf(timeout) else max(timeout, 0.0)):
        return TimedOut()
    if failure:
        raise failure[0]
    return box[0]


class RunnerOptions(TypedDict, total=False):
    """The keyword options every runner takes (see :class:`SidecarRunner`)."""

    sidecar: Sidecar | None
    temp_root: str | os.PathLike[str] | None
    keep_tempdir: bool
    max_response: int
    max_extract_size: int | None
    raise_errors: bool


class SidecarRunner(ABC):
    """Base of the runners: everything Direktiv's sidecar does around a call.

    Args:
        sidecar: The sidecar whose ``/var`` and ``/log`` the function reaches; by default this
            process's :meth:`Sidecar.shared`, on a free port and behind the front door on
            ``localhost:8889`` (``$DIREKTIV_SIDECAR_PORT``), so hard-coded addresses work.
        temp_root: Folder in which each call gets ``<temp_root>/<action id>``; by default a
            fresh system temp folder per call. Share it with a container as a volume.
        keep_tempdir: Leave the temp dir in place after the call (for debugging).
        max_response: The largest response body accepted (128 MiB, as Direktiv).
        max_extract_size: The most bytes a ``tar``/``tar.gz`` ``files:`` entry may unpack to;
            ``None`` (the default): no cap, as in Direktiv (docs/security.md).
        raise_errors: Let :meth:`call` raise the exception behind a crash or a
            ``container failed`` outcome instead of returning the outcome.
    """

    def __init__(
        self,
        *,
        sidecar: Sidecar | None = None,
        temp_root: str | os.PathLike[str] | None = None,
        keep_tempdir: bool = False,
        max_response: int = MAX_BODY,
        max_extract_size: int | None = None,
        raise_errors: bool = False,
    ) -> None:
        if sidecar is not None and not isinstance(sidecar, Sidecar):
            raise TypeError(f"sidecar must be a Sidecar, not {type(sidecar).__name__}")
        self._sidecar = sidecar
        self._sidecar_lock = threading.Lock()
        self.temp_root = None if temp_root is None else Path(temp_root)
        self.keep_tempdir = keep_tempdir
        self.max_response = max_response
        self.max_extract_size = max_extract_size
        self.raise_errors = raise_errors

    @property
    def sidecar(self) -> Sidecar:
        """Return the sidecar this runner registers its actions with (created on first use)."""
        with self._sidecar_lock:
            if self._sidecar is None:
                self._sidecar = self._default_sidecar()
            return self._sidecar

    def _default_sidecar(self) -> Sidecar:
        return Sidecar.shared()

    def call(self, call: FunctionCall) -> FunctionOutcome:
        """Run ``call`` and return its outcome (see :meth:`run`)."""
        record = self.run(call)
        if self.raise_errors and record.error is not None:
            raise record.error
        return record.outcome

    def run(self, call: FunctionCall) -> CallRecord:
        """Run ``call`` as Direktiv's sidecar would and return all that happened.

        Raises:
            InvalidFileTypeError: A ``files:`` entry has an unknown type (catchable).
            InvalidOwnerError: The call's namespace, workflow or instance is malformed.
        """
        if not isinstance(call, FunctionCall):
            raise TypeError(f"call must be a FunctionCall, not {type(call).__name__}")
        check_file_types(call.files)
        context = ActionContext(
            call.store,
            namespace=call.namespace,
            workflow=call.workflow,
            instance=call.instance,
            log=call.log,
            aid=call.action_id,
        )
        sidecar = self.sidecar
        temp_dir = self._make_temp_dir(context.aid)
        record = CallRecord(FunctionOutcome(), context, sidecar, temp_dir)
        sidecar.register(context)
        try:
            self._run(call, record)
        finally:
            sidecar.unregister(context)
            if not self.keep_tempdir:
                shutil.rmtree(temp_dir, ignore_errors=True)
        # What the trace shows of the call: the files given, the variables set.
        writes = tuple(
            EngineWrite(w.scope.value, w.key, w.data, w.mime_type, w.via) for w in context.writes
        )
        record.outcome = replace(record.outcome, files=record.files, writes=writes)
        return record

    def _make_temp_dir(self, aid: str) -> Path:
        # Private (0700) from the start: mkdtemp and mkdir create it with that mode in one
        # step, so no other user can plant anything in it (docs/security.md).
        if self.temp_root is None:
            return Path(tempfile.mkdtemp(prefix="direktiv-action-"))
        self.temp_root.mkdir(parents=True, exist_ok=True)
        path = self.temp_root / aid
        path.mkdir(mode=0o700)
        return path

    def _run(self, call: FunctionCall, record: CallRecord) -> None:
        temp_dir, context = record.temp_dir, record.context
        try:
            record.files = write_files(
                call.files, temp_dir, context, call.root, max_extract_size=self.max_extract_size
            )
        except FlowError:
            raise
        except DirektivError as exc:
            record.outcome, record.error = FunctionOutcome(crash=str(exc)), exc
            return
        headers = {
            "Direktiv-ActionID": context.aid,
            "Direktiv-Iterator": str(call.iterator),
            "Direktiv-TempDir": str(temp_dir),
            "Content-Type": "application/json",
        }
        logged: list[BaseException] = []

        def send() -> Response | TimedOut:
            with capture_logged_errors() as errors:
                try:
                    return self._send(call, headers, record)
                finally:
                    logged.extend(errors)

        try:
            response = _with_deadline(send, call.timeout, f"direktiv-function-{context.aid}")
        except Unreachable as exc:
            error = FunctionUnreachableError(self.describe(), str(exc))
            record.outcome, record.error = FunctionOutcome(crash=str(error)), error
            return
        except Exception as exc:  # a crashing server answers 500: so do we
            record.outcome, record.error = FunctionOutcome(error_code=CONTAINER_FAILED), exc
        else:
            if isinstance(response, TimedOut):
                record.timed_out = True
                record.outcome = FunctionOutcome(
                    error_code=TIMEOUT_CODE, error_message=TIMEOUT_MESSAGE
                )
                self._cancel(context.aid)
                return
            record.outcome = interpret(response)
        try:
            collect_out(temp_dir, context)
        except DirektivError as exc:
            record.outcome, record.error = FunctionOutcome(crash=str(exc)), exc
            return
        if not isinstance(record.error, DirektivError):
            # A function's own error code is an answer; only a crash or a failed container
            # may be a sidecar it could not reach.
            outcome = record.outcome
            failed = bool(outcome.crash) or outcome.error_code == CONTAINER_FAILED
            seen = [record.error, *logged] if record.error is not None else logged
            diagnosis = unreachable_sidecar(record.sidecar, seen, failed)
            if diagnosis is not None:
                record.error = diagnosis

    @abstractmethod
    def _send(
        self, call: FunctionCall, headers: dict[str, str], record: CallRecord
    ) -> Response | TimedOut:
        """Deliver the request; raise :class:`Unreachable` when there is no HTTP answer."""

    def _cancel(self, aid: str) -> None:  # noqa: B027 - optional hook
        """Ask the function to stop after a timeout (``DELETE`` with the action id)."""

    @abstractmethod
    def describe(self) -> str:
        """Return what the runner calls, for messages."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; the runner is unusable afterwards."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.describe()})"
