"""What a test session reports, and the per-problem view of it."""

from __future__ import annotations

from pydantic import BaseModel, Field

from .config import Problem

MESSAGE_CHARS = 200


def first_line(text: str) -> str:
    """The first non-empty line of ``text``, cut to a readable length."""
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    return line if len(line) <= MESSAGE_CHARS else line[: MESSAGE_CHARS - 3] + "..."


class TestResult(BaseModel):
    __test__ = False  # not a pytest test class

    nodeid: str
    problem: str | None = None
    weight: float = 1.0
    outcome: str | None = Field(None, description="passed, failed, error or skipped")
    duration: float = 0.0
    message: str = ""
    origin: str | None = Field(None, description="student, sandbox or test: who raised the failure")


class CollectionError(BaseModel):
    nodeid: str
    message: str


class SessionReport(BaseModel):
    tests: list[TestResult] = Field(default_factory=list)
    collection_errors: list[CollectionError] = Field(default_factory=list)
    expected: list[str] = Field(default_factory=list, description="Every test id collected, reported or not.")
    exit_status: int = 0


class ProblemSummary(BaseModel):
    name: str
    title: str = ""
    points: float
    earned: float
    passed: int
    total: int
    duration: float
    first_failure: str = ""

    @property
    def complete(self) -> bool:
        return self.total > 0 and self.passed == self.total


def summarize(report: SessionReport, problems: list[Problem]) -> list[ProblemSummary]:
    """Per problem: tests passed, points earned (passed share of the test weights), time."""
    rows = []
    for problem in problems:
        tests = [t for t in report.tests if t.problem == problem.name]
        weight = sum(t.weight for t in tests)
        passed = [t for t in tests if t.outcome == "passed"]
        share = sum(t.weight for t in passed) / weight if weight else 0.0
        failure = next((f"{t.nodeid.split('::')[-1]}: {t.message}" for t in tests if t.outcome != "passed"), "")
        rows.append(
            ProblemSummary(
                name=problem.name,
                title=problem.title,
                points=problem.points,
                earned=round(problem.points * share, 4),
                passed=len(passed),
                total=len(tests),
                duration=round(sum(t.duration for t in tests), 3),
                first_failure=failure,
            )
        )
    return rows
