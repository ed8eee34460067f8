"""Public tests of fetch (the coroutine is driven by a producer)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests import producers

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


def store() -> dict[str, str]:
    return json.loads((FIXTURES / "numbers.json").read_text(encoding="utf-8"))["store"]


@pytest.mark.problem("fetch")
def test_fetch_present_keys(student):
    out = student.run(producers.fetch_outcomes, store=store(), keys=["gamma", "alpha"])
    assert out == [["ok", "third"], ["ok", "first"]]


@pytest.mark.problem("fetch")
def test_fetch_missing_key(student):
    assert student.run(producers.fetch_outcomes, store=store(), keys=["delta"]) == [["KeyError", None]]
    assert student.run(producers.fetch_outcomes, store=store(), keys=["delta"], default="?") == [["ok", "?"]]
    assert student.run(producers.fetch_outcomes, store=store(), keys=["delta"], default=None) == [["ok", None]]
