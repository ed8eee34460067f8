"""Hidden tests of softmax and running_mean: other inputs, edge cases."""

from __future__ import annotations

import math

import pytest

from tests import producers


def close(actual: list[float], expected: list[float], tol: float = 1e-9) -> bool:
    return len(actual) == len(expected) and all(math.isclose(a, e, rel_tol=tol, abs_tol=tol) for a, e in zip(actual, expected))


@pytest.mark.problem("softmax")
def test_softmax_single_value(student):
    assert close(student.run_softmax(values=[-3.5]), [1.0])


@pytest.mark.problem("softmax")
def test_softmax_very_negative_inputs(student):
    # [-1000, -1001] is [1, 0] shifted down by 1001.
    weights = [math.e, 1.0]
    assert close(student.run_softmax(values=[-1000.0, -1001.0]), [w / sum(weights) for w in weights])


@pytest.mark.problem("softmax", weight=2.0)
def test_log_softmax_stays_finite(student):
    # log(1 + e^-10000) is 0 in floating point: the exact answer is representable.
    assert student.run_softmax(values=[0.0, -10000.0], log=True) == [0.0, -10000.0]


@pytest.mark.problem("softmax")
def test_log_softmax_with_temperature(student):
    values = [(i * 0.37) % 5 - 2 for i in range(50)]
    scaled = [v / 0.5 for v in values]
    log_z = math.log(sum(math.exp(v) for v in scaled))
    assert close(student.run_softmax(values=values, temperature=0.5, log=True), [v - log_z for v in scaled])


@pytest.mark.problem("running_mean")
def test_running_mean_empty(student):
    assert student.run(producers.running_mean_state, values=[]) == {"count": 0, "mean": "nan"}


@pytest.mark.problem("running_mean")
def test_running_mean_long_stream(student):
    values = [float((i * 7) % 11 - 5) for i in range(200)]
    expected = [math.fsum(values[: i + 1]) / (i + 1) for i in range(len(values))]
    assert close(student.run(producers.running_mean_trace, values=values), expected)


@pytest.mark.problem("running_mean")
def test_running_mean_combine_is_static(student):
    assert math.isclose(student.run(producers.running_mean_combine, mean_a=2.0, count_a=3, mean_b=6.0, count_b=1), 3.0)
    assert student.run(producers.running_mean_combine, mean_a=0.0, count_a=0, mean_b=0.0, count_b=0) == 0.0


@pytest.mark.problem("running_mean")
def test_running_mean_merge_with_empty(student):
    out = student.run(producers.running_mean_merge, left=[], right=[5.0, 7.0])
    assert out["count"] == 2
    assert math.isclose(out["mean"], 6.0)
