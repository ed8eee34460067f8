"""The Gopher quality rules, one rule at a time, at and around each threshold."""

from __future__ import annotations

import pytest

PROSE = "the cat sat on the warm mat and looked at the birds outside "  # 13 words, mean length ~3.6


def words(n: int) -> str:
    return " ".join((PROSE * (n // 13 + 1)).split()[:n])


@pytest.mark.problem("gopher_quality")
@pytest.mark.parametrize(("text", "passes"), [
    (words(50), True),
    (words(49), False),
    (" ".join(["a"] * 80), False),                      # mean word length 1 < 3
    (" ".join(["extraordinarily"] * 80), False),        # mean word length 15 > 10
    (" ".join(["12345"] * 16 + words(64).split()), True),   # exactly 80% of words alphabetic
    (" ".join(["12345"] * 20 + words(60).split()), False),  # 75%
], ids=["50-words", "49-words", "short-words", "long-words", "80%-alphabetic", "75%-alphabetic"])
def test_word_count_length_and_alphabetic_rules(student, text, passes):
    assert student.run_gopher_quality_filter(text=text) is passes


@pytest.mark.problem("gopher_quality")
def test_ellipsis_lines(student):
    body = words(60).split()
    lines = [" ".join(body[i:i + 6]) for i in range(0, 60, 6)]  # 10 lines
    three = "\n".join(line + "..." if i < 3 else line for i, line in enumerate(lines))
    four = "\n".join(line + "..." if i < 4 else line for i, line in enumerate(lines))
    assert student.run_gopher_quality_filter(text=three) is True
    assert student.run_gopher_quality_filter(text=four) is False
