"""How benchmark results enter a grading run: problem rows, Gradescope tests, leaderboard entries.

A benchmark problem has no pytest tests; its points come from its cases (each its weight's share,
times the fraction its time ratio earns). :func:`with_benchmarks` puts them into the scored run,
:func:`add_to_results` adds one Gradescope test per case and a leaderboard entry (ms, lower is
better) per case that ran clean.
"""

from __future__ import annotations

import dataclasses
import re

from ..config import UnitConfig
from ..grading.results import LeaderboardEntry, Results, Status, TestCase, Visibility
from ..grading.score import Scored
from .verdict import SUBMISSION, BenchResult, CaseResult


def with_benchmarks(scored: Scored, results: list[BenchResult]) -> Scored:
    """``scored`` with each benchmark problem's row computed from its cases, and their anomalies."""
    by_problem = {r.problem: r for r in results}
    rows = []
    for row in scored.problems:
        bench = by_problem.get(row.name)
        if bench is None:
            rows.append(row)
            continue
        clean = [c for c in bench.cases if c.verdict in ("full", "partial")]
        failure = next((f"{c.name}: {(c.anomalies + c.reasons)[0]}" for c in bench.cases if c.anomalies or c.reasons), "")
        rows.append(row.model_copy(update={
            "earned": 0.0 if scored.tampered else bench.earned,
            "passed": len(clean),
            "total": len(bench.cases),
            "first_failure": failure,
        }))
    anomalies = []
    for bench in results:  # the run's own anomalies once, then each case's
        anomalies += [f"{bench.problem}: {a}" for a in bench.anomalies]
        anomalies += [f"{bench.problem} {c.name}: {a}" for c in bench.cases for a in c.anomalies if a not in bench.anomalies]
    return dataclasses.replace(scored, problems=rows, anomalies=[*scored.anomalies, *anomalies])


def add_to_results(results: Results, config: UnitConfig, scored: Scored, benches: list[BenchResult]) -> Results:
    """``results`` with a test per benchmark case (numbered after its problem) and the leaderboard."""
    index = {p.name: i for i, p in enumerate(config.problems, start=1)}
    tests = list(results.tests)
    for bench in benches:
        tests += [
            case_test(bench, case, f"{index[bench.problem]}.{sub}", tampered=scored.tampered)
            for sub, case in enumerate(bench.cases, start=1)
        ]
    tests.sort(key=lambda t: [int(part) for part in re.findall(r"\d+", t.number or "0")])
    entries = [*(results.leaderboard or []), *leaderboard(benches)]
    return results.model_copy(update={"tests": tests, "leaderboard": entries or None})


def case_test(bench: BenchResult, case: CaseResult, number: str, *, tampered: bool = False) -> TestCase:
    return TestCase(
        name=f"{bench.problem}: {case.name} ({case.label})",
        number=number,
        score=0.0 if tampered else case.earned,
        max_score=round(case.points, 4),
        status=Status.passed if case.verdict in ("full", "partial") else Status.failed,
        output=describe(bench, case),
        tags=[bench.problem, "benchmark"],
        visibility=Visibility.visible,
        extra_data={"verdict": case.verdict, "ratio": case.ratio, "tflops": case.tflops, "floor_ms": case.floor_ms,
                    "times_ms": {name: s.median_ms for name, s in case.times.items()}},
    )


def describe(bench: BenchResult, case: CaseResult) -> str:
    """The case for a student: times, ratio and share of points, then every reason and anomaly."""
    lines = []
    ours = case.times.get(SUBMISSION)
    if ours is not None:
        lines.append(f"your time: {ours.median_ms:.3f} ms (median of {ours.n}, IQR {ours.q1_ms:.3f}-{ours.q3_ms:.3f} ms)"
                     + (f", {case.tflops:.0f} TFLOP/s" if case.tflops else ""))
    for name, s in case.times.items():
        if name != SUBMISSION:
            lines.append(f"{name}: {s.median_ms:.3f} ms")
    if case.ratio is not None:
        lines.append(f"ratio to {bench.compare_to}: {case.ratio:.2f} -> {case.fraction:.0%} of {case.points:g} points")
    lines += case.reasons + [f"anomaly: {a}" for a in case.anomalies]
    if bench.device:
        lines.append(f"measured on {bench.device}")
    return "\n".join(lines)


def leaderboard(benches: list[BenchResult]) -> list[LeaderboardEntry]:
    """One entry per clean case: its median time in ms (lower is better)."""
    return [
        LeaderboardEntry(name=f"{bench.problem} {case.name} (ms)", value=round(case.submission_ms, 4), order="asc")
        for bench in benches
        for case in bench.cases
        if case.verdict in ("full", "partial", "zero") and case.submission_ms is not None
    ]
