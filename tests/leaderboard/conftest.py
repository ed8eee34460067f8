"""Leaderboard fixtures: a store opened on each backend's database (``db_url``, tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lmcourse.leaderboard.store import Store


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    """A store on ``db_url``, migrated to the newest schema."""
    with Store.open(db_url) as opened:
        yield opened
