"""course.yaml and unit.yaml: validation, one-sentence errors, the JSON Schema."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lmcourse.grader.config import CourseConfig, UnitConfig, load_yaml_model
from lmcourse.grader.course import Course
from lmcourse.grader.errors import ConfigError

from .helpers import invoke


def test_minicourse_loads(course: Course) -> None:
    unit = course.unit("toy")
    assert unit.package == "mini_toy"
    assert unit.limits.test_timeout_s == 10  # unit override
    assert unit.limits.pids == 64  # course default
    assert unit.config.total_points == 14
    assert unit.student_files == ["mini_toy/**", "tests/adapters.py"]


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: [unclosed\n", "line 2 is not valid YAML"),
        ("- a\n- b\n", "expected a mapping"),
        ("name: x\nterm: t\npackage_prefix: ok\nunits: {}\nlimts: {}\n", "unknown field 'limts'"),
        ("name: x\nterm: t\nunits: {}\n", "field 'package_prefix' is required but missing"),
        ("name: x\nterm: t\npackage_prefix: Bad-Name\nunits: {}\n", "field 'package_prefix': string should match pattern"),
        ("name: x\nterm: t\npackage_prefix: p\nunits: {}\nlimits: {memory_mb: lots}\n", "field 'limits.memory_mb': input should be a valid integer"),
        (
            "name: x\nterm: t\npackage_prefix: p\nunits:\n  a: {release: 2027-02-01, due: 2027-01-01}\n",
            "field 'units.a': release must come before due",
        ),
    ],
)
def test_bad_course_file_is_one_sentence(tmp_path: Path, text: str, expected: str) -> None:
    path = _write(tmp_path / "course.yaml", text)
    with pytest.raises(ConfigError) as info:
        load_yaml_model(path, CourseConfig)
    message = str(info.value)
    assert message.startswith(str(path))
    assert expected in message
    assert "\n" not in message and "Traceback" not in message


def test_unit_rejects_duplicate_problems(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "unit.yaml",
        "name: u\ntitle: U\nproblems:\n  - {name: a, points: 1}\n  - {name: a, points: 2}\n",
    )
    with pytest.raises(ConfigError, match="problem 'a' is listed twice"):
        load_yaml_model(path, UnitConfig)


def test_unit_name_must_match_folder(course_dir: Path) -> None:
    unit_yaml = course_dir / "assignments/toy/unit.yaml"
    unit_yaml.write_text(unit_yaml.read_text().replace("name: toy", "name: other"))
    with pytest.raises(ConfigError, match="field 'name' is 'other' but the folder is 'toy'"):
        Course.load(course_dir).unit("toy")


def test_bad_yaml_through_the_cli_exits_2_without_traceback(course_dir: Path, tmp_path: Path) -> None:
    (course_dir / "course.yaml").write_text("name: [oops\n")
    result = invoke("--course", course_dir, "handout", "build", "--out", tmp_path / "out")
    assert result.exit_code == 2
    assert "course.yaml" in result.output and "not valid YAML" in result.output
    assert "Traceback" not in result.output


def test_unknown_unit_is_a_usage_error(course_dir: Path, tmp_path: Path) -> None:
    result = invoke("--course", course_dir, "handout", "build", "nope", "--out", tmp_path)
    assert result.exit_code == 2
    assert "unit 'nope' is not enabled" in result.output and "enabled: toy" in result.output


def test_schema_prints_both_files() -> None:
    result = invoke("schema", "--json")
    assert result.exit_code == 0
    schemas = json.loads(result.output)
    assert set(schemas) == {"course.yaml", "unit.yaml"}
    assert "package_prefix" in schemas["course.yaml"]["properties"]
    problem = schemas["unit.yaml"]["$defs"]["Problem"]
    assert set(problem["properties"]["kind"].get("enum", [])) or "$ref" in problem["properties"]["kind"]
    assert schemas["course.yaml"]["$defs"]["Limits"]["properties"]["memory_mb"]["description"]
