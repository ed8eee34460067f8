"""Deduplication: exact repeated lines, and near-duplicate documents with MinHash and LSH.

Exact line dedup removes boilerplate (menus, cookie banners, footers) that repeats across pages:
a first pass counts every line's hash over the whole corpus, a second rewrites each file keeping
the lines seen exactly once. Only 8-byte hashes are held in memory, never the lines themselves.

Near-duplicate dedup finds documents whose sets of word n-grams overlap a lot (Jaccard similarity
≥ a threshold) without comparing all pairs. A MinHash signature of ``num_hashes`` values estimates
the Jaccard similarity of two sets (each value agrees with probability equal to it); cutting the
signature into ``num_bands`` bands and bucketing documents by each band makes likely duplicates
collide in at least one bucket. Colliding pairs are confirmed with the true Jaccard similarity,
and the confirmed pairs are merged into clusters of which one document is kept.
"""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata
import zlib
from collections import Counter
from collections.abc import Iterable, Sequence
from itertools import combinations
from pathlib import Path

import numpy as np
import numpy.typing as npt


def line_key(line: str) -> bytes:
    """An 8-byte digest identifying a line (its newline ignored); collisions need ~4e9 distinct lines."""
    return hashlib.blake2b(line.rstrip("\r\n").encode("utf-8"), digest_size=8).digest()


def exact_line_deduplication(input_files: Sequence[str | os.PathLike[str]], output_directory: str | os.PathLike[str]) -> None:
    """Rewrite each file into ``output_directory`` (same basename) keeping only the lines that
    occur exactly once in the whole corpus. Two passes; memory grows with the number of distinct
    lines (8 bytes each plus a counter), not with their length."""
    out_dir = Path(output_directory)
    out_dir.mkdir(parents=True, exist_ok=True)
    # BEGIN SOLUTION problem=exact_dedup
    counts: Counter[bytes] = Counter()
    for path in input_files:
        with open(path, encoding="utf-8", errors="surrogateescape", newline="") as src:
            counts.update(line_key(line) for line in src)
    for path in input_files:
        with open(path, encoding="utf-8", errors="surrogateescape", newline="") as src, \
                open(out_dir / Path(path).name, "w", encoding="utf-8", errors="surrogateescape", newline="") as dst:
            dst.writelines(line for line in src if counts[line_key(line)] == 1)
    # END SOLUTION


def normalize_text(text: str) -> str:
    """Lowercase, accents removed (NFD, combining marks dropped), punctuation removed, whitespace collapsed."""
    # BEGIN SOLUTION problem=minhash_dedup
    text = text.lower()
    if not text.isascii():  # ASCII has no accents: skip the per-character pass, the slow part
        text = "".join(ch for ch in unicodedata.normalize("NFD", text) if not unicodedata.combining(ch))
    text = re.sub(r"[^\w\s]|_", "", text)
    return " ".join(text.split())
    # END SOLUTION


def shingle_hashes(text: str, ngrams: int) -> npt.NDArray[np.uint64]:
    """The distinct hashes of the word n-grams of ``normalize_text(text)``: (num_shingles,) uint64.

    Words are hashed with CRC-32 (deterministic across processes, unlike ``hash``); an n-gram's
    hash is a polynomial in its word hashes, computed for all n-grams at once. A text shorter than
    ``ngrams`` words is a single shingle; an empty text has none.
    """
    # BEGIN SOLUTION problem=minhash_dedup
    words = normalize_text(text).split()
    if not words:
        return np.zeros(0, dtype=np.uint64)
    word_hashes = np.fromiter((zlib.crc32(w.encode("utf-8")) for w in words), dtype=np.uint64, count=len(words))
    n = min(ngrams, len(words))
    windows = np.lib.stride_tricks.sliding_window_view(word_hashes, n)  # (num_shingles, n)
    # Horner's rule with a large odd multiplier; uint64 arithmetic wraps, which is intended.
    shingles = np.zeros(len(windows), dtype=np.uint64)
    for j in range(n):
        shingles = shingles * np.uint64(0x9E3779B97F4A7C15) + windows[:, j]
    return np.unique(shingles)
    # END SOLUTION


