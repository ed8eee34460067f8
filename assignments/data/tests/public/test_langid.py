"""Language identification on paragraphs of the Universal Declaration of Human Rights in 16 languages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
ROWS = [json.loads(line) for line in (FIXTURES / "langid.jsonl").read_text(encoding="utf-8").splitlines()]


@pytest.mark.problem("language_id")
@pytest.mark.parametrize("lang", ["en", "zh", "fr", "de", "ru", "ar"])
def test_identifies_the_language_of_paragraphs(student, lang):
    rows = [r for r in ROWS if r["lang"] == lang][:10]
    labels = [student.run_identify_language(text=r["text"])[0] for r in rows]
    assert sum(label == lang for label in labels) >= 9, labels


@pytest.mark.problem("language_id")
def test_scores_are_python_floats_in_range(student):
    for text in ["The quick brown fox jumps over the lazy dog.", "这是一个中文句子。", "x"]:
        label, score = student.run_identify_language(text=text)
        assert isinstance(label, str) and not label.startswith("__label__")
        assert type(score) is float and 0.0 < score <= 1.0
