"""Public tests of softmax and running_mean."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from tests import producers

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


def numbers() -> dict:
    return json.loads((FIXTURES / "numbers.json").read_text(encoding="utf-8"))


def close(actual: list[float], expected: list[float], tol: float = 1e-9) -> bool:
    return len(actual) == len(expected) and all(math.isclose(a, e, rel_tol=tol, abs_tol=tol) for a, e in zip(actual, expected))


@pytest.mark.problem("softmax")
def test_softmax_matches_definition(student):
    logits = numbers()["logits"]
    exps = [math.exp(v) for v in logits]
    expected = [e / sum(exps) for e in exps]
    assert close(student.run_softmax(values=logits), expected)


@pytest.mark.problem("softmax", weight=2.0)
def test_softmax_large_inputs_do_not_overflow(student):
    # [1000, 999, 998] is [2, 1, 0] shifted: the same distribution, e^0 : e^-1 : e^-2.
    weights = [1.0, math.exp(-1.0), math.exp(-2.0)]
    expected = [w / sum(weights) for w in weights]
    assert close(student.run_softmax(values=numbers()["large_logits"]), expected)


@pytest.mark.problem("softmax")
def test_log_softmax(student):
    logits = numbers()["logits"]
    log_z = math.log(sum(math.exp(v) for v in logits))
    assert close(student.run_softmax(values=logits, log=True), [v - log_z for v in logits])


@pytest.mark.problem("softmax")
def test_softmax_temperature(student):
    logits = numbers()["logits"]
    exps = [math.exp(v / 2.0) for v in logits]
    assert close(student.run_softmax(values=logits, temperature=2.0), [e / sum(exps) for e in exps])


@pytest.mark.problem("running_mean")
def test_running_mean_trace(student):
    stream = numbers()["stream"]
    expected = [sum(stream[: i + 1]) / (i + 1) for i in range(len(stream))]
    assert close(student.run(producers.running_mean_trace, values=stream), expected)


@pytest.mark.problem("running_mean")
def test_running_mean_count_and_mean(student):
    state = student.run(producers.running_mean_state, values=numbers()["stream"])
    assert state["count"] == 6
    assert math.isclose(float(state["mean"]), 18.0)


@pytest.mark.problem("running_mean", weight=2.0)
def test_running_mean_merge(student):
    out = student.run(producers.running_mean_merge, left=[1.0, 2.0, 3.0], right=[10.0, 20.0])
    assert out["count"] == 5
    assert math.isclose(out["mean"], 36.0 / 5)
    assert out["left"] == [3, 2.0] and out["right"] == [2, 15.0], "merge must not change its inputs"
