"""Grade many submissions: an executor, a journal, and exactly one result per submission.

Each submission is graded by :func:`.engine.grade_one` into ``out/<id>.partial/``, renamed to
``out/<id>/`` when complete; only then is it recorded in the journal. Where the gradings run is
the executor's business: :class:`InlineExecutor` here (a process pool on this machine) or
:class:`.slurm_batch.SlurmExecutor` (one Slurm job each). Inline pool workers (and their pytest
sessions) die with the parent, so after ``kill -9`` nothing keeps running unseen, and the next run
regrades exactly the unrecorded submissions.
"""

from __future__ import annotations

import csv
import datetime as dt
import multiprocessing
import shutil
import time
import traceback
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ..course import Course, Unit
from ..errors import LmcourseError
from ..procs import die_with_parent
from .journal import Journal, Row

ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")
JOURNAL = "journal.sqlite"
Progress = Callable[[Row, int, int], None]  # (finished row, done so far, total)


class Executor(Protocol):
    """Runs the gradings of a batch and records each result in the journal as it comes."""

    def run(self, unit: Unit, todo: list[Row], out: Path, journal: Journal, *, sandbox: str,
            progress: Progress | None) -> None: ...


@dataclass(frozen=True)
class Submission:
    id: str
    path: Path
    submitted: dt.datetime | None = None


def is_batch(path: Path, unit: Unit) -> bool:
    """A CSV, or a folder of submissions (rather than one unpacked submission)."""
    if path.suffix == ".csv":
        return True
    return path.is_dir() and not (path / unit.package).exists() and not (path / "tests").exists()


def discover(source: Path) -> list[Submission]:
    """Submissions in a folder (one archive or folder each, named by student) or a CSV.

    The CSV has columns ``student`` and ``path`` (relative to the CSV) and optionally
    ``submitted_at`` (ISO 8601 with a UTC offset).
    """
    if source.suffix == ".csv":
        return _from_csv(source)
    subs = [Submission(_strip_suffix(p.name), p) for p in sorted(source.iterdir()) if not p.name.startswith(".")]
    subs = [s for s in subs if s.path.is_dir() or s.path.name.endswith(ARCHIVE_SUFFIXES)]
    if not subs:
        raise LmcourseError(f"{source} holds no submissions (archives {', '.join(ARCHIVE_SUFFIXES)} or folders).")
    _check_unique(subs, source)
    return subs


def _strip_suffix(name: str) -> str:
    return next((name[: -len(s)] for s in ARCHIVE_SUFFIXES if name.endswith(s)), name)


def _from_csv(source: Path) -> list[Submission]:
    try:
        with source.open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise LmcourseError(f"{source} cannot be read as CSV ({exc}).") from None
    if not rows or not {"student", "path"} <= set(rows[0]):
        raise LmcourseError(f"{source} needs the columns 'student' and 'path' (and optionally 'submitted_at').")
    subs = []
    for number, row in enumerate(rows, start=2):
        when = row.get("submitted_at") or None
        try:
            submitted = dt.datetime.fromisoformat(when) if when else None
        except ValueError:
            raise LmcourseError(f"{source}:{number}: submitted_at {when!r} is not an ISO 8601 time.") from None
        if submitted is not None and submitted.tzinfo is None:
            raise LmcourseError(f"{source}:{number}: submitted_at {when!r} needs a UTC offset.")
        subs.append(Submission(row["student"], (source.parent / row["path"]).resolve(), submitted))
    _check_unique(subs, source)
    return subs


def _check_unique(subs: list[Submission], source: Path) -> None:
    seen: set[str] = set()
    for s in subs:
        if s.id in seen:
            raise LmcourseError(f"{source} lists student '{s.id}' twice.")
        seen.add(s.id)


def grade_batch(
    unit: Unit,
    source: Path,
    out: Path,
    *,
    sandbox: str,
    jobs: int = 2,
    regrade: list[str] | None = None,
    progress: Progress | None = None,
    executor: Executor | None = None,
) -> list[Row]:
    """Grade every submission not yet recorded in ``out/journal.sqlite``; returns all rows.

    ``executor`` defaults to an :class:`InlineExecutor` of ``jobs`` processes.
    """
    from ..sandbox.registry import get_sandbox

    get_sandbox(sandbox)
    subs = {s.id: s for s in discover(source)}
    journal = Journal(out / JOURNAL)
    try:
        journal.add([(s.id, str(s.path), s.submitted.isoformat() if s.submitted else None) for s in subs.values()])
        journal.recover()
        if busy := sorted(set(regrade or []) & {r.id for r in journal.in_jobs()}):
            raise LmcourseError(f"--regrade names submissions still in Slurm jobs: {', '.join(busy)}; let them finish first.")
        if unknown := journal.regrade(regrade or []):
            raise LmcourseError(f"--regrade names unknown submissions: {', '.join(unknown)}.")
        todo = [row for row in journal.pending() if row.id in subs]
        executor = executor or InlineExecutor(jobs)
        executor.run(unit, todo, out, journal, sandbox=sandbox, progress=progress)
        return journal.rows()
    finally:
        journal.close()


