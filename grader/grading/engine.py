"""The five steps for one submission, and the files they leave behind.

``grade_one`` writes into ``out``: ``results.json`` (Gradescope's format), ``junit.xml``,
``summary.txt`` and ``session.log`` (the trusted pytest output, for staff only).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ..bench.grading import add_to_results, with_benchmarks
from ..bench.harness import run_benchmarks
from ..course import Unit
from ..errors import LmcourseError
from ..report import SessionReport
from ..runner import SessionRun, run_pytest
from ..sandbox.base import PASSIVE_OPENMP
from .carrier import CarrierConfig
from .collect import collect
from .compose import Composed, compose
from .intake import IntakeLimits, intake
from .results import Results
from .score import Scored, score, to_gradescope

log = logging.getLogger(__name__)

#: Starting a worker (importing torch) is charged to the first test of each process.
STARTUP_S = 60.0
SERIAL_MARK = re.compile(r"\bmark\.serial\b")


@dataclass(frozen=True)
class Graded:
    scored: Scored
    results: Results
    out: Path


def grade_one(
    submission: Path,
    unit: Unit,
    out: Path,
    *,
    sandbox: str = "docker",
    workers: int | str = 2,
    submitted: dt.datetime | None = None,
) -> Graded:
    from ..sandbox.registry import get_sandbox

    get_sandbox(sandbox)  # an unavailable backend is one sentence before any work
    if unit.limits.gpu and not _has_gpu():
        raise LmcourseError(f"unit '{unit.name}' needs a GPU and this machine has none.")
    limits = unit.limits
    started = time.monotonic()
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="lmcourse-grade-"))
    try:
        max_bytes = limits.submission_mb * 2**20
        intake(submission, work / "student", unit.student_files, IntakeLimits(max_total_bytes=max_bytes, max_file_bytes=max_bytes))
        composed = compose(unit, work / "student", work)
        config = CarrierConfig(
            backend=sandbox,
            code_dir=str(composed.code),
            fixtures_dir=str(composed.fixtures),
            limits=limits,
            call_timeout_s=limits.test_timeout_s,
            startup_timeout_s=STARTUP_S,
        )
        (work / "carrier.json").write_text(config.model_dump_json())
        scratch = work / "tmp"
        scratch.mkdir()
        run = _execute(composed, work / "carrier.json", out, unit, workers=workers, scratch=scratch)
        (out / "session.log").write_text(run.output, encoding="utf-8")
        collected = collect(run.report, timed_out=run.timed_out)
        benches = run_benchmarks(unit, composed.code, sandbox=sandbox)  # [] when the unit declares none
        scored = score(unit, collected, submitted=submitted, execution_time=time.monotonic() - started)
        scored = with_benchmarks(scored, benches)
        results = add_to_results(to_gradescope(unit, scored), unit.config, scored, benches)
        if benches:
            (out / "bench.json").write_text(json.dumps([b.model_dump(mode="json") for b in benches], indent=1), encoding="utf-8")
        (out / "results.json").write_text(results.to_json(), encoding="utf-8")
        (out / "summary.txt").write_text(results.output or "", encoding="utf-8")
        tests = [t.model_dump() for t in collected.tests]
        (out / "tests.json").write_text(json.dumps(tests, indent=1), encoding="utf-8")
        return Graded(scored, results, out)
    finally:
        _clean_up(sandbox, work)


def _clean_up(sandbox: str, work: Path) -> None:
    """Best effort, and never masking the run's own outcome: what sandboxes left, then the work folder."""
    from ..sandbox.registry import make_sandbox

    try:
        make_sandbox(sandbox).cleanup(work)
    except Exception as exc:  # e.g. the Docker daemon stopped answering meanwhile
        log.warning("could not clean up the sandboxes of %s: %s", work, exc)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _execute(composed: Composed, carrier: Path, out: Path, unit: Unit, *, workers: int | str, scratch: Path) -> SessionRun:
    """Run the trusted session: tests in parallel, then the ones marked ``serial`` alone.

    Distributed tests (several processes over gloo) are marked serial: they must not compete with
    other tests for cores and memory. The two phases share the wall clock.
    """
    limits = unit.limits
    deadline = time.monotonic() + limits.total_timeout_s
    phases = [("not serial", workers, "junit.xml")]
    if _marks_serial(composed.trusted, composed.test_paths):
        phases.append(("serial", 1, "junit-serial.xml"))
    runs = []
    for marker, n, junit in phases:
        runs.append(run_pytest(
            composed.trusted,
            composed.test_paths,
            workers=n,
            timeout_s=limits.test_timeout_s + STARTUP_S,
            extra=["-m", marker, "--lmcourse-carrier", str(carrier), f"--junitxml={out / junit}"],
            wall_clock_s=max(10.0, deadline - time.monotonic()),
            isolated=True,
            # Carriers' channels land in the work folder, removed below; OpenMP: see PASSIVE_OPENMP.
            env={"TMPDIR": str(scratch), **PASSIVE_OPENMP},
        ))
    if len(runs) > 1 and not runs[1].report.expected:
        (out / "junit-serial.xml").unlink(missing_ok=True)
    return merge_runs(runs)


def _marks_serial(root: Path, paths: list[str]) -> bool:
    """Whether any test module mentions ``mark.serial``: if none does, the serial phase (a second
    pytest session: start-up, collection, a worker) would run nothing and is skipped. A mention in
    a comment only costs that phase; the staff-written tests are trusted, so text is enough."""
    files = (f for p in paths for f in ((root / p).rglob("*.py") if (root / p).is_dir() else [root / p]))
    return any(SERIAL_MARK.search(f.read_text(encoding="utf-8", errors="replace")) for f in files if f.is_file())


def merge_runs(runs: list[SessionRun]) -> SessionRun:
    """One run from phases over disjoint tests; a collection error shows once."""
    errors = {e.nodeid: e for run in runs for e in run.report.collection_errors}
    report = SessionReport(
        tests=[t for run in runs for t in run.report.tests],
        collection_errors=list(errors.values()),
        expected=[nodeid for run in runs for nodeid in run.report.expected],
        exit_status=max(run.report.exit_status for run in runs),
    )
    timed_out = any(run.timed_out for run in runs)
    output = "\n".join(run.output for run in runs)
    return SessionRun(report, None if timed_out else max(r.returncode or 0 for r in runs), output)


def _has_gpu() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())
