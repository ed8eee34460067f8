"""Training a byte-level BPE tokenizer.

Byte-level BPE starts from the 256 possible bytes and repeatedly *merges* the most frequent
pair of adjacent tokens into a new token, until the vocabulary has the requested size.

Vocabulary ids, the layout every function here relies on::

    0 .. S-1            the S special tokens, in the order given
    S .. S+255          the single bytes 0x00 .. 0xff: byte ``b`` has id ``S + b``
    S+256 ..            the merged tokens, in the order they were created

Training in two passes:

1. Pre-tokenize the corpus and count the distinct pre-tokens (:mod:`.pretokenize`). From here
   on a pre-token seen a million times is one *word* with frequency 10**6, never a million
   copies; memory grows with the number of distinct pre-tokens only.
2. Merge. Counting every pair of every word again after each merge would cost a full pass per
   merge. Instead :class:`PairStats` keeps the pair counts, knows which words hold each pair,
   and updates both from the few words a merge changes.
"""

from __future__ import annotations

import heapq
import os
from collections import Counter, defaultdict
from itertools import pairwise
from pathlib import Path

from rich.progress import track

from .pretokenize import count_pretokens

Pair = tuple[int, int]
"""Two adjacent token ids."""


def train_bpe(
    input_path: str | Path,
    vocab_size: int,
    special_tokens: list[str],
    *,
    num_workers: int | None = None,
    progress: bool = False,
) -> tuple[dict[int, bytes], list[tuple[bytes, bytes]]]:
    """Train a byte-level BPE tokenizer on the UTF-8 text file ``input_path``.

    ``vocab_size`` counts everything: the special tokens, the 256 bytes and the merges. Special
    tokens are added to the vocabulary first, removed from the text, and never take part in a
    merge. Each step merges the most frequent adjacent pair; ties go to the lexicographically
    greater pair, comparing ``(bytes_left, bytes_right)``. Training stops early if no pair is
    left to merge. ``num_workers`` processes pre-tokenize in parallel (default: chosen by the
    file size); ``progress`` shows progress bars.

    Returns ``(vocab, merges)``: ``vocab`` maps id -> token bytes (layout in the module
    docstring); ``merges`` lists the merged pairs in the order they were created.
    """
    # BEGIN SOLUTION problem=train_bpe
    special_tokens = list(dict.fromkeys(special_tokens))  # a repeated token needs one id only
    if "" in special_tokens:
        raise ValueError("Special tokens must be non-empty strings.")
    if vocab_size < 256 + len(special_tokens):
        raise ValueError(f"vocab_size={vocab_size} is smaller than the 256 byte tokens plus "
                         f"{len(special_tokens)} special tokens.")
    if not os.path.isfile(input_path):
        raise FileNotFoundError(f"Training corpus {input_path} does not exist or is not a file.")

    vocab = initial_vocab(special_tokens)
    counts = count_pretokens(input_path, special_tokens, num_workers, progress)
    first_byte_id = len(special_tokens)
    words = [[first_byte_id + byte for byte in pretoken.encode("utf-8")] for pretoken in counts]
    merges = learn_merges(words, list(counts.values()), vocab, vocab_size, progress)
    return vocab, merges
    # END SOLUTION


def initial_vocab(special_tokens: list[str]) -> dict[int, bytes]:
    """The vocabulary before any merge: the special tokens, then the 256 single bytes."""
    # BEGIN SOLUTION problem=train_bpe
    tokens = [token.encode("utf-8") for token in special_tokens] + [bytes([b]) for b in range(256)]
    return dict(enumerate(tokens))
    # END SOLUTION


def learn_merges(
    words: list[list[int]],
    freqs: list[int],
    vocab: dict[int, bytes],
    vocab_size: int,
    progress: bool = False,
) -> list[tuple[bytes, bytes]]:
    """Merge pairs until ``vocab`` holds ``vocab_size`` tokens, or no pair is left.

    ``words[w]`` is the token ids of a distinct pre-token and ``freqs[w]`` how often it occurs.
    Each merge adds its token to ``vocab`` (in place) and rewrites ``words`` (in place).
    Returns the merged pairs as bytes, in creation order.
    """
    # BEGIN SOLUTION problem=train_bpe
    stats = PairStats(words, freqs, vocab)
    merges: list[tuple[bytes, bytes]] = []
    for _ in track(range(vocab_size - len(vocab)), "merging", disable=not progress):
        pair = stats.pop_best()
        if pair is None:  # every word is a single token
            break
        left, right = vocab[pair[0]], vocab[pair[1]]
        new_id = len(vocab)
        vocab[new_id] = left + right
        merges.append((left, right))
        stats.merge(pair, new_id)
    return merges
    # END SOLUTION


class _Greater:
    """Wraps a value so that heapq, a min-heap, pops the *greatest* value first."""

    __slots__ = ("value",)

    def __init__(self, value: tuple[bytes, bytes]) -> None:
        self.value = value

    def __lt__(self, other: _Greater) -> bool:
        # BEGIN SOLUTION problem=train_bpe
        return self.value > other.value
        # END SOLUTION


