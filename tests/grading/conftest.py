"""Fixtures for grading tests: sandbox backends (skipped only where unavailable) and built trees."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lmcourse.grader.course import Course
from lmcourse.grader.errors import LmcourseError
from lmcourse.grader.handout.build import build
from lmcourse.grader.sandbox.registry import get_sandbox

from ..helpers import MINICOURSE


@pytest.fixture(params=["local", "docker"])
def sandbox(request: pytest.FixtureRequest) -> str:
    try:
        get_sandbox(request.param)
    except LmcourseError as exc:
        pytest.skip(str(exc))
    return request.param


@pytest.fixture(scope="session")
def mini_trees(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The mini course's stubbed handout and its solution tree, built once."""
    out = tmp_path_factory.mktemp("mini-trees")
    unit = Course.load(MINICOURSE).unit("toy")
    return {"stubs": build(unit, out).folder, "solution": build(unit, out, solutions=True).folder}


@pytest.fixture
def solution(mini_trees: dict[str, Path], tmp_path: Path) -> Path:
    """A private copy of the reference solution, to edit into a partial submission."""
    return Path(shutil.copytree(mini_trees["solution"], tmp_path / "submission"))
