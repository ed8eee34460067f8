"""Leaderboard fixtures: a database URL for each backend, and a store opened on it.

``db_url`` runs a test twice: on SQLite (a file in the test's tmp folder) and on PostgreSQL (a
fresh database in a private cluster). The cluster starts once per test session -- under
pytest-xdist once per worker, each in its own folder with its own socket and no TCP port, so
workers never share or race for anything -- and stops when the session ends. Without PostgreSQL
installed the PostgreSQL half fails with the command that installs it: CI must exercise both.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lmcourse.leaderboard.store import Store

from ..postgres import PostgresCluster, PostgresMissing

BACKENDS = ["sqlite", "postgresql"]


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


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database's URL, on SQLite and then on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'leaderboard.db'}"
        return
    cluster: PostgresCluster = request.getfixturevalue("postgres_cluster")
    name = cluster.create_database()
    try:
        yield cluster.url(name)
    finally:
        cluster.drop_database(name)  # WITH (FORCE): a test that leaked a connection does not block this


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    """A store on ``db_url``, migrated to the newest schema."""
    with Store.open(db_url) as opened:
        yield opened
