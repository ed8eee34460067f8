"""The math grader and the reward functions on a table of tricky answers (fast and slow paths)."""

from __future__ import annotations

import pytest

from reference.alignment.math_grader import is_equivalent, last_boxed, normalize_answer
from reference.alignment.rewards import question_only_reward_fn, r1_zero_reward_fn

from .reward_table import EQUIVALENCE_TABLE, QUESTION_ONLY_TABLE, R1_ZERO_TABLE

pytest.importorskip("math_verify")


def test_the_table_is_big_enough_to_mean_something():
    assert len(EQUIVALENCE_TABLE) >= 50
    assert sum(not equal for _, _, equal in EQUIVALENCE_TABLE) >= 20  # wrong answers must stay wrong


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("answer, truth, equal", EQUIVALENCE_TABLE)
def test_equivalence(answer, truth, equal, fast):
    assert is_equivalent(answer, truth, fast=fast) is equal


@pytest.mark.parametrize("response, truth, format_reward, reward", R1_ZERO_TABLE)
def test_r1_zero_reward(response, truth, format_reward, reward):
    scores = r1_zero_reward_fn(response, truth)
    assert set(scores) == {"format_reward", "answer_reward", "reward"}
    assert (scores["format_reward"], scores["reward"], scores["answer_reward"]) == (format_reward, reward, reward)


@pytest.mark.parametrize("response, truth, format_reward, reward", QUESTION_ONLY_TABLE)
def test_question_only_reward(response, truth, format_reward, reward):
    scores = question_only_reward_fn(response, truth)
    assert (scores["format_reward"], scores["reward"]) == (format_reward, reward)


def test_boxed_extraction_balances_braces():
    assert last_boxed("so \\boxed{\\frac{1}{2}} and") == "\\frac{1}{2}"
    assert last_boxed("\\boxed{a} \\boxed{b}") == "b"
    assert last_boxed("\\boxed{unclosed") is None
    assert normalize_answer("\\boxed{1,000 dollars}") == "1000"


def test_numeric_ground_truths_are_accepted():
    assert r1_zero_reward_fn("</think> <answer>42</answer>", 42)["reward"] == 1.0
    assert r1_zero_reward_fn("</think> <answer>0.5</answer>", 0.5)["reward"] == 1.0
