"""handout verify: reference passes, stubs fail, and the leak scan catches planted leaks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lmcourse.grader.course import Course
from lmcourse.grader.handout.build import build
from lmcourse.grader.handout.leaks import fingerprints, scan
from lmcourse.grader.handout.verify import verify

from .helpers import invoke

pytestmark = pytest.mark.slow


def test_minicourse_verifies(course: Course) -> None:
    result = verify(course.unit("toy"), workers=1)
    assert result.ok, result.as_json()
    assert result.reference_passed == result.reference_total == 28  # 13 public + 15 hidden
    assert result.stubs_failed == result.stubs_total == 13


def test_cli_verify_json_exit_0(course_dir: Path) -> None:
    result = invoke("--course", course_dir, "handout", "verify", "-n", "1", "--json")
    assert result.exit_code == 0, result.output
    [entry] = json.loads(result.output)
    assert entry["ok"] and entry["leaks"] == []


def test_scan_catches_a_solution_line_planted_in_the_handout(course: Course, tmp_path: Path) -> None:
    unit = course.unit("toy")
    result = build(unit, tmp_path / "out")
    prints = fingerprints(unit)
    assert scan(result.folder, prints) == []
    readme = result.folder / "README.md"
    readme.write_text(readme.read_text() + "\nHint:     scaled = [v / temperature for v in values]\n")
    [leak] = scan(result.folder, prints)
    assert leak.kind == "solution" and leak.file == "README.md"


def test_scan_catches_hidden_test_and_reference_only_text(course: Course, tmp_path: Path) -> None:
    unit = course.unit("toy")
    result = build(unit, tmp_path / "out")
    hidden = next(unit.hidden_tests.glob("test_*.py")).read_text()
    (result.folder / "tests/public/test_copied.py").write_text(hidden)
    (result.folder / "notes.txt").write_text((unit.reference_dir / "_answers.py").read_text())
    kinds = {leak.kind for leak in scan(result.folder, fingerprints(unit))}
    assert kinds == {"hidden test", "reference-only"}


def test_leak_from_the_sources_fails_verify(course_dir: Path) -> None:
    """A writeup that quotes the solution is caught by content, in the folder and in the zip."""
    readme = course_dir / "assignments/toy/writeup/README.md.j2"
    readme.write_text(readme.read_text() + "\n    self._mean += (value - self._mean) / self._count\n")
    result = invoke("--course", course_dir, "handout", "verify", "-n", "1", "--json")
    assert result.exit_code == 1
    [entry] = json.loads(result.output)
    files = {leak["file"] for leak in entry["leaks"]}
    assert files == {"README.md", "toy.zip:toy/README.md"}


def test_a_public_test_that_passes_on_stubs_is_a_breach(course_dir: Path) -> None:
    (course_dir / "assignments/toy/tests/public/test_free.py").write_text(
        "import pytest\n\n@pytest.mark.problem('softmax')\ndef test_free_points(student):\n    assert True\n"
    )
    result = verify(Course.load(course_dir).unit("toy"), workers=1)
    assert not result.ok
    assert [b.split(":")[0] for b in result.stubs_breaches] == ["tests/public/test_free.py"]


def test_unmapped_and_failing_reference_tests_are_reported(course_dir: Path) -> None:
    (course_dir / "assignments/toy/tests/hidden/test_extra.py").write_text(
        "def test_no_problem():\n    pass\n\n"
        "import pytest\n\n@pytest.mark.problem('softmax')\ndef test_wrong(student):\n"
        "    assert student.run_softmax(values=[0.0, 0.0]) == [1.0, 0.0]\n"
    )
    result = verify(Course.load(course_dir).unit("toy"), workers=1)
    assert result.unmapped == ["tests/hidden/test_extra.py::test_no_problem"]
    assert len(result.reference_failures) == 1 and "test_wrong" in result.reference_failures[0]


def test_collection_error_in_handout_is_a_breach(course_dir: Path) -> None:
    (course_dir / "assignments/toy/tests/public/test_broken.py").write_text(
        "from tests.adapters import no_such_adapter\n"
    )
    result = verify(Course.load(course_dir).unit("toy"), workers=1)
    assert any("collection error" in b for b in result.stubs_breaches)
