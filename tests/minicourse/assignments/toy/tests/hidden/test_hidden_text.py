"""Hidden tests of word_counts: normalisation corners and the report helpers."""

from __future__ import annotations

import pytest


@pytest.mark.problem("word_counts")
def test_normalisation_strips_outer_apostrophes_only(student):
    assert student.run_word_counts(text="''Hello'' HELLO hello's") == {"hello": 2, "hello's": 1}


@pytest.mark.problem("word_counts")
def test_stop_words_and_bare_apostrophes_are_not_counted(student):
    assert student.run_word_counts(text="The AND of ' '' x; IT is x!") == {"x": 2}


@pytest.mark.problem("word_counts")
def test_top_words_with_k_beyond_the_vocabulary(student):
    top = student.run_top_words(counts={"zeta": 1, "eta": 1}, k=10)
    assert [tuple(pair) for pair in top] == [("eta", 1), ("zeta", 1)]


@pytest.mark.problem("word_counts")
def test_render_counts(student):
    assert student.run_render_counts(counts={"ox": 2, "owl": 3, "cat": 2}) == "owl 3\ncat 2\nox  2"
