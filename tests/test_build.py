"""The handout builder on the miniature course: what ships, how, and byte for byte."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import nbformat
import pytest

from lmcourse.grader.course import Course
from lmcourse.grader.errors import LmcourseError
from lmcourse.grader.handout.archive import sha256_file
from lmcourse.grader.handout.build import build

from .helpers import invoke


@pytest.fixture
def handout(course: Course, tmp_path: Path) -> Path:
    return build(course.unit("toy"), tmp_path / "out").folder


def test_layout(handout: Path) -> None:
    names = {p.relative_to(handout).as_posix() for p in handout.rglob("*") if p.is_file()}
    assert {"README.md", "pyproject.toml", ".gitignore", ".lmcourse/unit.json", "tests/adapters.py"} <= names
    assert "mini_toy/stats.py" in names and "fixtures/numbers.json" in names
    assert "mini_toy/_answers.py" not in names  # handout.omit
    assert not any(n.startswith("tests/hidden") for n in names)
    info = json.loads((handout / ".lmcourse/unit.json").read_text())
    assert info["package"] == "mini_toy" and info["student_files"] == ["mini_toy/**", "tests/adapters.py"]


def test_regions_become_stubs(handout: Path) -> None:
    stats = (handout / "mini_toy/stats.py").read_text()
    assert "BEGIN SOLUTION" not in stats and "END SOLUTION" not in stats
    assert "logsumexp(scaled)" not in stats
    assert "raise NotImplementedError(\"problem 'softmax': implement softmax\")" in stats
    assert "pass  # TODO(running_mean)" in stats  # stub=pass on that region
    assert '"""Numerically stable softmax' in stats  # docstrings stay
    compile(stats, "stats.py", "exec")


def test_stubbed_file_keeps_signatures_only(handout: Path) -> None:
    scaffold = (handout / "mini_toy/scaffold.py").read_text()
    assert "def top_words(" in scaffold and "def render_counts(" in scaffold
    assert "sorted(counts.items()" not in scaffold
    assert scaffold.count("raise NotImplementedError") == 2


def test_adapters_are_stripped(handout: Path) -> None:
    adapters = (handout / "tests/adapters.py").read_text()
    assert "BEGIN SOLUTION" not in adapters
    assert "raise NotImplementedError" in adapters


def test_notebook_cells_by_tag(handout: Path, course: Course) -> None:
    source = nbformat.read(course.unit("toy").writeup_dir / "analysis.ipynb", as_version=4)
    shipped = nbformat.read(handout / "writeup/analysis.ipynb", as_version=4)
    assert any("hidden" in c.metadata.get("tags", []) for c in source.cells)
    assert not any("hidden" in c.metadata.get("tags", []) for c in shipped.cells)
    assert len(shipped.cells) == len(source.cells) - 1
    for cell in shipped.cells:
        if "solution" in cell.metadata.get("tags", []):
            assert "YOUR CODE HERE" in cell.source or "answer here" in cell.source
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None
    solution_sources = {c.source for c in source.cells if "solution" in c.metadata.get("tags", [])}
    assert not solution_sources & {c.source for c in shipped.cells}


def test_j2_files_are_rendered_and_others_are_not(handout: Path) -> None:
    readme = (handout / "README.md").read_text()
    assert "Mini LM Course" in readme and "Monday 25 January 2027" in readme
    assert "{%" not in readme
    pyproject = (handout / "pyproject.toml").read_text()
    assert 'name = "mini-toy"' in pyproject and "lmcourse>=" in pyproject


def test_zip_is_byte_identical_across_builds_and_places(course_dir: Path, tmp_path: Path) -> None:
    first = build(Course.load(course_dir).unit("toy"), tmp_path / "a")
    elsewhere = tmp_path / "moved"
    shutil.copytree(course_dir, elsewhere)
    second = build(Course.load(elsewhere).unit("toy"), tmp_path / "b")
    assert first.zip_sha256 == second.zip_sha256 == sha256_file(second.zip)
    assert first.manifest.read_bytes() == second.manifest.read_bytes()


