"""Encoding text to token ids and back with a trained byte-level BPE vocabulary.

Encoding repeats what training did, on one pre-token at a time: start from its UTF-8 bytes and
apply merges, always the adjacent pair that was merged *earliest* in training (lowest rank)
first, until no adjacent pair is a merge. A pre-token that is itself a merged token skips this
and encodes to that token, as tiktoken does (merging nearly always ends there too). Text is full
of repeated pre-tokens (" the", ","), so their ids are cached.

Decoding concatenates the bytes of the tokens and decodes them as UTF-8.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from itertools import pairwise
from pathlib import Path

from .bpe import Pair
from .pretokenize import GPT2_PATTERN, special_token_pattern

CACHE_SIZE = 100_000
"""Most pre-tokens whose ids are remembered. Beyond it the cache starts over, which keeps the
memory of :meth:`Tokenizer.encode_iterable` flat however long the stream."""

STREAM_BUFFER = 2**16
"""Characters :meth:`Tokenizer.encode_iterable` gathers before encoding. Encoding a file line by
line would pay the per-call costs (regex calls, looking for the tail to hold back) per line."""

_REPLACEMENT = "\ufffd".encode("utf-8")  # what an unknown id decodes to
_NOT_A_MERGE = sys.maxsize  # the rank of a pair that no merge joins: after every real rank
# (an int, not math.inf: comparing int with int is faster than int with float)


class Tokenizer:
    """A byte-level BPE tokenizer.

    ``vocab`` maps id -> token bytes and must hold all 256 single bytes; ids may be any
    integers (GPT-2's are not in byte order). ``merges`` are the merged pairs in creation order:
    the rank of a merge is its position in the list. ``special_tokens`` are strings that always
    encode to one id of their own and are never split or merged; those missing from ``vocab``
    are added with new ids after the largest one. Where special tokens overlap, the longest
    match wins.
    """

    def __init__(
        self,
        vocab: dict[int, bytes],
        merges: list[tuple[bytes, bytes]],
        special_tokens: list[str] | None = None,
    ) -> None:
        # BEGIN SOLUTION problem=tokenizer
        self.vocab = dict(vocab)  # a copy: adding special tokens must not change the caller's
        self.special_tokens = list(dict.fromkeys(special_tokens or []))
        id_of = {token: i for i, token in self.vocab.items()}
        for special in self.special_tokens:
            token = special.encode("utf-8")
            if token not in id_of:
                id_of[token] = max(self.vocab, default=-1) + 1
                self.vocab[id_of[token]] = token
        if any(bytes([b]) not in id_of for b in range(256)):
            raise ValueError("The vocabulary must contain all 256 single bytes.")
        self._byte_ids = [id_of[bytes([b])] for b in range(256)]

        # Merges as id pairs: (left id, right id) -> rank, and -> id of the merged token.
        self._ranks: dict[Pair, int] = {}
        self._merged_ids: dict[Pair, int] = {}
        # Bytes -> id of every token that merging can produce, as in tiktoken: a pre-token that
        # is one of them encodes to it without merging. Special tokens are left out.
        self._whole_ids: dict[bytes, int] = {bytes([b]): i for b, i in enumerate(self._byte_ids)}
        for rank, (left, right) in enumerate(merges):
            if not {left, right, left + right} <= id_of.keys():
                raise ValueError(f"Merge {rank} ({left!r}, {right!r}) uses a token missing from the vocabulary.")
            pair = (id_of[left], id_of[right])
            self._ranks[pair] = rank
            self._merged_ids[pair] = id_of[left + right]
            self._whole_ids[left + right] = id_of[left + right]

        self._special_pattern = special_token_pattern(self.special_tokens)
        self._longest_special = max(map(len, self.special_tokens), default=0)
        self._special_prefixes = {s[:n] for s in self.special_tokens for n in range(1, len(s) + 1)}
        # Special tokens live in the cache, so encoding looks every piece up in one dict.
        self._special_ids = {special: [id_of[special.encode("utf-8")]] for special in self.special_tokens}
        self._cache: dict[str, list[int]] = dict(self._special_ids)
        # END SOLUTION

    @classmethod
    def from_files(
        cls,
        vocab_path: str | Path,
        merges_path: str | Path,
        special_tokens: list[str] | None = None,
    ) -> Tokenizer:
        """Load a tokenizer saved in GPT-2's formats.

        ``vocab_path`` is an ``encoder.json`` (``{token: id}``); ``merges_path`` a ``vocab.bpe``
        (a ``#version`` line, then one merge per line: ``left right``). Both spell each byte
        as one printable character, the mapping of :func:`gpt2_bytes_to_unicode`.
        """
        # BEGIN SOLUTION problem=tokenizer
        byte_of = {char: byte for byte, char in gpt2_bytes_to_unicode().items()}

        def to_bytes(token: str) -> bytes:
            return bytes(byte_of[char] for char in token)

        with open(vocab_path, encoding="utf-8") as file:
            vocab = {i: to_bytes(token) for token, i in json.load(file).items()}
        with open(merges_path, encoding="utf-8") as file:
            lines = [line.split() for line in file if not line.startswith("#version")]
        merges = [(to_bytes(left), to_bytes(right)) for left, right in filter(None, lines)]
        return cls(vocab, merges, special_tokens)
        # END SOLUTION

    def encode(self, text: str) -> list[int]:
        """The token ids of ``text``."""
        # BEGIN SOLUTION problem=tokenizer
        return self._encode_pieces(self._pieces(text))
        # END SOLUTION

    def encode_iterable(self, iterable: Iterable[str]) -> Iterator[int]:
        """Lazily yield the ids of the concatenated strings of ``iterable``, e.g. a text file.

        Yields exactly ``encode("".join(iterable))``. Memory stays bounded: strings are
        gathered until they hold :data:`STREAM_BUFFER` characters, then all of it is encoded
        except the tail that the next string could still change.
        """
        # BEGIN SOLUTION problem=tokenizer
        buffer: list[str] = []
        size = 0
        for chunk in iterable:
            buffer.append(chunk)
            size += len(chunk)
            if size >= STREAM_BUFFER:
                settled, held = self._split_settled("".join(buffer))
                yield from self._encode_pieces(settled)
                buffer, size = [held], len(held)
        yield from self.encode("".join(buffer))
        # END SOLUTION

    def decode(self, ids: Iterable[int]) -> str:
        """The text of ``ids``. Bytes that are not valid UTF-8, and ids not in the vocabulary,
        become the replacement character U+FFFD."""
        # BEGIN SOLUTION problem=tokenizer
        data = b"".join(self.vocab.get(i, _REPLACEMENT) for i in ids)
        return data.decode("utf-8", errors="replace")
        # END SOLUTION

    def _pieces(self, text: str) -> list[str]:
        """``text`` cut into special tokens and pre-tokens; joined, they give ``text`` back."""
        # BEGIN SOLUTION problem=tokenizer
        if self._special_pattern is None:
            return GPT2_PATTERN.findall(text)
        pieces: list[str] = []
        for i, part in enumerate(self._special_pattern.split(text)):
            if i % 2:  # the capturing group puts the special tokens at odd indices
                pieces.append(part)
            else:
                pieces.extend(GPT2_PATTERN.findall(part))
        return pieces
        # END SOLUTION

    def _encode_pieces(self, pieces: list[str]) -> list[int]:
        """The ids of special tokens and pre-tokens, concatenated."""
        # BEGIN SOLUTION problem=tokenizer
        ids: list[int] = []
        cache = self._cache  # a local name: this loop is the hot path of encoding
        for piece in pieces:
            piece_ids = cache.get(piece)
            if piece_ids is None:
                piece_ids = self._encode_new(piece)
            ids.extend(piece_ids)
        return ids
        # END SOLUTION

    def _encode_new(self, pretoken: str) -> list[int]:
        """Merge the bytes of a pre-token missing from the cache, and cache the result."""
        # BEGIN SOLUTION problem=tokenizer
        if len(self._cache) >= CACHE_SIZE:
            self._cache.clear()  # in place: callers hold a reference to this dict
            self._cache.update(self._special_ids)
        data = pretoken.encode("utf-8")
        whole_id = self._whole_ids.get(data)
        if whole_id is not None:  # with a large vocabulary, most words of real text
            ids = [whole_id]
        else:
            rank_of = self._ranks.get  # a local name: a hot loop
            ids = [self._byte_ids[b] for b in data]
            # ranks[i] is the rank of (ids[i], ids[i + 1]); kept in step with ids as they merge.
            ranks = [rank_of(pair, _NOT_A_MERGE) for pair in pairwise(ids)]
            while ranks:
                best = min(ranks)
                if best == _NOT_A_MERGE:  # no adjacent pair is a merge: done
                    break
                # Merge the leftmost occurrence only. The pair's other occurrences still rank
                # lowest (every merge that involves the new token ranks later), so the next
                # rounds take them in turn: the same result as merging all at once.
                i = ranks.index(best)
                ids[i : i + 2] = [self._merged_ids[ids[i], ids[i + 1]]]
                # Only the two pairs that touch the new token changed.
                del ranks[i]
                if i > 0:
                    ranks[i - 1] = rank_of((ids[i - 1], ids[i]), _NOT_A_MERGE)
                if i < len(ranks):
                    ranks[i] = rank_of((ids[i], ids[i + 1]), _NOT_A_MERGE)
        self._cache[pretoken] = ids
        return ids
        # END SOLUTION

    def _split_settled(self, text: str) -> tuple[list[str], str]:
        """Split the start of a stream into the pieces that no continuation can change, and
        the text after them, which must wait for more of the stream.

        A continuation can change a special token that may have begun at the end of ``text``
        (``<|endof`` may become ``<|endoftext|>``), and the last two pre-tokens: `` wor`` may
        grow into `` world``, and ``'`` + ``l`` may become the contraction ``'ll``. Every
        earlier pre-token was decided by characters that are all in ``text`` already.
        """
        # BEGIN SOLUTION problem=tokenizer
        end = self._outside_specials(text, self._partial_special_start(text))
        pieces = self._pieces(text[:end])
        settled = len(pieces)
        # Hold back up to two pre-tokens; a complete special token is a hard boundary.
        while settled > 0 and len(pieces) - settled < 2 and pieces[settled - 1] not in self._special_ids:
            settled -= 1
        return pieces[:settled], "".join(pieces[settled:]) + text[end:]
        # END SOLUTION

    def _outside_specials(self, text: str, end: int) -> int:
        """``end``, or the start of the special token that ``end`` would cut in two.

        With overlapping specials (``E`` and ``EE``) a whole ``EE`` may straddle ``end``; cutting
        there would encode its first half as ``E``. Matches are taken left to right from the
        start, as ``encode`` takes them, so both agree on where every special token lies.
        """
        # BEGIN SOLUTION problem=tokenizer
        if self._special_pattern is None:
            return end
        for match in self._special_pattern.finditer(text):
            if match.start() >= end:
                break
            if match.end() > end:
                return match.start()
        return end
        # END SOLUTION

    def _partial_special_start(self, text: str) -> int:
        """The first index ``i`` where ``text[i:]`` is the beginning of a special token, else
        ``len(text)``.

        A whole special token counts too, since it may begin a longer, overlapping one.
        Holding it back until the next chunk arrives is always safe.
        """
        # BEGIN SOLUTION problem=tokenizer
        for start in range(max(0, len(text) - self._longest_special), len(text)):
            if text[start:] in self._special_prefixes:
                return start
        return len(text)
        # END SOLUTION


def gpt2_bytes_to_unicode() -> dict[int, str]:
    """GPT-2's map from each byte to a printable character, used to store tokens as text.

    The printable Latin-1 bytes stand for themselves; the other 68 (controls, space, ...) are
    assigned the characters from U+0100 on, in byte order. So the space is ``Ġ`` (U+0120) and
    the newline ``Ċ`` (U+010A).
    """
    # BEGIN SOLUTION problem=tokenizer
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    others = [b for b in range(256) if b not in printable]
    mapping = {b: chr(b) for b in printable}
    mapping.update({b: chr(256 + i) for i, b in enumerate(others)})
    return mapping
    # END SOLUTION
