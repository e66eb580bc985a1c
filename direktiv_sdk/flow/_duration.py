"""ISO-8601 durations as Direktiv parses them (``github.com/senseyeio/duration``).

Only whole numbers are accepted (``PT1.5S`` is invalid), every part is optional (``P`` and
``PT`` are valid zero durations) and weeks may mix with other parts. Years and months are
calendar units: they are added to a point in time like Go's ``time.AddDate``.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

__all__ = ["Duration", "parse_duration"]

_PATTERN: Final = re.compile(
    r"^P(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+)S)?)?$"
)
_INT64_MAX: Final = 2**63 - 1


@dataclass(frozen=True, slots=True)
class Duration:
    """A parsed ISO-8601 duration."""

    text: str
    years: int = 0
    months: int = 0
    weeks: int = 0
    days: int = 0
    hours: int = 0
    minutes: int = 0
    seconds: int = 0

    def shift(self, start: float) -> float:
        """Return ``start`` (epoch seconds) moved forward by this duration."""
        fixed = (
            (self.weeks * 7 + self.days) * 86400 + self.hours * 3600 + self.minutes * 60
        ) + self.seconds
        if not self.years and not self.months:
            return start + fixed
        try:
            moment = datetime.fromtimestamp(start, UTC)
            month0 = moment.month - 1 + self.months
            year = moment.year + self.years + month0 // 12
            month = month0 % 12 + 1
            # Go's AddDate normalises an overflowing day (Jan 31 + 1 month = Mar 3).
            last = calendar.monthrange(year, month)[1]
            overflow = max(0, moment.day - last)
            moved = moment.replace(year=year, month=month, day=min(moment.day, last))
            moved += timedelta(days=overflow)
            return moved.timestamp() + fixed
        except (OverflowError, ValueError):
            return float("inf")

    def total_seconds(self, start: float) -> float:
        """Return the length of this duration in seconds when it starts at ``start``."""
        return self.shift(start) - start

    def __str__(self) -> str:
        return self.text


def parse_duration(text: object) -> Duration | None:
    """Return the :class:`Duration` ``text`` denotes, or ``None`` when it is not valid."""
    if not isinstance(text, str):
        return None
    match = _PATTERN.match(text)
    if match is None or "\n" in text:
        return None
    parts = {name: int(value) for name, value in match.groupdict().items() if value}
    if any(value > _INT64_MAX for value in parts.values()):
        return None
    return Duration(text, **parts)
