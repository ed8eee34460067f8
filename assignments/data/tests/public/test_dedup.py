"""Exact line dedup and MinHash near-duplicate removal on ``fixtures/dedup/`` (web-text documents
and seeded near-duplicate variants of them; ``near_clusters.json`` names each file's true cluster)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from tests import producers

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "dedup"


def read_folder(folder: Path) -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(folder.iterdir())}


@pytest.mark.problem("exact_dedup")
def test_exact_dedup_keeps_lines_that_occur_once(student):
    documents = read_folder(FIXTURES / "lines")
    counts = Counter(line for text in documents.values() for line in text.splitlines())
    expected = {name: "".join(line + "\n" for line in text.splitlines() if counts[line] == 1)
                for name, text in documents.items()}
    assert student.run(producers.exact_dedup_outputs, documents=documents) == expected


@pytest.mark.problem("minhash_dedup")
def test_minhash_keeps_one_document_per_cluster(student):
    documents = read_folder(FIXTURES / "near")
    cluster_of = json.loads((FIXTURES / "near_clusters.json").read_text())
    kept = student.run(producers.minhash_dedup_outputs, documents=documents, num_hashes=100, num_bands=20,
                       ngrams=5, jaccard_threshold=0.8)
    assert sorted(Counter(cluster_of[name] for name in kept).items()) == [(c, 1) for c in sorted(set(cluster_of.values()))]
    assert all(kept[name] == documents[name] for name in kept)


@pytest.mark.problem("minhash_dedup")
def test_minhash_normalizes_case_punctuation_and_accents(student):
    base = " ".join(f"word{i} naive cafe" for i in range(40))
    documents = {"a.txt": base, "b.txt": base.upper().replace("naive", "naïve").replace(" cafe", ", café!")}
    kept = student.run(producers.minhash_dedup_outputs, documents=documents, num_hashes=100, num_bands=20,
                       ngrams=3, jaccard_threshold=0.99)
    assert len(kept) == 1
