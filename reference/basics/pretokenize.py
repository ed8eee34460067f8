"""Pre-tokenization: cutting text into the pieces that BPE merges never cross.

Byte-level BPE does not merge across the whole text. The text is first split on special tokens
(``<|endoftext|>`` separates documents), then each part is cut into *pre-tokens* by GPT-2's
regular expression: words with their leading space, runs of digits, runs of punctuation, runs of
whitespace. Merges happen only inside a pre-token, so "dog" and "dog!" share the token " dog".

Training never needs the text itself, only how often each pre-token occurs. Counting is the
expensive pass over the corpus, so :func:`count_pretokens` cuts the file into chunks at special
token occurrences (document boundaries, where no pre-token can straddle the cut) and counts the
chunks in parallel worker processes.
"""

from __future__ import annotations

import functools
import math
import os
from collections import Counter
from collections.abc import Iterable
from itertools import pairwise
from multiprocessing import Pool
from pathlib import Path
from typing import BinaryIO

import regex
from rich.progress import track

GPT2_PATTERN = regex.compile(r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")
"""GPT-2's pre-tokenizer. Its matches tile the text: every character lands in exactly one."""

CHUNK_BYTES = 4 * 2**20
"""Target size of the file chunks counted in parallel. Each worker holds one chunk's text at a
time, so this bounds the memory of a worker; it is big enough that starting a worker process
(tens of milliseconds) is cheap next to counting its chunk (about a second)."""

_SEARCH_WINDOW = 2**16  # bytes read at a time while looking for a special token


def special_token_pattern(special_tokens: list[str]) -> regex.Pattern[str] | None:
    """A pattern matching any of ``special_tokens``, longest first; None when there are none.

    With overlapping tokens such as ``<|endoftext|>`` and ``<|endoftext|><|endoftext|>`` the
    longer must win, and an alternation tries its branches in order, so the longest goes first.
    The pattern has one capturing group, so ``pattern.split(text)`` keeps the special tokens:
    they land at the odd indices of the result.
    """
    # BEGIN SOLUTION
    if not special_tokens:
        return None
    by_length = sorted(special_tokens, key=len, reverse=True)
    return regex.compile("(" + "|".join(regex.escape(token) for token in by_length) + ")")
    # END SOLUTION


def count_text(text: str, special_pattern: regex.Pattern[str] | None) -> Counter[str]:
    """Count the pre-tokens of ``text``, dropping special tokens and never matching across them."""
    # BEGIN SOLUTION problem=train_bpe
    parts = special_pattern.split(text)[::2] if special_pattern else [text]  # even: ordinary text
    counts: Counter[str] = Counter()
    for part in parts:
        counts.update(GPT2_PATTERN.findall(part))
    return counts
    # END SOLUTION


def find_chunk_boundaries(path: str | Path, special_tokens: list[str], chunk_bytes: int) -> list[int]:
    """Byte offsets ``[0, ..., file size]`` cutting the file into chunks of about ``chunk_bytes``.

    Every inner boundary is the start of a special token occurrence, the first one at or after
    a multiple of ``chunk_bytes`` past the previous boundary. A special token separates
    documents, so a cut there splits no pre-token and no UTF-8 character. Without special
    tokens the file is a single chunk: no other cut is safe for the regex. Chunks grow as long
    as the documents need, so a file with few separators has few (and big) chunks.
    """
    # BEGIN SOLUTION problem=train_bpe
    size = os.path.getsize(path)
    needles = [token.encode("utf-8") for token in special_tokens]
    boundaries = [0]
    with open(path, "rb") as file:
        while needles and boundaries[-1] + chunk_bytes < size:
            start = _find_any(file, boundaries[-1] + chunk_bytes, needles)
            if start is None:
                break
            boundaries.append(start)
    boundaries.append(size)
    return boundaries
    # END SOLUTION


def _find_any(file: BinaryIO, offset: int, needles: list[bytes]) -> int | None:
    """The first file offset ``>= offset`` where one of ``needles`` starts, or None."""
    # BEGIN SOLUTION problem=train_bpe
    # Consecutive windows overlap by the longest needle minus one byte, so that a needle
    # straddling two windows is still seen whole in the second one.
    overlap = max(len(needle) for needle in needles) - 1
    while True:
        file.seek(offset)
        window = file.read(_SEARCH_WINDOW + overlap)
        found = [i for i in (window.find(needle) for needle in needles) if i != -1]
        if found:
            return offset + min(found)
        if len(window) < _SEARCH_WINDOW + overlap:  # reached the end of the file
            return None
        offset += _SEARCH_WINDOW
    # END SOLUTION


def count_chunk(path: str | Path, special_tokens: list[str], span: tuple[int, int]) -> Counter[str]:
    """Count the pre-tokens of the bytes ``span = (start, end)`` of the file at ``path``.

    Runs in a worker process: it opens the file itself, so only the offsets travel to it and
    only the (much smaller) counts travel back.
    """
    # BEGIN SOLUTION problem=train_bpe
    start, end = span
    with open(path, "rb") as file:
        file.seek(start)
        data = file.read(end - start)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"{path} is not UTF-8 text: {error.reason} at byte {start + error.start}.") from None
    return count_text(text, special_token_pattern(special_tokens))
    # END SOLUTION


def count_pretokens(
    path: str | Path,
    special_tokens: list[str],
    num_workers: int | None = None,
    progress: bool = False,
) -> Counter[str]:
    """How often each pre-token occurs in the UTF-8 text file at ``path``.

    Special tokens are removed (never counted) and no pre-token spans one. The file is cut into
    chunks of at most about :data:`CHUNK_BYTES`, at least one per worker, and ``num_workers``
    processes count them. By default there is a worker per chunk, at most one per CPU, so a
    file smaller than a chunk is counted in this process: starting a worker would cost more
    than it saves. Memory grows with the number of distinct pre-tokens, not with the size of
    the file.
    """
    # BEGIN SOLUTION problem=train_bpe
    size = os.path.getsize(path)
    if num_workers is None:
        num_workers = min(math.ceil(size / CHUNK_BYTES), os.cpu_count() or 1)
    chunk_bytes = min(CHUNK_BYTES, math.ceil(size / max(num_workers, 1)))
    boundaries = find_chunk_boundaries(path, special_tokens, max(chunk_bytes, 1))
    spans = list(pairwise(boundaries))
    count = functools.partial(count_chunk, path, special_tokens)
    if num_workers <= 1 or len(spans) <= 1:
        return _sum_counts(map(count, spans), len(spans), progress)
    with Pool(num_workers) as pool:
        return _sum_counts(pool.imap_unordered(count, spans), len(spans), progress)
    # END SOLUTION


def _sum_counts(counters: Iterable[Counter[str]], num_chunks: int, progress: bool) -> Counter[str]:
    """The sum of ``counters``, folded in one at a time as the chunks finish."""
    # BEGIN SOLUTION problem=train_bpe
    total: Counter[str] = Counter()
    for counts in track(counters, "pre-tokenizing", total=num_chunks, disable=not progress):
        total.update(counts)
    return total
    # END SOLUTION
