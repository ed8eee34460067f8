"""Shared fixtures: a private copy of the miniature course."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lmcourse.grader.course import Course

from .helpers import MINICOURSE


@pytest.fixture
def course_dir(tmp_path: Path) -> Path:
    """A writable copy of tests/minicourse that a test may break."""
    dest = tmp_path / "course"
    shutil.copytree(MINICOURSE, dest, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


@pytest.fixture
def course(course_dir: Path) -> Course:
    return Course.load(course_dir)
