"""``verify --top K``: re-run a board's best entries on staff hardware and mark those whose numbers hold.

Each selected entry is re-evaluated by :mod:`.reverify` (trusted evaluator, or the sandbox for
custom code), inline here or as one Slurm job each through :mod:`lmcourse.grader.slurm`. An entry
is marked verified when the re-run loss matches the stored one within :data:`RELATIVE_TOLERANCE`:
the evaluator is deterministic to the printed digits on one machine, and 1e-4 relative leaves room
for another CPU or GPU's summation order while catching any number a model did not earn. Mismatches
and failures are reported and left unverified.
"""

from __future__ import annotations

import json
import math
import secrets
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..grader.errors import LmcourseError
from ..grader.slurm import Resources, Slurm, render_script
from .store import EntryView, Store

RELATIVE_TOLERANCE = 1e-4


@dataclass(frozen=True)
class Outcome:
    """One entry's re-run: the stored loss, and the new one or why there is none."""

    entry: EntryView
    loss: float | None = None
    error: str | None = None

    @property
    def matched(self) -> bool:
        return self.loss is not None and math.isclose(self.loss, self.entry.loss, rel_tol=RELATIVE_TOLERANCE)

    def describe(self) -> str:
        if self.error is not None:
            return self.error
        if self.matched:
            return f"re-run loss {self.loss:.6f} matches the stored {self.entry.loss:.6f}"
        return f"re-run loss {self.loss:.6f} differs from the stored {self.entry.loss:.6f} beyond {RELATIVE_TOLERANCE:g}"


def select(store: Store, board: str, top: int, *, every: bool = False) -> list[EntryView]:
    """The ``top`` best entries of ``board``'s public ranking; only the unverified ones unless ``every``."""
    return [entry for entry in store.ranking(board)[:top] if every or not entry.verified]


def run_inline(entries: list[EntryView], job: Callable[[int], dict[str, Any]]) -> list[Outcome]:
    """Re-run each entry here, one after the other; ``job`` is :func:`.reverify.reevaluate` bound to its options."""
    outcomes = []
    for entry in entries:
        try:
            outcomes.append(_outcome(entry, job(entry.id)))
        except LmcourseError as error:
            outcomes.append(Outcome(entry, error=str(error)))
    return outcomes


def run_slurm(entries: list[EntryView], argv: Callable[[int, Path], list[str]], work: Path, resources: Resources,
              *, slurm: Slurm | None = None, poll_s: float = 2.0) -> list[Outcome]:
    """One Slurm job per entry running ``argv(entry_id, out_json)``; waits for all, reads their JSON.

    ``work`` must be on a filesystem the nodes share: scripts, logs and results go there.
    """
    slurm = slurm or Slurm()
    slurm.check()
    work.mkdir(parents=True, exist_ok=True)
    jobs: dict[str, tuple[EntryView, str, Path]] = {}  # job id -> entry, job name, result file
    for entry in entries:
        name = f"lmc-verify-{entry.id}-{secrets.token_hex(4)}"
        out = work / f"{name}.json"
        script = work / f"{name}.sbatch"
        script.write_text(render_script(resources, name=name, log=work / f"{name}.log", workdir=work,
                                        command=argv(entry.id, out), purpose="a leaderboard re-evaluation"),
                          encoding="utf-8")
        jobs[slurm.submit(script, name=name)] = (entry, name, out)
    outcomes: dict[str, Outcome] = {}
    try:
        while len(outcomes) < len(jobs):
            states = slurm.states(jobs)
            for job_id, (entry, name, out) in jobs.items():
                state = states.get(job_id)
                if job_id in outcomes or (state is not None and (state.name != name or not state.ended)):
                    continue  # still running (a job of another name under this id is a reused id: wait it out)
                if out.is_file():
                    outcomes[job_id] = _outcome(entry, json.loads(out.read_text(encoding="utf-8")))
                elif state is not None:
                    outcomes[job_id] = Outcome(entry, error=f"{state.failure()} (log: {work / (name + '.log')})")
                else:
                    outcomes[job_id] = Outcome(entry, error=f"Slurm forgot job {job_id} and it left no result.")
            if len(outcomes) < len(jobs):
                time.sleep(poll_s)
    except BaseException:
        slurm.cancel(job for job in jobs if job not in outcomes)  # interrupted: leave nothing running
        raise
    return [outcomes[job_id] for job_id in jobs]


def reverify_argv(entry_id: int, out: Path, *, db: str, runs: Path, course: Path, data_dir: Path | None,
                  device: str, sandbox: str, python: str = sys.executable) -> list[str]:
    """The command of one Slurm job: :mod:`.reverify` for ``entry_id``, its result to ``out``."""
    argv = [python, "-m", "lmcourse.leaderboard.reverify", str(entry_id), "--db", db, "--runs", str(runs.resolve()),
            "--course", str(course.resolve()), "--out", str(out), "--device", device, "--sandbox", sandbox]
    return argv + (["--data-dir", str(data_dir.resolve())] if data_dir is not None else [])


def settle(store: Store, outcomes: list[Outcome], *, by: str) -> None:
    """Mark each matching entry verified; the others are left as they are."""
    for outcome in outcomes:
        if outcome.matched:
            store.set_verified(outcome.entry.id, True, by=by)


def _outcome(entry: EntryView, result: dict[str, Any]) -> Outcome:
    if "error" in result:
        return Outcome(entry, error=str(result["error"]))
    return Outcome(entry, loss=float(result["loss"]))