def hash_parameters(num_hashes: int, seed: int = 0) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint64]]:
    """``(a, b)``, each (num_hashes,) random uint64, ``a`` odd: the hash functions of :func:`minhash_signatures`."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 2**64, size=num_hashes, dtype=np.uint64) | np.uint64(1)
    b = rng.integers(0, 2**64, size=num_hashes, dtype=np.uint64)
    return a, b


def minhash_signatures(shingle_sets: Sequence[npt.NDArray[np.uint64]], num_hashes: int, seed: int = 0,
                       block_shingles: int = 1024) -> npt.NDArray[np.uint32]:
    """MinHash signatures of many documents at once: (num_docs, num_hashes) uint32.

    Hash function k maps a 32-bit key x to the top 32 bits of (a_k·x + b_k) mod 2^64
    (multiply-add-shift, a 2-universal family; uint64 overflow is the modulus). Documents are
    taken in blocks of about ``block_shingles`` shingles: a block's shingles are hashed as one
    (shingles, num_hashes) matrix, small enough to stay in cache, and ``np.minimum.reduceat``
    takes each document's minimum per function. A document without shingles keeps the all-max
    signature, so it collides only with other empty documents.
    """
    # BEGIN SOLUTION problem=minhash_dedup
    a, b = hash_parameters(num_hashes, seed)
    lengths = np.array([len(s) for s in shingle_sets], dtype=np.int64)
    signatures = np.full((len(shingle_sets), num_hashes), np.iinfo(np.uint32).max, dtype=np.uint32)
    ends = np.cumsum(lengths)
    start_doc = 0
    while start_doc < len(shingle_sets):
        # Up to the first document that brings the block past block_shingles (at least one).
        stop_doc = max(start_doc + 1, int(np.searchsorted(ends, ends[start_doc] - lengths[start_doc] + block_shingles)))
        docs = range(start_doc, stop_doc)
        values = np.concatenate([shingle_sets[i] for i in docs])
        if len(values):
            keys = (values ^ (values >> np.uint64(32))) & np.uint64(0xFFFFFFFF)  # fold 64 -> 32 bits
            hashed = np.multiply(keys[:, None], a)  # (block, num_hashes), wraps mod 2^64
            hashed += b
            hashed >>= np.uint64(32)
            counts = lengths[start_doc:stop_doc]
            nonempty = counts > 0
            offsets = (np.cumsum(counts) - counts)[nonempty]
            signatures[start_doc:stop_doc][nonempty] = np.minimum.reduceat(hashed, offsets, axis=0)
        start_doc = stop_doc
    return signatures
    # END SOLUTION


def candidate_pairs(signatures: npt.NDArray[np.uint32], num_bands: int) -> set[tuple[int, int]]:
    """Pairs ``(i, j)``, i < j, of documents whose signatures agree on every row of some band.

    signatures: (num_docs, num_hashes), num_hashes divisible by num_bands. Each band's rows are
    viewed as one opaque byte string, so ``np.unique`` buckets all documents of a band at once.
    """
    # BEGIN SOLUTION problem=minhash_dedup
    num_docs, num_hashes = signatures.shape
    if num_hashes % num_bands:
        raise ValueError(f"num_hashes={num_hashes} is not divisible by num_bands={num_bands}")
    rows = num_hashes // num_bands
    pairs: set[tuple[int, int]] = set()
    for band in np.split(signatures, num_bands, axis=1):
        keys = np.ascontiguousarray(band).view(np.dtype((np.void, 4 * rows))).ravel()
        _, bucket_of, sizes = np.unique(keys, return_inverse=True, return_counts=True)
        order = np.argsort(bucket_of, kind="stable")
        bounds = np.cumsum(sizes)
        for bucket in np.flatnonzero(sizes > 1):
            members = order[bounds[bucket] - sizes[bucket]:bounds[bucket]]
            pairs.update(combinations(members.tolist(), 2))
    return pairs
    # END SOLUTION


def jaccard(x: npt.NDArray[np.uint64], y: npt.NDArray[np.uint64]) -> float:
    """|x ∩ y| / |x ∪ y| of two sorted arrays of distinct shingle hashes (1.0 for two empty sets)."""
    union = len(x) + len(y)
    if union == 0:
        return 1.0
    shared = len(np.intersect1d(x, y, assume_unique=True))
    return shared / (union - shared)


def clusters(num_docs: int, pairs: Iterable[tuple[int, int]]) -> list[int]:
    """Union-find over ``pairs``: the representative (smallest index) of each document's cluster."""
    # BEGIN SOLUTION problem=minhash_dedup
    parent = list(range(num_docs))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]  # path halving keeps the trees shallow
            i = parent[i]
        return i

    for i, j in pairs:
        root_i, root_j = find(i), find(j)
        if root_i != root_j:
            parent[max(root_i, root_j)] = min(root_i, root_j)
    return [find(i) for i in range(num_docs)]
    # END SOLUTION


def near_duplicate_clusters(texts: Sequence[str], num_hashes: int, num_bands: int, ngrams: int,
                            jaccard_threshold: float, seed: int = 0) -> list[int]:
    """For each text, the index of the first text of its near-duplicate cluster (itself if unique).

    Candidates come from LSH over MinHash signatures; a pair joins a cluster only if the true
    Jaccard similarity of its n-gram sets is at least ``jaccard_threshold``.
    """
    # BEGIN SOLUTION problem=minhash_dedup
    shingles = [shingle_hashes(text, ngrams) for text in texts]
    signatures = minhash_signatures(shingles, num_hashes, seed)
    confirmed = [(i, j) for i, j in sorted(candidate_pairs(signatures, num_bands))
                 if jaccard(shingles[i], shingles[j]) >= jaccard_threshold]
    return clusters(len(texts), confirmed)
    # END SOLUTION


def minhash_deduplication(input_files: Sequence[str | os.PathLike[str]], num_hashes: int, num_bands: int,
                          ngrams: int, jaccard_threshold: float, output_directory: str | os.PathLike[str]) -> list[Path]:
    """Write one document (file) of each near-duplicate cluster to ``output_directory`` under its
    basename, unchanged; the first file of a cluster, in input order, is the one kept. Returns the
    paths written."""
    out_dir = Path(output_directory)
    out_dir.mkdir(parents=True, exist_ok=True)
    # BEGIN SOLUTION problem=minhash_dedup
    texts = [Path(p).read_text(encoding="utf-8", errors="replace") for p in input_files]
    representative = near_duplicate_clusters(texts, num_hashes, num_bands, ngrams, jaccard_threshold)
    written = []
    for i, path in enumerate(input_files):
        if representative[i] == i:
            target = out_dir / Path(path).name
            target.write_bytes(Path(path).read_bytes())
            written.append(target)
    return written
    # END SOLUTION
