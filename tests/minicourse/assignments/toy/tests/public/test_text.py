"""Public tests of word_counts (text.py and the report helpers of scaffold.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"

SAMPLE_COUNTS = {
    "tis": 1, "season": 1, "owl": 3, "cat": 2, "sat": 1, "hat": 1, "don't": 1,
    "ask": 1, "why": 1, "owls": 1, "hoot": 1, "cats": 1, "sit": 1, "what": 1,
}


def sample() -> str:
    return (FIXTURES / "sample.txt").read_text(encoding="utf-8")


@pytest.mark.problem("word_counts", weight=2.0)
def test_word_counts_sample(student):
    assert student.run_word_counts(text=sample()) == SAMPLE_COUNTS


@pytest.mark.problem("word_counts")
def test_word_counts_first_occurrence_order(student):
    assert list(student.run_word_counts(text=sample())) == list(SAMPLE_COUNTS)


@pytest.mark.problem("word_counts")
def test_word_counts_min_length(student):
    expected = {"season": 1, "don't": 1, "owls": 1, "hoot": 1, "cats": 1, "what": 1}
    assert student.run_word_counts(text=sample(), min_length=4) == expected


@pytest.mark.problem("word_counts")
def test_top_words_breaks_ties_alphabetically(student):
    top = student.run_top_words(counts={"b": 2, "a": 2, "c": 5, "d": 1}, k=3)
    assert [tuple(pair) for pair in top] == [("c", 5), ("a", 2), ("b", 2)]
