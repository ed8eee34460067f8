"""``handout verify``: prove a unit's handout right, three ways.

(a) the reference passes every public and hidden test (run from the staff tree);
(b) in the built handout every public test that maps to a problem fails on the stubs, and none
    errors at collection (a collection error would hide a test from the student's report);
(c) no solution text, hidden test or reference-only file appears in the handout (:mod:`.leaks`).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import ProblemKind
from ..course import Unit
from ..report import SessionReport
from ..runner import run_pytest
from .build import build
from .leaks import Leak, fingerprints, scan


@dataclass
class Verification:
    unit: str
    reference_passed: int = 0
    reference_total: int = 0
    reference_failures: list[str] = field(default_factory=list)
    stubs_failed: int = 0
    stubs_total: int = 0
    stubs_breaches: list[str] = field(default_factory=list)  # public tests that did not fail
    unmapped: list[str] = field(default_factory=list)  # tests without a known problem
    untested: list[str] = field(default_factory=list)  # code problems no test grades
    leaks: list[Leak] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (
            self.reference_total > 0
            and not self.reference_failures
            and self.stubs_total > 0
            and not self.stubs_breaches
            and not self.unmapped
            and not self.untested
            and not self.leaks
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "unit": self.unit,
            "ok": self.ok,
            "reference": {"passed": self.reference_passed, "total": self.reference_total, "failures": self.reference_failures},
            "stubs": {"failed": self.stubs_failed, "total": self.stubs_total, "breaches": self.stubs_breaches},
            "unmapped_tests": self.unmapped,
            "untested_problems": self.untested,
            "leaks": [leak.__dict__ for leak in self.leaks],
        }


def verify(unit: Unit, *, workers: int | str = "auto", keep: Path | None = None) -> Verification:
    """Run all three checks on ``unit``; builds go to ``keep`` or a temporary folder."""
    result = Verification(unit.name)
    with tempfile.TemporaryDirectory(prefix=f"lmcourse-verify-{unit.name}-") as tmp:
        out = keep or Path(tmp)
        timeout = unit.limits.test_timeout_s
        staff = build(unit, out, solutions=True)
        paths = [p for p in ("tests/public", "tests/hidden") if (staff.folder / p).is_dir()]
        run = run_pytest(staff.folder, paths, workers=workers, timeout_s=timeout)
        _check_reference(unit, run.report, result)
        if not run.report.tests and run.returncode not in (0, 5):
            result.reference_failures.append(f"pytest could not run the tests: {_last_line(run.output)}")
        handout = build(unit, out)
        stubs = run_pytest(handout.folder, ["tests/public"], workers=workers, timeout_s=timeout).report
        _check_stubs(stubs, result)
        result.leaks = scan(handout.folder, fingerprints(unit), zip_path=handout.zip)
    return result


def _last_line(output: str) -> str:
    lines = [ln for ln in output.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "no output"


def _check_reference(unit: Unit, report: SessionReport, result: Verification) -> None:
    problems = {p.name for p in unit.config.problems}
    result.reference_total = len(report.tests)
    result.reference_passed = sum(t.outcome == "passed" for t in report.tests)
    result.reference_failures = [f"{t.nodeid}: {t.message or t.outcome}" for t in report.tests if t.outcome != "passed"]
    result.reference_failures += [f"{e.nodeid}: collection error: {e.message}" for e in report.collection_errors]
    result.unmapped = [t.nodeid for t in report.tests if t.problem not in problems]
    graded = {t.problem for t in report.tests}
    # Benchmark and leaderboard problems are graded by `lmcourse bench` and the leaderboard, not by tests.
    result.untested = [p.name for p in unit.config.problems if p.kind is ProblemKind.code and p.name not in graded]


def _check_stubs(report: SessionReport, result: Verification) -> None:
    mapped = [t for t in report.tests if t.problem is not None]
    result.stubs_total = len(mapped)
    result.stubs_failed = sum(t.outcome in ("failed", "error") for t in mapped)
    result.stubs_breaches = [f"{t.nodeid}: {t.outcome} on the stubs" for t in mapped if t.outcome not in ("failed", "error")]
    result.stubs_breaches += [f"{e.nodeid}: collection error: {e.message}" for e in report.collection_errors]
