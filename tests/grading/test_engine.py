"""One submission through intake, compose, execute, collect and score, in each real sandbox."""

from __future__ import annotations

import datetime as dt
import json
import zipfile
from pathlib import Path

import pytest

from lmcourse.grader.course import Course
from lmcourse.grader.errors import LmcourseError, SubmissionError
from lmcourse.grader.grading.engine import grade_one
from lmcourse.grader.grading.score import HIDDEN_WRONG

from ..helpers import MINICOURSE, invoke

pytestmark = pytest.mark.slow


@pytest.fixture
def unit():  # type: ignore[no-untyped-def]
    return Course.load(MINICOURSE).unit("toy")


def test_reference_earns_everything(unit, solution: Path, sandbox: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    graded = grade_one(solution, unit, tmp_path / "out", sandbox=sandbox, workers=2)
    assert graded.scored.score == 12 and graded.scored.possible == 12
    assert not graded.scored.anomalies and not graded.scored.tampered
    results = json.loads((tmp_path / "out/results.json").read_text())
    assert results["score"] == 12
    assert sum(t["max_score"] for t in results["tests"]) == pytest.approx(12)
    assert any(t["name"] == "analysis (written)" and "pending" in t["output"] for t in results["tests"])
    assert (tmp_path / "out/junit.xml").read_text().count("<testcase") == 30  # 28 tests + 2 canaries


def test_stubs_earn_nothing_and_say_why(unit, mini_trees: dict[str, Path], sandbox: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    graded = grade_one(mini_trees["stubs"], unit, tmp_path / "out", sandbox=sandbox, workers=1)
    assert graded.scored.score == 0
    failed = [t for t in graded.results.tests if t.status == "failed"]
    assert len(failed) == 28 and all("NotImplementedError" in (t.output or "") for t in failed)


def test_hidden_failures_never_show_expected_values(unit, solution: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A wrong answer on a hidden test shows 'wrong answer', not the assertion that holds the answer."""
    stats = solution / "mini_toy/stats.py"
    stats.write_text(stats.read_text().replace("return [math.exp(v - log_total) for v in scaled]", "return [0.5 for v in scaled]"))
    graded = grade_one(solution, unit, tmp_path / "out", sandbox="local", workers=1)
    hidden = [t for t in graded.results.tests if "(hidden)" in t.name and t.status == "failed"]
    public = [t for t in graded.results.tests if "(hidden)" not in t.name and t.status == "failed"]
    assert hidden and public
    assert all(t.output == HIDDEN_WRONG for t in hidden if t.name.startswith("softmax"))
    assert any("assert" in (t.output or "").lower() for t in public)  # public tests may explain
    assert 0 < graded.scored.problems[0].earned < 4 and graded.scored.score == pytest.approx(8 + graded.scored.problems[0].earned)


def test_late_policy(unit, solution: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    due = unit.course.config.units["toy"].due
    on_time = grade_one(solution, unit, tmp_path / "a", sandbox="local", submitted=due + dt.timedelta(minutes=10))
    two_days = grade_one(solution, unit, tmp_path / "b", sandbox="local", submitted=due + dt.timedelta(days=1, hours=2))
    too_late = grade_one(solution, unit, tmp_path / "c", sandbox="local", submitted=due + dt.timedelta(days=4))
    assert on_time.scored.score == 12
    assert two_days.scored.days_late == 2 and two_days.scored.score == pytest.approx(12 * 0.8)
    assert too_late.scored.score == 0 and too_late.scored.raw == 12


def test_zip_submission(unit, solution: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    archive = tmp_path / "sub.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in solution.rglob("*"):
            if path.is_file():
                zf.write(path, path.relative_to(solution).as_posix())
    assert grade_one(archive, unit, tmp_path / "out", sandbox="local").scored.score == 12


@pytest.mark.parametrize(
    ("content", "words"),
    [(b"PK\x03\x04 truncated", "not a readable zip"), (b"hello", "not a zip or tar archive")],
)
def test_bad_archives_are_one_sentence(unit, tmp_path: Path, content: bytes, words: str) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.zip"
    bad.write_bytes(content)
    with pytest.raises(SubmissionError, match=words):
        grade_one(bad, unit, tmp_path / "out", sandbox="local")


def test_cli_errors_exit_2_without_traceback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = [
        (["grade", empty, "--unit", "toy", "--sandbox", "local"], "holds no submissions"),
        (["grade", empty, "--unit", "nope", "--sandbox", "local"], "unit 'nope' is not enabled"),
    ]
    for args, words in cases:
        result = invoke("--course", MINICOURSE, *args, "--out", tmp_path / "out")
        assert result.exit_code == 2 and words in result.output and "Traceback" not in result.output
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-daemon.sock")
    result = invoke("--course", MINICOURSE, "grade", empty, "--unit", "toy", "--sandbox", "docker", "--out", tmp_path / "out")
    assert result.exit_code == 2 and "Docker daemon" in result.output


def test_gpu_unit_without_gpu(unit, solution: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    gpu_unit = unit.__class__(unit.course, unit.config.model_copy(update={"limits": unit.config.limits.model_copy(update={"gpu": True})}), unit.dir)
    with pytest.raises(LmcourseError, match="needs a GPU"):
        grade_one(solution, gpu_unit, tmp_path / "out", sandbox="local")


def test_a_submission_that_hangs_on_import_fails_fast(unit, solution: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """After three hung calls in a row the rest fail at once instead of each waiting out its limit."""
    adapters = solution / "tests/adapters.py"
    adapters.write_text(adapters.read_text() + "\nimport time\ntime.sleep(3600)\n")
    fast = unit.config.model_copy(update={"limits": unit.config.limits.model_copy(update={"test_timeout_s": 2})})
    graded = grade_one(solution, unit.__class__(unit.course, fast, unit.dir), tmp_path / "out", sandbox="local", workers=1)
    outputs = [t.output or "" for t in graded.results.tests if t.status == "failed"]
    assert graded.scored.score == 0 and len(outputs) == 28
    assert sum("ran past the 2 s limit" in o for o in outputs) == 3
    assert sum("not run: the student's code died or hung before answering" in o for o in outputs) == 25
    assert graded.scored.execution_time < 30


def test_serial_tests_run_alone_after_the_others(course_dir: Path, tmp_path: Path, mini_trees: dict[str, Path]) -> None:
    """Tests marked serial (distributed ones) run in a second phase without xdist, beside nothing."""
    (course_dir / "assignments/toy/tests/hidden/test_serial.py").write_text(
        "import os\n\nimport pytest\n\n\n@pytest.mark.serial\n@pytest.mark.problem('softmax')\n"
        "def test_runs_alone(student):\n"
        "    assert os.environ.get('PYTEST_XDIST_WORKER') is None\n"
        "    assert student.run_softmax(values=[0.0, 0.0]) == [0.5, 0.5]\n"
    )
    unit = Course.load(course_dir).unit("toy")
    graded = grade_one(mini_trees["solution"], unit, tmp_path / "out", sandbox="local", workers=2)
    serial = [t for t in graded.scored.tests if t.nodeid.endswith("test_runs_alone")]
    assert [t.outcome for t in serial] == ["passed"] and graded.scored.score == 12
    assert (tmp_path / "out/junit-serial.xml").read_text().count("<testcase") == 1
    assert (tmp_path / "out/junit.xml").read_text().count("<testcase") == 30
