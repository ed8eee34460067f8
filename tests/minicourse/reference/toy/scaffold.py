"""Reporting word counts. Listed in ``handout.stub``: students write every body here."""

from __future__ import annotations

from collections.abc import Mapping


def top_words(counts: Mapping[str, int], k: int = 3) -> list[tuple[str, int]]:
    """The ``k`` most frequent ``(word, count)`` pairs, ties broken alphabetically."""
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return ranked[:k]


# One line per word, "word count" with the words left-aligned in a column as wide as the
# longest word, most frequent first (as top_words); no trailing newline.
def render_counts(counts: Mapping[str, int]) -> str:
    width = max((len(word) for word in counts), default=0)
    return "\n".join(f"{word:<{width}} {n}" for word, n in top_words(counts, len(counts)))
