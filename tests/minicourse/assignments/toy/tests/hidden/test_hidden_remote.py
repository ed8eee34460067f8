"""Hidden tests of fetch: concurrency, waiting, and that it really is a coroutine."""

from __future__ import annotations

import pytest

from tests import producers

STORE = {"k1": "v1", "k2": "v2", "k3": "v3"}


@pytest.mark.problem("fetch")
def test_fetch_is_a_coroutine_function(student):
    assert student.run(producers.fetch_is_coroutine) is True


@pytest.mark.problem("fetch")
def test_fetch_waits_for_its_delay(student):
    out = student.run(producers.fetch_many_timed, store=STORE, keys=["k2"], delay=0.03)
    assert out["values"] == ["v2"]
    assert out["seconds"] >= 0.025


@pytest.mark.problem("fetch", weight=2.0)
def test_fetch_many_is_concurrent_and_ordered(student):
    keys = ["k3", "k1", "k2"] * 4
    out = student.run(producers.fetch_many_timed, store=STORE, keys=keys, delay=0.02)
    assert out["values"] == [STORE[k] for k in keys]
    # One after another this takes 12 x 0.02 = 0.24 s; concurrently about 0.02 s.
    assert out["seconds"] < 0.15
