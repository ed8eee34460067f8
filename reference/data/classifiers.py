"""Harmful-content and quality classifiers: small fastText models trained for this course.

The three models under ``models/`` were trained by ``scripts/train_classifiers.py`` on text that
registry packages ship (the handout says which, and how accurate each is on a held-out split).
Each is a binary fastText classifier whose labels are the adapter's labels.
"""

from __future__ import annotations

from pathlib import Path

from .langid import load_fasttext_model, predict_label

MODELS = Path(__file__).resolve().parent / "models"


def classify(model_name: str, text: str) -> tuple[str, float]:
    """``(label, score)`` from ``models/<model_name>.ftz``; the score is the label's probability."""
    # BEGIN SOLUTION problem=harmful_content
    return predict_label(load_fasttext_model(str(MODELS / f"{model_name}.ftz")), text)
    # END SOLUTION


def classify_nsfw(text: str) -> tuple[str, float]:
    """``("nsfw" | "non-nsfw", score)``: sexually explicit or not."""
    # BEGIN SOLUTION problem=harmful_content
    return classify("nsfw", text)
    # END SOLUTION


def classify_toxic_speech(text: str) -> tuple[str, float]:
    """``("toxic" | "non-toxic", score)``: insulting, obscene or hateful or not."""
    # BEGIN SOLUTION problem=harmful_content
    return classify("toxic", text)
    # END SOLUTION


def classify_quality(text: str) -> tuple[str, float]:
    """``("wiki" | "cc", score)``: reads like a Wikipedia article, or like the average web page."""
    # BEGIN SOLUTION problem=quality_classifier
    return classify("quality", text)
    # END SOLUTION
