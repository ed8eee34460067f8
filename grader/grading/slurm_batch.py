"""The ``slurm`` executor: one Slurm job per submission, results gathered into the batch journal.

One submission's way through it::

    pending ── name chosen, journal.start ──> running ── sbatch, journal.submitted(job id) ──┐
      job COMPLETED, outcome left  ─> OUT/<id>.partial renamed to OUT/<id>, journal done ─────┤
      job TIMEOUT / OUT_OF_MEMORY / FAILED / CANCELLED ─> journal error, naming that state ────┤
      node failure, or Slurm forgot a job that left no outcome ─> a new job (at most 3 tries) ─┘

The job's name is written to the journal before ``sbatch`` and its id right after, so a
controller killed at any point never loses a job nor starts a second one for the same submission:
the next run follows the jobs it finds ``running`` (:meth:`Journal.in_jobs`) and submits only the
``pending`` ones. Each job writes its outcome into a file named after the job (see
:mod:`.slurm_job`); the controller publishes the result folder only once Slurm says the job
COMPLETED. While ``slurmctld`` is away (restarting, say) the Slurm commands retry with backoff;
Slurm keeps the jobs, so the batch just carries on.

SIGINT/SIGTERM cancel the jobs of this batch (``scancel``) and put their submissions back to
``pending``; a second signal quits at once, leaving the jobs to the next run.
"""

from __future__ import annotations

import contextlib
import math
import re
import secrets
import shlex
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..config import SlurmConfig
from ..course import Unit
from ..errors import LmcourseError
from ..slurm import (
    INFRASTRUCTURE,
    JobState,
    Resources,
    Slurm,
    SlurmError,
    SlurmUnavailable,
    minutes,
    render_script,
    resources,
)
from .batch import Progress, publish, record
from .journal import Journal, Row
from .slurm_job import read_outcome

#: Tries per submission when jobs are lost through no fault of their own (node failure, forgotten).
MAX_ATTEMPTS = 3
#: Added to the unit's total_timeout_s for the default time limit: start-up, intake, clean-up.
MARGIN_S = 300
#: Memory for the grader itself (trusted pytest, reports) beside one sandbox of the unit's memory_mb.
GRADER_MB = 2048
CANCEL_WAIT_S = 60.0
#: How long a job may be unknown to Slurm, or called running after it left its outcome, before
#: the controller settles it anyway (see ``_Batch.poll``).
LINGER_S = 60.0


class BatchCancelled(LmcourseError):
    """The batch was interrupted and its Slurm jobs cancelled."""

    exit_code = 130


def resources_for(unit: Unit, config: SlurmConfig) -> Resources:
    """The job's resources: ``course.yaml``'s ``slurm:`` section, defaults from the unit's limits."""
    limits = unit.limits
    asked = resources(
        config,
        time_limit=minutes(limits.total_timeout_s + MARGIN_S),
        mem_mb=limits.memory_mb + GRADER_MB,
        cpus=math.ceil(limits.cpus) + 1,
        gpus=int(limits.gpu),
    )
    if limits.gpu and not asked.gpus:
        raise LmcourseError(f"unit '{unit.name}' needs a GPU but course.yaml's slurm.gpus is 0.")
    return asked


class SlurmExecutor:
    """Grades each submission in a Slurm job; with ``watch`` it waits for all of them, else it
    submits, records what has already finished, and leaves the rest to the next run."""

    def __init__(self, config: SlurmConfig | None = None, *, watch: bool = True, poll_s: float = 5.0,
                 slurm: Slurm | None = None) -> None:
        self.config = config
        self.watch = watch
        self.poll_s = poll_s
        self.slurm = slurm or Slurm()

    def run(self, unit: Unit, todo: list[Row], out: Path, journal: Journal, *, sandbox: str,
            progress: Progress | None) -> None:
        config = self.config or unit.course.config.slurm or SlurmConfig()
        self.slurm.check()
        batch = _Batch(unit, out, journal, sandbox, config, self.slurm, progress)
        with _signals_set(threading.Event()) as stop:
            todo = batch.reattach(journal.in_jobs()) + todo
            batch.total = len(batch.jobs) + len(todo)
            for row in todo:
                if stop.is_set():
                    break
                batch.submit(row)
            batch.poll()
            while self.watch and batch.jobs and not stop.is_set():
                stop.wait(self.poll_s)
                batch.poll()
        if stop.is_set():
            cancelled, left = batch.cancel()
            raise BatchCancelled(
                f"interrupted: cancelled {cancelled} Slurm jobs"
                + (f", {left} did not stop within {CANCEL_WAIT_S:g} s (they stay in the journal)" if left else "")
                + "; run the same command again to grade what is left."
            )


