"""MinHash + LSH near-duplicate detection: the reference vs. ``datasketch`` with the same parameters.

    python benchmarks/minhash_dedup.py [--docs 20585] [--num-hashes 128] [--num-bands 32]

Documents: the Wikipedia and OpenWebText excerpts in OpenAI's ``evals`` wheel (20,585 real
excerpts; excerpts of one article overlap, so real near-duplicates exist), fetched into the
lmcourse package cache once. Both sides use the same word 5-gram shingles of the same normalized
text, the same number of permutations and the same bands x rows, and both confirm candidates with
the true Jaccard similarity and cluster with the same union-find, so clusters can differ only
through LSH recall. Prints the times, the ratio and how many clusters agree.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from grader.data.dataunit import open_source  # noqa: E402
from reference.data import dedup  # noqa: E402


def documents(limit: int) -> list[str]:
    archive = open_source("evals-samples")
    texts = []
    for name in ("wikipedia_5", "owt_5"):
        lines = archive.read(f"evals/registry/data/schelling_point/{name}.jsonl").decode("utf-8").splitlines()
        texts += [" ".join(v.split()) for line in lines for v in json.loads(line).values()]
    texts = [t for t in dict.fromkeys(texts) if len(t.split()) >= 20]
    return texts[:limit]


def ours(texts: list[str], num_hashes: int, num_bands: int, ngrams: int, threshold: float) -> list[int]:
    return dedup.near_duplicate_clusters(texts, num_hashes, num_bands, ngrams, threshold)


def theirs(texts: list[str], num_hashes: int, num_bands: int, ngrams: int, threshold: float) -> list[int]:
    from datasketch import MinHash, MinHashLSH

    lsh = MinHashLSH(num_perm=num_hashes, params=(num_bands, num_hashes // num_bands))
    shingle_sets = []
    for i, text in enumerate(texts):
        words = dedup.normalize_text(text).split()
        grams = {" ".join(words[j:j + ngrams]).encode() for j in range(max(1, len(words) - ngrams + 1))}
        shingle_sets.append(grams)
        m = MinHash(num_perm=num_hashes, seed=1)
        m.update_batch(list(grams))
        lsh.insert(i, m)
        # Querying while inserting finds each candidate pair once, from its later member.
        shingle_sets[i] = (grams, m)
    pairs = []
    for i, (grams, m) in enumerate(shingle_sets):
        for j in lsh.query(m):
            if j < i:
                other = shingle_sets[j][0]
                if len(grams & other) / len(grams | other) >= threshold:
                    pairs.append((j, i))
    return dedup.clusters(len(texts), pairs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=20585)
    parser.add_argument("--num-hashes", type=int, default=128)
    parser.add_argument("--num-bands", type=int, default=32)
    parser.add_argument("--ngrams", type=int, default=5)
    parser.add_argument("--threshold", type=float, default=0.8)
    args = parser.parse_args()
    texts = documents(args.docs)
    params = (args.num_hashes, args.num_bands, args.ngrams, args.threshold)
    start = time.perf_counter()
    mine = ours(texts, *params)
    t_ours = time.perf_counter() - start
    start = time.perf_counter()
    ref = theirs(texts, *params)
    t_theirs = time.perf_counter() - start
    groups = lambda reps: {frozenset(i for i, r in enumerate(reps) if r == root) for root in set(reps)}  # noqa: E731
    same = len(groups(mine) & groups(ref))
    print(f"documents: {len(texts)}  num_hashes={args.num_hashes} bands={args.num_bands} "
          f"ngrams={args.ngrams} threshold={args.threshold}")
    print(f"ours:       {t_ours:7.2f} s  {len(set(mine))} clusters kept ({len(texts) - len(set(mine))} removed)")
    print(f"datasketch: {t_theirs:7.2f} s  {len(set(ref))} clusters kept ({len(texts) - len(set(ref))} removed)")
    print(f"identical clusters: {same} of {len(groups(mine))} (ours) / {len(groups(ref))} (datasketch)")
    print(f"speed-up (datasketch time / ours): {t_theirs / t_ours:.1f}x")


if __name__ == "__main__":
    main()
