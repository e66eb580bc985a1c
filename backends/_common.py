"""Helpers every backend shares: option checks, timestamps, version tokens, condition errors.

Backends build their :class:`~direktiv_sdk.errors.PreconditionFailedError` through the
``precondition_*`` functions here so that every store reports a lost condition with the same
message (the conformance suite matches them).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Final

from direktiv_sdk.errors import InvalidStoreURLError, PreconditionFailedError
from direktiv_sdk.store import Owner, VariableRef

__all__ = [
    "check_options",
    "new_version",
    "owner_prefix",
    "precondition_exists",
    "precondition_missing",
    "precondition_stale",
    "unique_now",
]

_ONE_MICROSECOND: Final = timedelta(microseconds=1)
_clock_lock = threading.Lock()
_last_stamp = datetime.min.replace(tzinfo=UTC)


def unique_now() -> datetime:
    """Return the current UTC time, strictly later than any earlier call in this process.

    Timestamps are stored with microsecond precision; two variables created in the same
    microsecond would otherwise list in key order instead of creation order.
    """
    global _last_stamp  # noqa: PLW0603 - one process-wide clock, guarded by _clock_lock
    now = datetime.now(UTC)
    with _clock_lock:
        if now <= _last_stamp:
            now = _last_stamp + _ONE_MICROSECOND
        _last_stamp = now
    return now


def new_version() -> str:
    """Return a fresh, opaque version token (16 hex digits, unique across processes)."""
    return os.urandom(8).hex()


@lru_cache(maxsize=4096)
def owner_prefix(owner: Owner) -> str:
    """Return the owner's folder relative to the store root: ``ns/workflow/%2Fa.yaml``."""
    return "/".join(owner.segments)


def check_options(url: str, options: Mapping[str, object], accepted: Iterable[str]) -> None:
    """Raise :class:`InvalidStoreURLError` naming the first option not in ``accepted``."""
    allowed = sorted(accepted)
    for name in options:
        if name not in allowed:
            listed = ", ".join(allowed) if allowed else "none"
            raise InvalidStoreURLError(url, f"unknown option {name!r}; accepted options: {listed}")


def precondition_exists(ref: VariableRef) -> PreconditionFailedError:
    """Return the error for a create-only write to an existing variable."""
    return PreconditionFailedError(ref, "it already exists")


def precondition_missing(ref: VariableRef) -> PreconditionFailedError:
    """Return the error for a compare-and-set write or delete of a missing variable."""
    return PreconditionFailedError(ref, "it does not exist")


def precondition_stale(ref: VariableRef, expected: str) -> PreconditionFailedError:
    """Return the error for a compare-and-set whose expected version is no longer current."""
    return PreconditionFailedError(ref, f"its version is no longer {expected!r}")
