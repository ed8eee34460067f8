"""The command line's promises: every verb documented, every verb has --json, exit codes mean something."""

from __future__ import annotations

from pathlib import Path

import click

from lmcourse.grader.cli import cli

from .helpers import invoke, run_lmcourse


def _verbs(group: click.Group, prefix: str = "") -> dict[str, click.Command]:
    verbs: dict[str, click.Command] = {}
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            verbs.update(_verbs(command, f"{prefix}{name} "))
        else:
            verbs[f"{prefix}{name}"] = command
    return verbs


def test_every_verb_has_json_and_a_purpose() -> None:
    verbs = _verbs(cli)
    assert {"schema", "handout build", "handout verify", "check", "submit"} <= set(verbs)
    for name, command in verbs.items():
        assert any("--json" in p.opts for p in command.params), f"{name} has no --json"
        assert command.get_short_help_str().strip(), f"{name} has no help"


def test_top_level_help_lists_each_verb() -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    for verb in cli.commands:
        assert verb in result.output


def test_bad_option_is_exit_2() -> None:
    assert invoke("handout", "build", "--no-such-flag").exit_code == 2


def test_no_course_found_is_one_sentence(tmp_path: Path) -> None:
    proc = run_lmcourse("handout", "build", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") <= 2 and "no course.yaml found" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_version() -> None:
    proc = run_lmcourse("--version", cwd=Path.cwd())
    assert proc.returncode == 0 and "lmcourse, version" in proc.stdout