class PairStats:
    """The words being merged, with pair counts kept up to date incrementally.

    - ``counts[pair]``: how often ``pair`` occurs adjacently, over all words with their
      frequencies. Pairs that no longer occur are deleted, so memory stays bounded.
    - ``where[pair]``: the ids of the words that hold ``pair``, or held it once. A merge visits
      only these words; removing a word from a set when it loses a pair would cost more than
      scanning it in vain later, so sets only ever grow (and are dropped with their pair).
    - ``heap``: entries ``(-count, _Greater((bytes_left, bytes_right)), pair)``. heapq pops the
      smallest entry, which is the largest count, and among equal counts the greatest pair of
      byte strings: exactly the tie-break rule. Searching the heap to update an entry would
      be slow, so entries are only added (lazy invalidation): a pair gets a fresh entry when
      its count grows, so its best entry always holds at least its count. A popped entry above
      the current count is pushed back at that count; one for a pair gone is dropped.
    """

    def __init__(self, words: list[list[int]], freqs: list[int], vocab: dict[int, bytes]) -> None:
        # BEGIN SOLUTION problem=train_bpe
        self.words, self.freqs, self.vocab = words, freqs, vocab
        self.counts: Counter[Pair] = Counter()
        self.where: defaultdict[Pair, set[int]] = defaultdict(set)
        for w, word in enumerate(words):
            for pair in pairwise(word):
                self.counts[pair] += freqs[w]
                self.where[pair].add(w)
        self.heap: list[tuple[int, _Greater, Pair]] = []
        self._rebuild_heap()
        # END SOLUTION

    def pop_best(self) -> Pair | None:
        """Remove and return the most frequent pair (ties: the greater one); None if none is left."""
        # BEGIN SOLUTION problem=train_bpe
        while self.heap:
            negative_count, key, pair = heapq.heappop(self.heap)
            count = self.counts.get(pair)
            if count == -negative_count:
                return pair
            # Counts that fell are not pushed (see merge): requeue the pair at its true count.
            if count is not None and count < -negative_count:
                heapq.heappush(self.heap, (-count, key, pair))
        return None
        # END SOLUTION

    def merge(self, pair: Pair, new_id: int) -> None:
        """Replace ``pair`` by ``new_id`` in every word holding it, and update the statistics.

        Only the neighbours of each occurrence change: ``p a b n`` becomes ``p new n``, so
        ``(p, a)``, ``(a, b)`` and ``(b, n)`` lose the word's frequency and ``(p, new)`` and
        ``(new, n)`` gain it. ``change`` nets these out, so a pair is pushed at most once per merge.
        """
        # BEGIN SOLUTION problem=train_bpe
        a, b = pair
        where = self.where
        change: Counter[Pair] = Counter()
        for w in where.pop(pair):
            word, freq = self.words[w], self.freqs[w]
            i = 0
            while True:
                try:
                    i = word.index(a, i)  # a C-speed scan to the next candidate
                except ValueError:
                    break
                if i + 1 < len(word) and word[i + 1] == b:
                    change[pair] -= freq
                    if i > 0:
                        # After an earlier merge in this word the left neighbour may be new_id
                        # itself: the pair it lost, (new_id, a), was counted when it was made.
                        left = word[i - 1]
                        change[left, a] -= freq
                        change[left, new_id] += freq
                        where[left, new_id].add(w)
                    word[i : i + 2] = [new_id]
                    if i + 1 < len(word):
                        right = word[i + 1]
                        change[b, right] -= freq
                        change[new_id, right] += freq
                        where[new_id, right].add(w)
                # Resume after the new token: in ``a a a`` with a == b, the ``a a`` overlapping
                # the merged one is skipped (occurrences never overlap, as when GPT-2 encodes).
                i += 1
        for changed, delta in change.items():
            if delta:
                self._add(changed, delta)
        # Stale entries pile up as counts change; rebuilding now and then bounds the heap.
        if len(self.heap) > 2 * len(self.counts) + 1000:
            self._rebuild_heap()
        # END SOLUTION

    def _add(self, pair: Pair, delta: int) -> None:
        """Change the count of ``pair`` by ``delta``, forgetting pairs whose count drops to 0."""
        # BEGIN SOLUTION problem=train_bpe
        count = self.counts[pair] + delta
        if count > 0:
            self.counts[pair] = count
            if delta > 0:  # a count that fell is corrected when its entry is popped
                heapq.heappush(self.heap, self._entry(pair, count))
        else:
            del self.counts[pair]
            self.where.pop(pair, None)
        # END SOLUTION

    def _entry(self, pair: Pair, count: int) -> tuple[int, _Greater, Pair]:
        """The heap entry of ``pair`` at ``count``: smaller entries are better merges."""
        # BEGIN SOLUTION problem=train_bpe
        return (-count, _Greater((self.vocab[pair[0]], self.vocab[pair[1]])), pair)
        # END SOLUTION

    def _rebuild_heap(self) -> None:
        """A heap of one fresh entry per pair that occurs."""
        # BEGIN SOLUTION problem=train_bpe
        self.heap = [self._entry(pair, count) for pair, count in self.counts.items()]
        heapq.heapify(self.heap)
        # END SOLUTION
