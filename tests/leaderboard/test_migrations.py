"""The schema's history on SQLite and PostgreSQL: every revision upgrades to the newest, which matches the models."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from lmcourse.grader.errors import LmcourseError
from lmcourse.leaderboard import migrations
from lmcourse.leaderboard.db import Base, make_engine
from lmcourse.leaderboard.store import Store

from .factories import DAY, RULES, FixedEvaluator, submission

REVISIONS = [script.revision for script in ScriptDirectory.from_config(migrations.alembic_config()).walk_revisions()]
TABLES = {"boards", "students", "tokens", "submissions", "results"}


def schema_differences(url: str) -> list[object]:
    """What Alembic's autogenerate would change to make the database match the models ([] when none)."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True}), Base.metadata)
    finally:
        engine.dispose()


def test_open_upgrades_an_empty_database_to_the_models(db_url: str) -> None:
    with Store.open(db_url) as store:
        assert store.schema_version == migrations.head()
    assert schema_differences(db_url) == []


@pytest.mark.parametrize("revision", REVISIONS)
def test_a_database_at_any_revision_upgrades_cleanly(db_url: str, revision: str) -> None:
    engine = make_engine(db_url)
    migrations.upgrade(engine, revision)
    with engine.connect() as connection:
        assert migrations.current(connection) == revision
    engine.dispose()
    with Store.open(db_url) as store:
        assert store.schema_version == migrations.head()
    assert schema_differences(db_url) == []


def test_reopening_keeps_the_data(db_url: str) -> None:
    with Store.open(db_url) as store:
        store.add_board("basics", "basics", RULES)
        token = store.add_student("ann", "Ann")
        entry = store.submit("basics", token, submission(1), FixedEvaluator(), now=DAY)
    with Store.open(db_url) as store:
        assert store.authenticate(token).student_id == "ann"
        assert store.ranking("basics") == [entry]


def test_downgrade_to_base_and_back(db_url: str) -> None:
    engine = make_engine(db_url)
    migrations.upgrade(engine)
    with engine.begin() as connection:
        command.downgrade(migrations.alembic_config(connection), "base")
        assert TABLES.isdisjoint(inspect(connection).get_table_names())
    migrations.upgrade(engine)
    with engine.connect() as connection:
        assert TABLES <= set(inspect(connection).get_table_names())
    engine.dispose()


def test_a_database_newer_than_the_code_is_refused(db_url: str) -> None:
    Store.open(db_url).close()
    engine = make_engine(db_url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = 'f00d'"))
    engine.dispose()
    with pytest.raises(LmcourseError, match="schema revision f00d, newer than this lmcourse knows"):
        Store.open(db_url)


def test_an_unreachable_database_is_one_sentence(tmp_path: object) -> None:
    with pytest.raises(LmcourseError, match=r"^cannot open the leaderboard database postgresql\+psycopg://lb:\*\*\*@"):
        Store.open("postgresql://lb:secret@/nodb?host=/nonexistent-socket-dir")
    with pytest.raises(LmcourseError, match="runs on SQLite or PostgreSQL, not mysql"):
        Store.open("mysql://x@localhost/db")
    with pytest.raises(LmcourseError, match="is not a database URL"):
        Store.open("leaderboard.db")
