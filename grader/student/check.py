"""``lmcourse check``: run the public tests and report per problem."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import ProblemKind
from ..errors import LmcourseError
from ..handout.info import HandoutInfo
from ..report import CollectionError, ProblemSummary, summarize
from ..runner import run_pytest


@dataclass
class CheckResult:
    root: Path
    info: HandoutInfo
    problems: list[ProblemSummary]
    collection_errors: list[CollectionError] = field(default_factory=list)
    output: str = ""

    @property
    def ok(self) -> bool:
        return not self.collection_errors and all(p.complete for p in self.problems)

    @property
    def earned(self) -> float:
        return round(sum(p.earned for p in self.problems), 4)

    @property
    def possible(self) -> float:
        return sum(p.points for p in self.problems)

    def as_json(self) -> dict[str, Any]:
        return {
            "unit": self.info.unit,
            "ok": self.ok,
            "earned": self.earned,
            "possible": self.possible,
            "problems": [p.model_dump() for p in self.problems],
            "collection_errors": [e.model_dump() for e in self.collection_errors],
        }


def check(start: Path | None = None, *, problem: str | None = None, workers: int | str = "auto") -> CheckResult:
    """Run the handout's public tests (all, or one problem's) and summarize them per problem."""
    root, info = HandoutInfo.find(start)
    tested = [p for p in info.problems if p.kind is not ProblemKind.written]
    if problem is not None:
        if problem not in {p.name for p in tested}:
            names = ", ".join(p.name for p in tested)
            raise LmcourseError(f"'{problem}' is not a tested problem of {info.unit} (problems: {names}).")
        tested = [p for p in tested if p.name == problem]
    extra = ["--lmcourse-problem", problem] if problem else []
    run = run_pytest(root, ["tests/public"], workers=workers, timeout_s=info.test_timeout_s, extra=extra)
    if run.returncode not in (0, 1, 5) and not run.report.tests:
        raise LmcourseError(f"pytest could not run the tests (exit {run.returncode}): {_last_line(run.output)}")
    return CheckResult(root, info, summarize(run.report, tested), run.report.collection_errors, run.output)


def _last_line(output: str) -> str:
    lines = [ln for ln in output.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "no output"
