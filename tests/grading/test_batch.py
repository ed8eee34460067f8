"""Batch grading: mixed submissions, a journal that survives kill -9, regrading, the reports."""

from __future__ import annotations

import csv
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lmcourse.grader.course import Course
from lmcourse.grader.errors import LmcourseError
from lmcourse.grader.grading.batch import discover, grade_batch
from lmcourse.grader.grading.gradebook import write_gradebook, write_report

pytestmark = pytest.mark.slow

BREAK_SOFTMAX = ("return [math.exp(v - log_total) for v in scaled]", "return [0.5 for v in scaled]")


@pytest.fixture
def fast_course(course_dir: Path) -> Path:
    """The mini course with short limits, so hanging submissions cost seconds."""
    unit_yaml = course_dir / "assignments/toy/unit.yaml"
    text = unit_yaml.read_text().replace("test_timeout_s: 10", "test_timeout_s: 3").replace("total_timeout_s: 120", "total_timeout_s: 40")
    unit_yaml.write_text(text)
    return course_dir


def make_submissions(trees: dict[str, Path], folder: Path, kinds: list[str]) -> dict[str, float]:
    """Write one submission per kind into ``folder``; returns the score each must get."""
    folder.mkdir()
    expected = {}
    for i, kind in enumerate(kinds):
        dest = folder / f"s{i:02d}-{kind}"
        shutil.copytree(trees["stubs" if kind == "stub" else "solution"], dest)
        adapters = dest / "tests/adapters.py"
        if kind == "half":
            stats = dest / "mini_toy/stats.py"
            stats.write_text(stats.read_text().replace(*BREAK_SOFTMAX))
        elif kind == "crash":
            adapters.write_text("import os\nos._exit(3)\n")
        elif kind == "hang":
            adapters.write_text(adapters.read_text() + "\nimport time\ntime.sleep(3600)\n")
        expected[dest.name] = {"ref": 12.0, "stub": 0.0, "crash": 0.0, "hang": 0.0}.get(kind, -1.0)
    return expected


def test_mixed_batch_grades_everything(fast_course: Path, mini_trees: dict[str, Path], tmp_path: Path) -> None:
    expected = make_submissions(mini_trees, tmp_path / "subs", ["ref", "stub", "half", "crash", "hang"])
    (tmp_path / "subs/zz-corrupt.zip").write_bytes(b"PK\x03\x04 not really")
    unit = Course.load(fast_course).unit("toy")
    rows = grade_batch(unit, tmp_path / "subs", tmp_path / "out", sandbox="local", jobs=2)
    by_id = {r.id: r for r in rows}
    for sid, score in expected.items():
        assert by_id[sid].state == "done", by_id[sid]
        if score >= 0:
            assert by_id[sid].score == score, sid
    half = by_id["s02-half"].score
    assert half is not None and 8 < half < 12
    assert by_id["zz-corrupt"].state == "error" and "not a readable zip" in (by_id["zz-corrupt"].error or "")
    assert all(r.completions == 1 for r in rows)
    write_gradebook(rows, tmp_path / "out/gradebook.csv")
    with (tmp_path / "out/gradebook.csv").open() as f:
        book = {r["student"]: r for r in csv.DictReader(f)}
    assert book["s00-ref"]["score"] == "12" and book["zz-corrupt"]["state"] == "error"
    report = write_report(unit, rows, tmp_path / "out").read_text()
    assert "data:image/png;base64," in report and "softmax" in report and "zz-corrupt" in report


