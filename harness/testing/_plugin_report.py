"""A failed test that used ``direktiv_run`` or ``direktiv_call`` gets a ``direktiv`` section.

It shows what the test's instances and calls did: each state with its input, logs, variables
and transform (the format of ``direktiv-sdk run --trace``), and each function call with its
outcome, error, log lines and the variables it wrote.
"""

from __future__ import annotations

import io
from collections.abc import Generator
from typing import TYPE_CHECKING, Final

import pytest

if TYPE_CHECKING:
    from direktiv_sdk.engine.interpreter import InstanceResult
    from harness.functions import CallResult

__all__ = ["format_results", "pytest_runtest_makereport"]

_FIXTURES: Final = ("direktiv_run", "direktiv_call")
_SHOWN: Final = 200
_MAX_RESULTS: Final = 20


def _short(data: bytes) -> str:
    text = data.decode("utf-8", "replace")
    return text if len(text) <= _SHOWN else f"{text[:_SHOWN]}... ({len(data)} bytes)"


def _call_block(result: CallResult, out: io.StringIO) -> None:
    out.write(f"call {result.action_id} (instance {result.instance})\n")
    if result.error_code:
        out.write(f"   error:     {result.error_code}: {result.error_message}\n")
    if result.crash:
        out.write(f"   crash:     {result.crash}\n")
    if result.error is not None:
        out.write(f"   cause:     {type(result.error).__name__}: {result.error}\n")
    if result.ok:
        out.write(f"   output:    {_short(result.output)}\n")
    for line in result.logs:
        out.write(f"   log:       {line}\n")
    for write in result.writes:
        mime = write.mime_type or '""'
        shown = _short(write.data)
        out.write(f"   set:       {write.scope} {write.key} = {shown} ({mime}, via {write.via})\n")
    for request in result.requests:
        out.write(
            f"   request:   {request.method} {request.path} {request.key} -> {request.status}\n"
        )


def format_results(results: list[CallResult | InstanceResult]) -> str:
    """Return the readable trace of a test's results (the last few)."""
    from direktiv_sdk.engine.tracing import result_block  # noqa: PLC0415 - for a failed test
    from harness.functions import CallResult  # noqa: PLC0415

    out = io.StringIO()
    shown = results[-_MAX_RESULTS:]
    if len(results) > len(shown):
        out.write(f"(the last {len(shown)} of {len(results)} results)\n")
    for result in shown:
        if isinstance(result, CallResult):
            _call_block(result, out)
        else:
            out.write("\n".join(result_block(result)) + "\n")
    return out.getvalue()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Add the trace of the test's instances and calls to the report of a failed test."""
    report = yield
    if report.failed and report.when in ("call", "teardown"):
        funcargs = getattr(item, "funcargs", {})
        results: list[CallResult | InstanceResult] = []
        seen: set[int] = set()
        for name in _FIXTURES:
            history = getattr(funcargs.get(name), "history", None)
            if isinstance(history, list) and id(history) not in seen:
                seen.add(id(history))
                results.extend(history)
        if results:
            report.sections.append(("direktiv trace", format_results(results)))
    return report
