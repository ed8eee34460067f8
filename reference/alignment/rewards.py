"""Reward functions for RL on math: a format reward and an answer reward, both 0 or 1.

``reward`` is 1 only when both are: a correct number outside the expected format earns nothing,
so the policy cannot drift away from a format the grader can read.
"""

from __future__ import annotations

import re
from typing import Any

from .math_grader import grade, last_boxed

# "... </think> <answer> 42 </answer>": the reasoning is closed, then one answer follows.
R1_ZERO_FORMAT = re.compile(r"</think>\s*<answer>(.*?)</answer>", re.DOTALL)


def _scores(formatted: bool, correct: bool) -> dict[str, float]:
    return {
        "format_reward": float(formatted),
        "answer_reward": float(formatted and correct),
        "reward": float(formatted and correct),
    }


def r1_zero_reward_fn(response: str, ground_truth: str | float | int | list[Any], fast: bool = True) -> dict[str, float]:
    """Reward a response to :data:`~.prompts.R1_ZERO_PROMPT`.

    Format: ``</think>`` then ``<answer> … </answer>`` (the prompt already opened ``<think>``).
    The answer is the text of the last answer tags, or the last ``\\boxed{}`` inside them.
    """
    matches = R1_ZERO_FORMAT.findall(response or "")
    if not matches:
        return _scores(False, False)
    answer = matches[-1]
    boxed = last_boxed(answer)
    return _scores(True, grade(boxed if boxed is not None else answer, ground_truth, fast))


def question_only_reward_fn(
    response: str, ground_truth: str | float | int | list[Any], fast: bool = True
) -> dict[str, float]:
    """Reward a response to the bare question: the answer is the last ``\\boxed{}``; none is a format failure."""
    boxed = last_boxed(response or "")
    if boxed is None or not boxed.strip():
        return _scores(False, False)
    return _scores(True, grade(boxed, ground_truth, fast))
