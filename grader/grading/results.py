"""Gradescope's ``results.json``, as pydantic models of the whole format.

Field names and values follow the format course staff already use: a top-level ``score``
(overriding the sum of test scores), ``tests`` with per-test ``score``/``max_score``/``status``,
visibility per test and overall, output formats, and leaderboard entries.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Visibility(str, Enum):
    hidden = "hidden"
    after_due_date = "after_due_date"
    after_published = "after_published"
    visible = "visible"


class OutputFormat(str, Enum):
    text = "text"
    html = "html"
    simple_format = "simple_format"
    md = "md"
    ansi = "ansi"


class Status(str, Enum):
    passed = "passed"
    failed = "failed"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", use_enum_values=True)


class TestCase(_Model):
    __test__ = False  # not a pytest class

    name: str
    score: float | None = None
    max_score: float | None = None
    status: Status | None = None
    name_format: OutputFormat | None = None
    number: str | None = Field(None, description="Sort key, e.g. '1.2'.")
    output: str | None = None
    output_format: OutputFormat | None = None
    tags: list[str] | None = None
    visibility: Visibility | None = None
    extra_data: dict[str, Any] | None = None


class LeaderboardEntry(_Model):
    name: str
    value: float | str
    order: str | None = Field(None, pattern="^(asc|desc)$")


class Results(_Model):
    score: float | None = None
    execution_time: float | None = None
    output: str | None = None
    output_format: OutputFormat | None = None
    test_output_format: OutputFormat | None = None
    test_name_format: OutputFormat | None = None
    visibility: Visibility | None = None
    stdout_visibility: Visibility | None = None
    extra_data: dict[str, Any] | None = None
    tests: list[TestCase] = Field(default_factory=list)
    leaderboard: list[LeaderboardEntry] | None = None

    def to_json(self) -> str:
        return self.model_dump_json(indent=2, exclude_none=True) + "\n"