@dataclass(frozen=True)
class InlineExecutor:
    """A process pool of ``jobs`` workers on this machine."""

    jobs: int = 2

    def run(self, unit: Unit, todo: list[Row], out: Path, journal: Journal, *, sandbox: str,
            progress: Progress | None) -> None:
        if in_jobs := journal.in_jobs():
            names = ", ".join(r.id for r in in_jobs[:5]) + (", ..." if len(in_jobs) > 5 else "")
            raise LmcourseError(
                f"{len(in_jobs)} submissions of {out} are in Slurm jobs an earlier run submitted ({names}): "
                "finish the batch with --executor slurm."
            )
        _run_pool(unit, todo, out, journal, sandbox=sandbox, jobs=self.jobs, progress=progress)


def make_executor(name: str, *, jobs: int = 2, watch: bool = False) -> Executor:
    """The executor ``lmcourse grade --executor NAME`` means; ``watch`` matters only to ``slurm``."""
    if name == "slurm":
        from .slurm_batch import SlurmExecutor

        return SlurmExecutor(watch=watch)
    if name != "inline":
        raise LmcourseError(f"unknown executor '{name}' (choose inline or slurm).")
    return InlineExecutor(jobs)


def _run_pool(unit: Unit, todo: list[Row], out: Path, journal: Journal, *, sandbox: str, jobs: int, progress: Progress | None) -> None:
    total, done = len(todo), 0
    queue = list(reversed(todo))
    context = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=die_with_parent) as pool:
        running: dict[Future[dict[str, object]], Row] = {}
        while queue or running:
            while queue and len(running) < jobs:  # a row is 'running' only once a worker has it
                row = queue.pop()
                journal.start(row.id)
                future = pool.submit(_grade_into, str(unit.course.root), unit.name, row, out, sandbox)
                running[future] = row
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                row = running.pop(future)
                _record(journal, row, future)
                done += 1
                if progress:
                    progress(journal.get(row.id), done, total)


def _record(journal: Journal, row: Row, future: Future[dict[str, object]]) -> None:
    try:
        outcome = future.result()
    except Exception as exc:  # the worker process itself died
        journal.fail(row.id, error=f"grading crashed: {exc}", seconds=0.0)
        return
    record(journal, row.id, outcome)


def record(journal: Journal, sub_id: str, outcome: dict[str, object]) -> None:
    """Write a grading's outcome (see :func:`grade_partial`) into the journal."""
    if "error" in outcome:
        journal.fail(sub_id, error=str(outcome["error"]), seconds=float(outcome["seconds"]))  # type: ignore[arg-type]
    else:
        journal.finish(sub_id, score=outcome["score"], possible=outcome["possible"], days_late=outcome["days_late"], seconds=outcome["seconds"])  # type: ignore[arg-type]


def _grade_into(course_root: str, unit_name: str, row: Row, out: Path, sandbox: str) -> dict[str, object]:
    """In a pool worker: grade one submission into ``out/<id>/``, published by one rename."""
    outcome = grade_partial(course_root, unit_name, row.id, row.path, row.submitted, out, sandbox)
    if "error" not in outcome:
        publish(out, row.id)
    return outcome


def publish(out: Path, sub_id: str) -> None:
    """Rename a complete ``out/<id>.partial/`` to ``out/<id>/``, replacing an earlier result."""
    final, partial = out / sub_id, out / f"{sub_id}.partial"
    shutil.rmtree(final, ignore_errors=True)
    partial.rename(final)


def grade_partial(course_root: str, unit_name: str, sub_id: str, path: str, submitted_at: str | None,
                  out: Path, sandbox: str) -> dict[str, object]:
    """Grade one submission into ``out/<id>.partial/``; the outcome is plain data (JSON-able).

    ``{"score", "possible", "days_late", "seconds"}`` when graded, ``{"error", "seconds"}`` when it
    could not be (one sentence; an internal error leaves its traceback in the partial folder).
    """
    from .engine import grade_one

    started = time.monotonic()
    partial = out / f"{sub_id}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    try:
        unit = Course.load(Path(course_root)).unit(unit_name)
        submitted = dt.datetime.fromisoformat(submitted_at) if submitted_at else None
        graded = grade_one(Path(path), unit, partial, sandbox=sandbox, workers=1, submitted=submitted)
    except LmcourseError as exc:
        return {"error": str(exc), "seconds": time.monotonic() - started}
    except Exception as exc:
        partial.mkdir(parents=True, exist_ok=True)
        (partial / "internal-error.txt").write_text(traceback.format_exc())
        return {"error": f"internal error ({type(exc).__name__}: {exc}); see {partial / 'internal-error.txt'}", "seconds": time.monotonic() - started}
    scored = graded.scored
    return {"score": scored.score, "possible": scored.possible, "days_late": scored.days_late, "seconds": time.monotonic() - started}
