"""The word_counts problem."""

from __future__ import annotations

import functools

from .constants import STOP_WORDS, WORD_RE


@functools.lru_cache(maxsize=4096)
def normalize(word: str) -> str:
    """Case-fold ``word`` and strip apostrophes from both ends ("'Tis" -> "tis")."""
    # BEGIN SOLUTION problem=word_counts
    return word.casefold().strip("'")
    # END SOLUTION


def word_counts(text: str, min_length: int = 1) -> dict[str, int]:
    """Count the words of ``text`` (see ``WORD_RE``), normalised with :func:`normalize`.

    Words shorter than ``min_length`` after normalisation, empty words and ``STOP_WORDS`` are
    not counted. Keys appear in the order of their first occurrence.
    """

    def keep(word: str) -> bool:
        """Whether a normalised word is counted."""
        # BEGIN SOLUTION problem=word_counts
        return bool(word) and len(word) >= min_length and word not in STOP_WORDS
        # END SOLUTION

    counts: dict[str, int] = {}
    for token in WORD_RE.findall(text):
        # BEGIN SOLUTION problem=word_counts
        if keep(word := normalize(token)):
            counts[word] = counts.get(word, 0) + 1
        # END SOLUTION
    return counts
