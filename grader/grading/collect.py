"""Collect: turn the trusted session's report into one verdict per expected test.

Every test collected must report; one that did not (its process died, the wall clock struck)
fails. Canary tests that did not pass mean the worker lied: the run is flagged as tampered.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..report import SessionReport, TestResult
from .compose import CANARY_NAME


@dataclass
class Collected:
    tests: list[TestResult]  # every expected test of the unit, canaries excluded
    anomalies: list[str] = field(default_factory=list)
    tampered: bool = False
    timed_out: bool = False


def collect(report: SessionReport, *, timed_out: bool) -> Collected:
    by_id = {t.nodeid: t for t in report.tests}
    expected = report.expected or list(by_id)
    tests, anomalies = [], []
    for nodeid in expected:
        result = by_id.get(nodeid)
        if result is None or result.outcome is None:
            result = TestResult(nodeid=nodeid, outcome="failed", message="did not report (the run was stopped)", origin="sandbox")
            anomalies.append(f"{nodeid} did not report")
        tests.append(result)
    for e in report.collection_errors:
        anomalies.append(f"could not collect {e.nodeid}: {e.message}")
    canaries = [t for t in tests if t.nodeid.startswith(CANARY_NAME)]
    # A canary that failed its assertion got an answer it must not get; one whose worker died
    # or timed out says nothing about honesty (the tests it shares a worker with fail anyway).
    tampered = any(t.outcome != "passed" and t.origin == "test" for t in canaries)
    if tampered:
        anomalies.append("canary calls got answers they must not get: the worker's replies were tampered with")
    elif not timed_out and any(t.outcome != "passed" for t in canaries):
        anomalies.append("the canary calls could not run: the student's worker kept dying")
    if timed_out:
        anomalies.append("the grading run hit its total time limit and was stopped")
    return Collected([t for t in tests if t not in canaries], anomalies, tampered, timed_out)
