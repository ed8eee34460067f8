"""Score: tests to problems and points, the late policy, and what students may see.

A problem earns its points times the passed share of its tests' weights. A run flagged as
tampered earns nothing. Written problems are reported as pending staff grading. Hidden tests
show their pass/fail and, for failures, only what the student's own code said (its exception,
a timeout, a crash) — never an assertion, which could quote an expected value.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field

from ..config import LatePolicy, ProblemKind
from ..course import Unit
from ..report import ProblemSummary, SessionReport, TestResult, summarize
from .collect import Collected
from .results import Results, TestCase

HIDDEN_WRONG = "wrong answer (this is a hidden test: its inputs and expected values stay private)"


@dataclass
class Scored:
    unit: str
    problems: list[ProblemSummary]
    tests: list[TestResult]
    late_factor: float
    days_late: int
    tampered: bool
    anomalies: list[str] = field(default_factory=list)
    execution_time: float = 0.0

    @property
    def raw(self) -> float:
        return round(sum(p.earned for p in self.problems), 4)

    @property
    def score(self) -> float:
        return 0.0 if self.tampered else round(self.raw * self.late_factor, 4)

    @property
    def possible(self) -> float:
        return sum(p.points for p in self.problems)


def late_factor(policy: LatePolicy, due: dt.datetime | None, submitted: dt.datetime | None) -> tuple[float, int]:
    """(multiplier, days late): on time until due + grace, then a penalty per started day."""
    if due is None or submitted is None:
        return 1.0, 0
    late = submitted - due - dt.timedelta(minutes=policy.grace_minutes)
    if late <= dt.timedelta(0):
        return 1.0, 0
    days = math.ceil(late / dt.timedelta(days=1))
    if days > policy.max_days_late:
        return 0.0, days
    return max(0.0, 1.0 - policy.penalty_per_day * days), days


def score(unit: Unit, collected: Collected, *, submitted: dt.datetime | None, execution_time: float) -> Scored:
    tested = [p for p in unit.config.problems if p.kind is not ProblemKind.written]
    rows = summarize(SessionReport(tests=collected.tests), tested)
    if collected.tampered:
        rows = [row.model_copy(update={"earned": 0.0}) for row in rows]
    schedule = unit.course.config.units.get(unit.name)
    factor, days = late_factor(unit.course.config.late_policy, schedule.due if schedule else None, submitted)
    return Scored(unit.name, rows, collected.tests, factor, days, collected.tampered, collected.anomalies, execution_time)


def is_hidden(test: TestResult) -> bool:
    return test.nodeid.startswith("tests/hidden/")


def visible_output(test: TestResult) -> str:
    if test.outcome == "passed":
        return "passed"
    if not is_hidden(test) or test.origin in ("student", "sandbox"):
        return test.message or test.outcome or "failed"
    return HIDDEN_WRONG


def to_gradescope(unit: Unit, scored: Scored) -> Results:
    """Gradescope's results.json: one entry per test, written problems pending, a summary output."""
    points = {p.name: p for p in unit.config.problems}
    cases = []
    for index, problem in enumerate(unit.config.problems, start=1):
        mine = [t for t in scored.tests if t.problem == problem.name]
        weight = sum(t.weight for t in mine)
        if problem.kind is ProblemKind.written:
            cases.append(TestCase(name=f"{problem.name} (written)", number=f"{index}", score=0, max_score=0,
                                  output=f"pending: graded by staff ({problem.points:g} points)", tags=["written"]))
            continue
        for sub, test in enumerate(mine, start=1):
            share = points[problem.name].points * test.weight / weight if weight else 0.0
            earned = share if test.outcome == "passed" and not scored.tampered else 0.0
            cases.append(TestCase(
                name=f"{problem.name}: {test.nodeid.split('::')[-1]}" + (" (hidden)" if is_hidden(test) else ""),
                number=f"{index}.{sub}",
                score=earned,
                max_score=share,
                status="passed" if test.outcome == "passed" else "failed",
                output=visible_output(test),
                tags=[problem.name, "hidden" if is_hidden(test) else "public"],
                visibility="visible",
            ))
    return Results(
        score=scored.score,
        execution_time=round(scored.execution_time, 2),
        output=summary_text(scored),
        output_format="text",
        stdout_visibility="hidden",
        tests=cases,
        extra_data={"raw_score": scored.raw, "late_factor": scored.late_factor, "days_late": scored.days_late,
                    "tampered": scored.tampered, "anomalies": scored.anomalies},
    )


def summary_text(scored: Scored) -> str:
    """The one-screen summary: total, per-problem rows, late penalty, anomalies."""
    lines = [f"{scored.unit}: {scored.score:g} / {scored.possible:g} points"]
    for p in scored.problems:
        mark = "ok " if p.complete else "-- "
        lines.append(f"  {mark}{p.name:<28} {p.earned:>6g}/{p.points:<6g} {p.passed}/{p.total} tests")
    if scored.days_late:
        lines.append(f"  late by {scored.days_late} day(s): score x {scored.late_factor:g}")
    if scored.tampered:
        lines.append("  TAMPERING DETECTED: the run scores 0 and is flagged for staff review")
    lines += [f"  ! {a}" for a in scored.anomalies]
    return "\n".join(lines) + "\n"
