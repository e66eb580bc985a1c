"""Function calls: targets (URL, WSGI, ASGI, callable), runners, and :func:`call_function`."""

from __future__ import annotations

from harness.functions._call import (
    CONTAINER_FAILED,
    TIMEOUT_CODE,
    TIMEOUT_MESSAGE,
    TOO_LARGE,
    ASGIRunner,
    CallableRunner,
    CallResult,
    SidecarRunner,
    URLRunner,
    WSGIRunner,
    adapt_target,
    call_function,
    decode_output,
    function_file,
    make_runner,
)

__all__ = [
    "CONTAINER_FAILED",
    "TIMEOUT_CODE",
    "TIMEOUT_MESSAGE",
    "TOO_LARGE",
    "ASGIRunner",
    "CallResult",
    "CallableRunner",
    "SidecarRunner",
    "URLRunner",
    "WSGIRunner",
    "adapt_target",
    "call_function",
    "decode_output",
    "function_file",
    "make_runner",
]
