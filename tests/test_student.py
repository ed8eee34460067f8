"""The student's side, end to end through the real CLI: check and submit inside a handout."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest

from lmcourse.grader.course import Course
from lmcourse.grader.handout.build import build

from .helpers import run_lmcourse

pytestmark = pytest.mark.slow


@pytest.fixture
def handout(course: Course, tmp_path: Path) -> Path:
    return build(course.unit("toy"), tmp_path / "out").folder


def solve(handout: Path, course: Course) -> None:
    """Play a student who finished every problem: copy the reference in."""
    unit = course.unit("toy")
    shutil.rmtree(handout / "mini_toy")
    shutil.copytree(unit.reference_dir, handout / "mini_toy")
    shutil.copy(unit.adapters, handout / "tests/adapters.py")


def test_check_on_stubs_fails_every_problem(handout: Path) -> None:
    proc = run_lmcourse("check", "--json", "-n", "1", cwd=handout)
    assert proc.returncode == 1, proc.stderr
    report = json.loads(proc.stdout)
    assert report["earned"] == 0 and report["possible"] == 12
    assert [p["name"] for p in report["problems"]] == ["softmax", "word_counts", "running_mean", "fetch"]
    for problem in report["problems"]:
        assert problem["passed"] == 0 and problem["total"] > 0
        assert "NotImplementedError" in problem["first_failure"]


def test_check_table_from_a_subfolder(handout: Path) -> None:
    proc = run_lmcourse("check", "-n", "1", cwd=handout / "mini_toy")
    assert proc.returncode == 1
    assert "softmax" in proc.stdout and "0/4" in proc.stdout and "public tests: 0/12 points" in proc.stdout


def test_check_passes_once_solved_and_filters_by_problem(handout: Path, course: Course) -> None:
    solve(handout, course)
    proc = run_lmcourse("check", "--json", cwd=handout)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads(proc.stdout)["earned"] == 12
    one = json.loads(run_lmcourse("check", "--json", "--problem", "fetch", "-n", "1", cwd=handout).stdout)
    assert [(p["name"], p["passed"], p["total"]) for p in one["problems"]] == [("fetch", 2, 2)]


def test_partial_credit_by_problem(handout: Path, course: Course) -> None:
    solve(handout, course)
    text = (handout / "mini_toy/text.py").read_text()
    (handout / "mini_toy/text.py").write_text(text.replace("def word_counts(", "def _unused(") + "\n\ndef word_counts(*a, **k):\n    raise RuntimeError(\"lost my work\")\n")
    report = json.loads(run_lmcourse("check", "--json", "-n", "1", cwd=handout).stdout)
    by_name = {p["name"]: p for p in report["problems"]}
    # Its normalize tests still pass: partial credit is the passed share of the test weights.
    assert 0 < by_name["word_counts"]["earned"] < 3 and by_name["softmax"]["earned"] == 4
    assert report["earned"] == 9 + by_name["word_counts"]["earned"]
    assert "lost my work" in by_name["word_counts"]["first_failure"]


def test_unknown_problem_and_outside_a_handout_are_usage_errors(handout: Path, tmp_path: Path) -> None:
    proc = run_lmcourse("check", "--problem", "nope", cwd=handout)
    assert proc.returncode == 2 and "'nope' is not a tested problem" in proc.stderr
    assert "Traceback" not in proc.stderr
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    proc = run_lmcourse("check", cwd=outside)
    assert proc.returncode == 2 and "not inside a handout" in proc.stderr and "Traceback" not in proc.stderr


def test_submit_packs_only_owned_files(handout: Path, course: Course) -> None:
    solve(handout, course)
    (handout / "mini_toy/__pycache__").mkdir(exist_ok=True)
    (handout / "mini_toy/__pycache__/stats.cpython-311.pyc").write_bytes(b"cache")
    (handout / "mini_toy/checkpoints").mkdir()
    (handout / "mini_toy/checkpoints/model.pt").write_bytes(b"\x80weights")
    (handout / "mini_toy/notes.md").write_text("my notes")
    (handout / "mini_toy/link.py").symlink_to("/etc/hostname")
    (handout / "scratch.py").write_text("not owned")
    proc = run_lmcourse("submit", "--json", cwd=handout)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(proc.stdout)
    assert result["check"]["earned"] == 12
    with zipfile.ZipFile(result["submission"]) as zf:
        names = set(zf.namelist())
        manifest = json.loads(zf.read(".lmcourse/submission.json"))
    assert "tests/adapters.py" in names and "mini_toy/stats.py" in names and "mini_toy/notes.md" in names
    assert not any("__pycache__" in n or n.endswith(".pt") or "link" in n or "scratch" in n for n in names)
    assert set(manifest["files"]) == names - {".lmcourse/submission.json"}
    assert manifest["unit"] == "toy" and manifest["check"]["ok"] is True


def test_submit_reports_failures_and_still_writes_the_zip(handout: Path, tmp_path: Path) -> None:
    target = tmp_path / "mine.zip"
    proc = run_lmcourse("submit", "--out", target, "-h", cwd=handout)
    assert "--no-check" in proc.stdout
    proc = run_lmcourse("submit", "--out", target, cwd=handout)
    assert proc.returncode == 1  # the check found failures
    assert target.is_file() and "wrote" in proc.stdout


def test_submit_over_the_size_cap_is_refused(handout: Path) -> None:
    (handout / "mini_toy/huge.txt").write_bytes(b"x" * (3 * 1024 * 1024))  # cap is 2 MiB
    proc = run_lmcourse("submit", "--no-check", cwd=handout)
    assert proc.returncode == 2
    assert "over the 2 MiB cap" in proc.stderr and "mini_toy/huge.txt" in proc.stderr
    assert not (handout / "submission.zip").exists()