def test_manifest_and_zip_match_the_folder(course: Course, tmp_path: Path) -> None:
    result = build(course.unit("toy"), tmp_path / "out")
    lines = result.manifest.read_text().splitlines()
    assert len(lines) == result.files
    for line in lines:
        digest, rel = line.split("  ", 1)
        assert sha256_file(result.folder / rel) == digest
    with zipfile.ZipFile(result.zip) as zf:
        assert sorted(zf.namelist()) == sorted(f"toy/{line.split('  ', 1)[1]}" for line in lines)
        assert {i.date_time for i in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}


def test_shipped_unit_ships_unstripped(course_dir: Path, tmp_path: Path) -> None:
    """A unit that builds on another gets that unit's package whole, markers removed."""
    (course_dir / "reference/extra").mkdir()
    (course_dir / "reference/extra/__init__.py").write_text(
        "def double(x):\n    # BEGIN SOLUTION\n    return 2 * x\n    # END SOLUTION\n"
    )
    (course_dir / "assignments/extra/tests/public").mkdir(parents=True)
    (course_dir / "assignments/extra/unit.yaml").write_text(
        "name: extra\ntitle: Extra\nproblems: [{name: double, points: 1}]\nhandout: {ships: [toy]}\n"
    )
    course_yaml = course_dir / "course.yaml"
    course_yaml.write_text(course_yaml.read_text().replace("units:\n", "units:\n  extra: {}\n"))
    result = build(Course.load(course_dir).unit("extra"), tmp_path / "out")
    stats = (result.folder / "mini_toy/stats.py").read_text()
    assert "scaled = [v / temperature for v in values]" in stats
    assert "BEGIN SOLUTION" not in stats
    assert (result.folder / "mini_toy/_answers.py").is_file()  # its code imports it
    assert "return 2 * x" not in (result.folder / "mini_extra/__init__.py").read_text()


@pytest.mark.parametrize(
    ("source", "line", "words"),
    [
        ("def f():\n    # BEGIN SOLUTION\n    return 1\n", 2, "unclosed"),
        ("# BEGIN SOLUTION\nX = 1\n# END SOLUTION\n", 1, "function"),
        ("def f():\n    # BEGIN SOLUTION\n    # BEGIN SOLUTION\n    return 1\n    # END SOLUTION\n", 3, "nest"),
    ],
)
def test_malformed_markers_name_file_and_line(course_dir: Path, tmp_path: Path, source: str, line: int, words: str) -> None:
    bad = course_dir / "reference/toy/broken.py"
    bad.write_text(source)
    result = invoke("--course", course_dir, "handout", "build", "--out", tmp_path / "out")
    assert result.exit_code == 2
    assert f"broken.py:{line}:" in result.output
    assert words in result.output.lower()
    assert "Traceback" not in result.output


def test_unknown_problem_option_is_an_error(course_dir: Path, tmp_path: Path) -> None:
    (course_dir / "reference/toy/typo.py").write_text(
        "def f():\n    # BEGIN SOLUTION problem=sofmax\n    return 1\n    # END SOLUTION\n"
    )
    result = invoke("--course", course_dir, "handout", "build", "--out", tmp_path / "out")
    assert result.exit_code == 2 and "typo.py:2:" in result.output and "sofmax" in result.output


def test_refuses_to_overwrite_a_folder_that_is_not_a_handout(course: Course, tmp_path: Path) -> None:
    precious = tmp_path / "out" / "toy"
    precious.mkdir(parents=True)
    (precious / "thesis.tex").write_text("years of work")
    with pytest.raises(LmcourseError, match="not a handout"):
        build(course.unit("toy"), tmp_path / "out")
    assert (precious / "thesis.tex").read_text() == "years of work"


def test_rebuild_replaces_an_earlier_handout(course: Course, tmp_path: Path) -> None:
    first = build(course.unit("toy"), tmp_path / "out")
    (first.folder / "stale.txt").write_text("from an old build")
    build(course.unit("toy"), tmp_path / "out")
    assert not (first.folder / "stale.txt").exists()


def test_cli_build_json(course_dir: Path, tmp_path: Path) -> None:
    result = invoke("--course", course_dir, "handout", "build", "--out", tmp_path / "out", "--json")
    assert result.exit_code == 0
    [entry] = json.loads(result.output)
    assert entry["unit"] == "toy" and Path(entry["zip"]).is_file() and entry["files"] > 10