def test_rerun_grades_nothing_twice_and_regrade_redoes_one(fast_course: Path, mini_trees: dict[str, Path], tmp_path: Path) -> None:
    make_submissions(mini_trees, tmp_path / "subs", ["ref", "stub"])
    unit = Course.load(fast_course).unit("toy")
    grade_batch(unit, tmp_path / "subs", tmp_path / "out", sandbox="local", jobs=2)
    again = grade_batch(unit, tmp_path / "subs", tmp_path / "out", sandbox="local", jobs=2)
    assert [(r.attempts, r.completions) for r in again] == [(1, 1), (1, 1)]
    redo = grade_batch(unit, tmp_path / "subs", tmp_path / "out", sandbox="local", jobs=2, regrade=["s01-stub"])
    assert [(r.id, r.completions) for r in redo] == [("s00-ref", 1), ("s01-stub", 2)]
    with pytest.raises(LmcourseError, match="unknown submissions: nobody"):
        grade_batch(unit, tmp_path / "subs", tmp_path / "out", sandbox="local", regrade=["nobody"])


def test_kill_9_mid_batch_then_resume(fast_course: Path, mini_trees: dict[str, Path], tmp_path: Path) -> None:
    """Killed with SIGKILL mid-way, the batch resumes: every submission graded exactly once, same scores."""
    expected = make_submissions(mini_trees, tmp_path / "subs", ["ref", "stub", "half", "ref", "stub", "ref", "stub", "ref", "half", "ref"])
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "lmcourse.grader", "--course", str(fast_course), "grade", str(tmp_path / "subs"),
           "--unit", "toy", "--sandbox", "local", "--out", str(out), "-j", "2", "--json"]
    first = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and _done(out) < 3:
        time.sleep(0.2)
    assert _done(out) >= 3, "the batch never got going"
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    time.sleep(1)
    assert _done(out) < len(expected), "killed too late to prove anything"
    # Pool workers and their pytest sessions die with the batch: nothing goes on grading unseen.
    assert _leftovers(out, wait_s=15) == []
    subprocess.run(cmd, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300)
    with sqlite3.connect(out / "journal.sqlite") as db:
        rows = {r[0]: r[1:] for r in db.execute("SELECT id, state, completions, score FROM submissions")}
    assert set(rows) == set(expected)
    for sid, score in expected.items():
        state, completions, got = rows[sid]
        assert state == "done" and completions == 1, (sid, rows[sid])
        if score >= 0:
            assert got == score
    halves = {rows[s][2] for s in expected if s.endswith("half")}
    assert len(halves) == 1  # same submission, same score, whether or not it was interrupted


def _leftovers(out: Path, wait_s: float) -> list[str]:
    """Command lines of processes still working for the batch in ``out``, after waiting for them to go."""
    deadline = time.monotonic() + wait_s
    while True:
        pids = subprocess.run(["pgrep", "-f", str(out)], capture_output=True, text=True).stdout.split()
        if not pids or time.monotonic() > deadline:
            return [Path(f"/proc/{p}/cmdline").read_text().replace("\0", " ")[:200] for p in pids if Path(f"/proc/{p}").exists()]
        time.sleep(0.2)


def _done(out: Path) -> int:
    if not (out / "journal.sqlite").exists():
        return 0
    try:
        with sqlite3.connect(out / "journal.sqlite", timeout=1) as db:
            return db.execute("SELECT count(*) FROM submissions WHERE state = 'done'").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def test_discover_folder_and_csv(tmp_path: Path) -> None:
    (tmp_path / "alice.zip").write_bytes(b"x")
    (tmp_path / "bob").mkdir()
    (tmp_path / ".hidden").mkdir()
    (tmp_path / "notes.txt").write_text("not a submission")
    assert [s.id for s in discover(tmp_path)] == ["alice", "bob"]
    sheet = tmp_path / "subs.csv"
    sheet.write_text("student,path,submitted_at\nalice,alice.zip,2027-01-21T10:00:00-08:00\nbob,bob,\n")
    subs = discover(sheet)
    assert subs[0].submitted is not None and subs[0].path == tmp_path / "alice.zip" and subs[1].submitted is None
    sheet.write_text("student,path,submitted_at\nalice,alice.zip,yesterday\n")
    with pytest.raises(LmcourseError, match="subs.csv:2: submitted_at 'yesterday'"):
        discover(sheet)
    sheet.write_text("name,file\n")
    with pytest.raises(LmcourseError, match="needs the columns"):
        discover(sheet)