class _Batch:
    """The jobs of one run of the controller, and what becomes of each."""

    def __init__(self, unit: Unit, out: Path, journal: Journal, sandbox: str, config: SlurmConfig,
                 slurm: Slurm, progress: Progress | None) -> None:
        self.unit, self.out, self.journal, self.sandbox, self.slurm = unit, out.resolve(), journal, sandbox, slurm
        self.resources = resources_for(unit, config)
        self.work = (config.work_dir or self.out / ".slurm").resolve()
        self.work.mkdir(parents=True, exist_ok=True)
        self.python = config.python or sys.executable
        self.progress = progress
        self.jobs: dict[str, Row] = {}  # job id -> its row, for the jobs not yet settled
        self.unseen: dict[str, float] = {}  # job id -> when Slurm first did not know it
        self.lingering: dict[str, float] = {}  # job id -> when its outcome was first seen while it ran
        self.total = self.done = 0

    def reattach(self, rows: list[Row]) -> list[Row]:
        """Follow the jobs an earlier run left; returns the rows whose job never reached Slurm."""
        again = []
        for row in rows:
            assert row.job_name is not None
            job_id = row.job_id or self.slurm.find(row.job_name)
            if job_id:
                if not row.job_id:
                    self.journal.submitted(row.id, job_id)
                self.jobs[job_id] = self.journal.get(row.id)
            elif read_outcome(self._file(row.job_name, "json")) is not None:
                self._settle(row, None)  # it finished and Slurm has forgotten it
            else:
                self.journal.release(row.id)
                again.append(self.journal.get(row.id))
        return again

    def submit(self, row: Row) -> None:
        name = f"lmc-{re.sub(r'[^A-Za-z0-9_.-]', '_', row.id)[:40]}-{secrets.token_hex(4)}"
        script = self._file(name, "sbatch")
        script.write_text(self._script(row, name), encoding="utf-8")
        self.journal.start(row.id, job_name=name)
        try:
            job_id = self.slurm.submit(script, name=name)
        except SlurmUnavailable:
            raise  # the job may or may not exist: the journal keeps its name for the next run
        except SlurmError:
            self.journal.release(row.id)
            raise
        self.journal.submitted(row.id, job_id)
        self.jobs[job_id] = self.journal.get(row.id)

    def poll(self) -> None:
        """Settle every job that ended, and every job Slurm has lost or forgotten (see below)."""
        if not self.jobs:
            return
        states = self.slurm.states(self.jobs)
        now = time.monotonic()
        for job_id, row in list(self.jobs.items()):
            state = _own(states.get(job_id), row)
            finished = self._file(row.job_name or "", "json").exists()
            if state is None:
                # Forgotten (ended over MinJobAge ago), or lost by a slurmctld restarted without its
                # latest state: wait a while before running it again, so a lost job that still
                # runs on its node has been killed by then.
                first = self.unseen.setdefault(job_id, now)
                if not finished and now - first < LINGER_S:
                    continue
            elif not state.ended:
                self.unseen.pop(job_id, None)
                # A job that left its outcome long ago but is still called running lost its
                # completion in a slurmctld crash: Slurm would hold it until its time limit.
                first = self.lingering.setdefault(job_id, now) if finished else now
                if now - first < LINGER_S:
                    continue
                self.slurm.cancel([job_id])
                state = None
            del self.jobs[job_id]
            self._settle(row, state)

    def cancel(self) -> tuple[int, int]:
        """Cancel the unsettled jobs and wait for them to end; returns (cancelled, still not ended)."""
        ids = list(self.jobs)
        self.slurm.cancel(ids)
        deadline = time.monotonic() + CANCEL_WAIT_S
        while self.jobs and time.monotonic() < deadline:
            states = self.slurm.states(self.jobs)
            for job_id, row in list(self.jobs.items()):
                state = _own(states.get(job_id), row)
                if state is not None and not state.ended:
                    continue
                del self.jobs[job_id]
                if self._file(row.job_name or "", "json").exists():
                    self._settle(row, state)  # it finished before the cancel reached it
                else:
                    self.journal.release(row.id)
            if self.jobs:
                time.sleep(0.5)
        return len(ids) - len(self.jobs), len(self.jobs)

    def _settle(self, row: Row, state: JobState | None) -> None:
        """Record a job that ended (``state``) or that Slurm no longer knows (``None``).

        The outcome file is the job's last act, so one that exists means the grading finished:
        it counts whatever Slurm says (a job whose completion a slurmctld crash lost ends as
        TIMEOUT), except OUT_OF_MEMORY: then a process of the grading was killed mid-way.
        """
        name = row.job_name or ""
        log = self._file(name, "log")
        outcome = read_outcome(self._file(name, "json"))
        if state is not None and state.state == "OUT_OF_MEMORY":
            self._fail(row, f"{state.failure()}; log: {log}")
        elif outcome is not None:
            self._record(row, outcome)
        elif state is not None and state.succeeded:
            self._fail(row, f"Slurm job {row.job_id} completed without leaving a result; log: {log}")
        elif state is not None and state.state not in INFRASTRUCTURE:
            self._fail(row, f"{state.failure()}; log: {log}")
        elif row.attempts < MAX_ATTEMPTS:
            self.submit(row)  # lost through no fault of its own: grade it again
        else:
            why = state.failure() if state else f"Slurm forgot job {row.job_id} before it left a result"
            self._fail(row, f"{why} (attempt {row.attempts} of {MAX_ATTEMPTS}); log: {log}")

    def _record(self, row: Row, outcome: dict[str, Any]) -> None:
        if "error" not in outcome:
            if (self.out / f"{row.id}.partial").is_dir():
                publish(self.out, row.id)
            elif not (self.out / row.id).is_dir():  # (a controller killed right after publishing has)
                error = f"Slurm job {row.job_id} reported a score but left no result folder"
                outcome = {"error": error, "seconds": outcome["seconds"]}
        record(self.journal, row.id, outcome)
        self._advance(row.id)

    def _fail(self, row: Row, error: str) -> None:
        self.journal.fail(row.id, error=error, seconds=0.0)
        self._advance(row.id)

    def _advance(self, sub_id: str) -> None:
        self.done += 1
        if self.progress:
            self.progress(self.journal.get(sub_id), self.done, max(self.total, self.done))

    def _file(self, job_name: str, suffix: str) -> Path:
        return self.work / f"{job_name}.{suffix}"

    def _script(self, row: Row, name: str) -> str:
        values = {
            "python": self.python, "course": str(self.unit.course.root), "unit": self.unit.name,
            "sandbox": self.sandbox, "out": str(self.out), "student": row.id,
            "path": str(Path(row.path).resolve()), "outcome": str(self._file(name, "json")),
            "submitted": row.submitted or "",
        }
        return render_script(
            self.resources, name=name, log=self._file(name, "log"), workdir=self.work,
            purpose=f"grading {row.id} for unit {self.unit.name}", template="slurm/grade.sbatch.j2",
            q={k: shlex.quote(v) if v else "" for k, v in values.items()},
        )


def _own(state: JobState | None, row: Row) -> JobState | None:
    """``state`` if it is the state of the row's job, not of a later job given the same id."""
    return state if state is not None and state.name == row.job_name else None


@contextlib.contextmanager
def _signals_set(stop: threading.Event) -> Iterator[threading.Event]:
    """Within the block, SIGINT and SIGTERM set ``stop``; a second one quits at once."""
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum: int, frame: object) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
