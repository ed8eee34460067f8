"""A deliberately naive BPE trainer for the staff scripts: recount every pair before each merge.

Slow (seconds on a few hundred KB) and obviously correct; the reference's merges are checked
against it before any snapshot of them is written. Shared by ``make_tokenizer_fixtures.py``
and ``make_hidden_snapshots.py``; never shipped (it is a working, if slow, solution).
"""

from __future__ import annotations

from collections import Counter

import regex

GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def naive_train_bpe(
    text: str, vocab_size: int, special_tokens: list[str]
) -> tuple[dict[int, bytes], list[tuple[bytes, bytes]]]:
    """Vocab (specials, then the 256 bytes, then merges) and merges, ties to the greater pair."""
    documents = [text]
    for special in sorted(special_tokens, key=len, reverse=True):  # longest first: overlapping specials
        documents = [piece for document in documents for piece in document.split(special)]
    pretokens = Counter(match for document in documents for match in regex.findall(GPT2_PATTERN, document))
    # word (a tuple of tokens, each a bytes object) -> how often it occurs
    words = {tuple(bytes([b]) for b in pretoken.encode("utf-8")): n for pretoken, n in pretokens.items()}
    tokens = [special.encode("utf-8") for special in special_tokens] + [bytes([b]) for b in range(256)]
    learned: list[tuple[bytes, bytes]] = []
    while len(tokens) < vocab_size:
        pair_counts: Counter[tuple[bytes, bytes]] = Counter()
        for word, n in words.items():
            for i in range(len(word) - 1):
                pair_counts[word[i], word[i + 1]] += n
        if not pair_counts:
            break
        best = max(pair_counts, key=lambda pair: (pair_counts[pair], pair))
        learned.append(best)
        tokens.append(best[0] + best[1])
        merged: Counter[tuple[bytes, ...]] = Counter()
        for word, n in words.items():
            merged[naive_merge(word, best)] += n  # two words may become one
        words = dict(merged)
    return dict(enumerate(tokens)), learned


def naive_merge(word: tuple[bytes, ...], pair: tuple[bytes, bytes]) -> tuple[bytes, ...]:
    """Join each occurrence of ``pair`` in ``word``, left to right, never overlapping."""
    out: list[bytes] = []
    i = 0
    while i < len(word):
        if i + 1 < len(word) and (word[i], word[i + 1]) == pair:
            out.append(pair[0] + pair[1])
            i += 2
        else:
            out.append(word[i])
            i += 1
    return tuple(out)
