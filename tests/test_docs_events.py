"""docs/events.md runs as a test: its ``python`` blocks are test modules that must pass."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

PAGE = Path(__file__).resolve().parent.parent / "docs" / "events.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.DOTALL | re.MULTILINE)
BLOCKS = [body for lang, body in FENCE.findall(PAGE.read_text()) if lang == "python"]


def test_the_events_page_has_a_worked_example() -> None:
    assert BLOCKS
    assert all("def test_" in body for body in BLOCKS)


def test_the_worked_example_passes(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(**{f"test_events_doc_{n}": body for n, body in enumerate(BLOCKS)})
    result = pytester.runpytest_inprocess("--strict-markers", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=sum(body.count("def test_") for body in BLOCKS))
