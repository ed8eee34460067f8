"""The batch journal: one SQLite row per submission, so a killed batch resumes without loss.

States go ``pending -> running -> done | error``. Only the batch's parent process writes. A
result is recorded once, after its files were renamed into place; a run killed mid-way leaves
``running`` rows, which the next run puts back to ``pending`` (their files were never
published). ``completions`` counts recorded results, ``attempts`` counts starts: tests prove
every submission ends with exactly one completion.
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
    updated     TEXT
);
"""


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


class Journal:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path, isolation_level=None)  # autocommit: every write is durable at once
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    def add(self, entries: list[tuple[str, str, str | None]]) -> None:
        """Register (id, path, submitted) rows; known ids keep their state."""
        self.db.executemany("INSERT OR IGNORE INTO submissions (id, path, submitted) VALUES (?, ?, ?)", entries)

    def recover(self) -> int:
        """Put rows a killed run left ``running`` back to ``pending``; returns how many."""
        return self.db.execute("UPDATE submissions SET state = 'pending' WHERE state = 'running'").rowcount

    def regrade(self, ids: list[str]) -> list[str]:
        """Mark ``ids`` for grading again; returns the ids that are unknown."""
        known = {r[0] for r in self.db.execute("SELECT id FROM submissions")}
        self.db.executemany("UPDATE submissions SET state = 'pending' WHERE id = ?", [(i,) for i in ids if i in known])
        return [i for i in ids if i not in known]

    def pending(self) -> list[Row]:
        return self._rows("WHERE state = 'pending' ORDER BY id")

    def start(self, sub_id: str) -> None:
        self._update(sub_id, "state = 'running', attempts = attempts + 1")

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
            "SELECT id, path, submitted, state, attempts, completions, score, possible, days_late, error, seconds "
            f"FROM submissions {clause}",
            values,
        )
        return [Row(*r) for r in cursor]
