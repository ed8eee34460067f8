"""The Gopher quality rules (Rae et al., 2021, appendix A), a cheap first filter for web text.

Each rule catches a kind of page that is rarely prose: too short or absurdly long, made of
very short tokens (tables, code) or very long ones (URLs, base64), mostly truncated teasers
("Read more..."), or mostly symbols and numbers.
"""

from __future__ import annotations

MIN_WORDS, MAX_WORDS = 50, 100_000
MIN_MEAN_WORD_LENGTH, MAX_MEAN_WORD_LENGTH = 3.0, 10.0
MAX_ELLIPSIS_LINE_FRACTION = 0.3
MIN_ALPHABETIC_WORD_FRACTION = 0.8


def gopher_quality_filter(text: str) -> bool:
    """True iff ``text`` passes every rule.

    Words are whitespace-separated tokens. Rules: 50 <= words <= 100,000; mean word length in
    [3, 10] characters; at most 30% of lines end with "..." (or "…"); at least 80% of words
    contain an alphabetic character.
    """
    # BEGIN SOLUTION problem=gopher_quality
    words = text.split()
    if not MIN_WORDS <= len(words) <= MAX_WORDS:
        return False
    mean_length = sum(len(w) for w in words) / len(words)
    if not MIN_MEAN_WORD_LENGTH <= mean_length <= MAX_MEAN_WORD_LENGTH:
        return False
    lines = text.splitlines()
    ellipsis_lines = sum(1 for line in lines if line.rstrip().endswith(("...", "…")))
    if ellipsis_lines > MAX_ELLIPSIS_LINE_FRACTION * len(lines):
        return False
    alphabetic = sum(1 for w in words if any(ch.isalpha() for ch in w))
    return alphabetic >= MIN_ALPHABETIC_WORD_FRACTION * len(words)
    # END SOLUTION
