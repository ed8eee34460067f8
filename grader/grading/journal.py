"""The batch journal: one SQLite row per submission, so a killed batch resumes without loss.

States go ``pending -> running -> done | error``. Only the batch's parent process writes. A
result is recorded once, after its files were renamed into place; a run killed mid-way leaves
``running`` rows, which the next run puts back to ``pending`` (their files were never
published). ``completions`` counts recorded results, ``attempts`` counts starts: tests prove
every submission ends with exactly one completion.

A submission graded by a Slurm job keeps the job's name (chosen before ``sbatch``) and id: such a
``running`` row outlives the run that submitted it, since its job goes on without it, and the next
run follows the job instead of starting another.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS submissions (
    id          TEXT PRIMARY KEY,
    path        TEXT NOT NULL,
    submitted   TEXT,
    state       TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'running', 'done', 'error')),
    attempts    INTEGER NOT NULL DEFAULT 0,
    completions INTEGER NOT NULL DEFAULT 0,
    score       REAL,
    possible    REAL,
    days_late   INTEGER,
    error       TEXT,
    seconds     REAL,
    updated     TEXT,
    job_name    TEXT,
    job_id      TEXT
);
"""
#: Columns added after the first release, with their types: journals written before get them on open.
ADDED_COLUMNS = {"job_name": "TEXT", "job_id": "TEXT"}


@dataclass(frozen=True)
class Row:
    id: str
    path: str
    submitted: str | None
    state: str
    attempts: int
    completions: int
    score: float | None
    possible: float | None
    days_late: int | None
    error: str | None
    seconds: float | None
    job_name: str | None = None
    job_id: str | None = None


class Journal:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path, isolation_level=None)  # autocommit: every write is durable at once
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(SCHEMA)
        present = {r[1] for r in self.db.execute("PRAGMA table_info(submissions)")}
        for column, kind in ADDED_COLUMNS.items():
            if column not in present:
                self.db.execute(f"ALTER TABLE submissions ADD COLUMN {column} {kind}")

    def close(self) -> None:
        self.db.close()

    def add(self, entries: list[tuple[str, str, str | None]]) -> None:
        """Register (id, path, submitted) rows; known ids keep their state."""
        self.db.executemany("INSERT OR IGNORE INTO submissions (id, path, submitted) VALUES (?, ?, ?)", entries)

    def recover(self) -> int:
        """Put rows a killed run left ``running`` in its own processes back to ``pending``; returns how many.

        Rows running in a Slurm job stay: the job may still be running (see :meth:`in_jobs`).
        """
        return self.db.execute(
            "UPDATE submissions SET state = 'pending' WHERE state = 'running' AND job_name IS NULL"
        ).rowcount

    def regrade(self, ids: list[str]) -> list[str]:
        """Mark ``ids`` for grading again; returns the ids that are unknown."""
        known = {r[0] for r in self.db.execute("SELECT id FROM submissions")}
        self.db.executemany("UPDATE submissions SET state = 'pending' WHERE id = ?", [(i,) for i in ids if i in known])
        return [i for i in ids if i not in known]

    def pending(self) -> list[Row]:
        return self._rows("WHERE state = 'pending' ORDER BY id")

    def in_jobs(self) -> list[Row]:
        """Rows running in a Slurm job, which an earlier run may have submitted."""
        return self._rows("WHERE state = 'running' AND job_name IS NOT NULL ORDER BY id")

    def start(self, sub_id: str, *, job_name: str | None = None) -> None:
        """Mark a row running; ``job_name`` is written before the job is submitted, so no job goes unrecorded."""
        self._update(sub_id, "state = 'running', attempts = attempts + 1, job_name = ?, job_id = NULL", job_name)

    def submitted(self, sub_id: str, job_id: str) -> None:
        self._update(sub_id, "job_id = ?", job_id)

    def release(self, sub_id: str) -> None:
        """Back to ``pending``: its job was cancelled or never reached Slurm, and it left no result."""
        self._update(sub_id, "state = 'pending', job_name = NULL, job_id = NULL")

    def finish(self, sub_id: str, *, score: float, possible: float, days_late: int, seconds: float) -> None:
        self._update(
            sub_id,
            "state = 'done', completions = completions + 1, score = ?, possible = ?, days_late = ?, error = NULL, seconds = ?",
            score, possible, days_late, seconds,
        )

    def fail(self, sub_id: str, *, error: str, seconds: float) -> None:
        self._update(sub_id, "state = 'error', completions = completions + 1, score = 0, error = ?, seconds = ?", error, seconds)

    def get(self, sub_id: str) -> Row:
        return self._rows("WHERE id = ?", sub_id)[0]

    def rows(self) -> list[Row]:
        return self._rows("ORDER BY id")

    def _update(self, sub_id: str, assignments: str, *values: object) -> None:
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        self.db.execute(f"UPDATE submissions SET {assignments}, updated = ? WHERE id = ?", (*values, now, sub_id))

    def _rows(self, clause: str, *values: object) -> list[Row]:
        cursor = self.db.execute(
            "SELECT id, path, submitted, state, attempts, completions, score, possible, days_late, error, seconds, "
            "job_name, job_id "
            f"FROM submissions {clause}",
            values,
        )
        return [Row(*r) for r in cursor]
