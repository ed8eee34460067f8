"""Shared fixtures: a private copy of the miniature course, and a database URL per backend.

``db_url`` runs a test twice: on SQLite (a file in the test's tmp folder) and on PostgreSQL (a
fresh database in a private cluster). The cluster starts once per test session -- under
pytest-xdist once per worker, each in its own folder with its own socket and no TCP port, so
workers never share or race for anything -- and stops when the session ends. Without PostgreSQL
installed the PostgreSQL half fails with the command that installs it: CI must exercise both.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from lmcourse.grader.course import Course

from .helpers import MINICOURSE
from .postgres import PostgresCluster, PostgresMissing


@pytest.fixture
def course_dir(tmp_path: Path) -> Path:
    """A writable copy of tests/minicourse that a test may break."""
    dest = tmp_path / "course"
    shutil.copytree(MINICOURSE, dest, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


@pytest.fixture
def course(course_dir: Path) -> Course:
    return Course.load(course_dir)


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    try:
        cluster = PostgresCluster()
    except PostgresMissing as exc:
        pytest.fail(str(exc), pytrace=False)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database's URL, on SQLite and then on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    cluster: PostgresCluster = request.getfixturevalue("postgres_cluster")
    name = cluster.create_database()
    try:
        yield cluster.url(name)
    finally:
        cluster.drop_database(name)  # WITH (FORCE): a test that leaked a connection does not block this
