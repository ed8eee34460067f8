"""Hidden tests of the data unit: every fixture page and paragraph, and inputs regenerated from seeds.

Expected values are computed here, on the trusted side: Resiliparse for extraction, the fixture's
labels for language ID and PII, a direct reading of the Gopher rules, and brute-force Jaccard
similarity for near-duplicate clusters.
"""

from __future__ import annotations

import json
import random
import re
import string
import unicodedata
from collections import Counter
from pathlib import Path

import pytest
from fastwarc.warc import ArchiveIterator, WarcRecordType
from resiliparse.extract.html2text import extract_plain_text

from tests import producers

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


def warc_pages() -> dict[str, bytes]:
    with open(FIXTURES / "pages.warc.gz", "rb") as stream:
        return {r.headers["WARC-Target-URI"]: r.reader.read()
                for r in ArchiveIterator(stream, record_types=WarcRecordType.response)}


@pytest.mark.problem("extract_text")
def test_hidden_every_fixture_page(student):
    for url, html in warc_pages().items():
        assert student.run_extract_text_from_html_bytes(html_bytes=html) == extract_plain_text(html.decode("utf-8")), url


@pytest.mark.problem("extract_text")
@pytest.mark.parametrize("seed", [0, 1])
def test_hidden_binary_junk_is_not_text(student, seed):
    junk = random.Random(seed).randbytes(4000)
    assert not student.run_extract_text_from_html_bytes(html_bytes=junk)


@pytest.mark.problem("language_id")
def test_hidden_accuracy_over_sixteen_languages(student):
    rows = [json.loads(line) for line in (FIXTURES / "langid.jsonl").read_text(encoding="utf-8").splitlines()]
    predictions = student.run(producers.identify_languages, texts=[r["text"] for r in rows])
    correct = sum(label == r["lang"] for (label, _), r in zip(predictions, rows))
    assert correct >= 0.98 * len(rows)
    assert all(type(score) is float and 0 < score <= 1 for _, score in predictions)


@pytest.mark.problem("mask_pii")
def test_hidden_every_fixture_sentence(student):
    for line in (FIXTURES / "pii.jsonl").read_text().splitlines():
        row = json.loads(line)
        assert student.run_mask_emails(text=row["text"]) == (row["text"].replace(row["email"], "|||EMAIL_ADDRESS|||"), 1)
        assert student.run_mask_ips(text=row["text"]) == (row["text"].replace(row["ip"], "|||IP_ADDRESS|||"), 1)


@pytest.mark.problem("mask_pii")
@pytest.mark.parametrize("seed", range(3))
def test_hidden_several_phone_numbers_per_text(student, seed):
    rng = random.Random(seed)
    formats = ["{}{}{}", "({})-{}-{}", "({}) {} {}", "{}-{}-{}"]
    numbers = [rng.choice(formats).format(rng.randint(201, 989), rng.randint(200, 999), f"{rng.randint(0, 9999):04d}")
               for _ in range(4)]
    text = " and ".join(f"office {n}" for n in numbers)
    expected = " and ".join("office |||PHONE_NUMBER|||" for _ in numbers)
    assert student.run_mask_phone_numbers(text=text) == (expected, 4)


@pytest.mark.problem("mask_pii")
def test_hidden_ips_out_of_range_are_kept(student):
    text = "valid 8.8.8.8 and 255.255.255.255; invalid 256.1.1.1 and 999.10.10.10"
    assert student.run_mask_ips(text=text) == (
        "valid |||IP_ADDRESS||| and |||IP_ADDRESS|||; invalid 256.1.1.1 and 999.10.10.10", 2)


@pytest.mark.problem("harmful_content")
def test_hidden_nsfw_flags_explicit_text(student):
    assert student.run_classify_nsfw(text="Hot xxx porn videos, nude sex cams and horny pussy live now")[0] == "nsfw"
    assert student.run_classify_nsfw(text="The museum opens a new exhibition of Roman coins on Saturday.")[0] == "non-nsfw"


@pytest.mark.problem("quality_classifier")
def test_hidden_quality_scores(student):
    for text in ["A", "The Treaty of Westphalia was signed in 1648 and ended the Thirty Years' War in Europe."]:
        label, score = student.run_classify_quality(text=text)
        assert label in {"wiki", "cc"} and type(score) is float and 0 < score <= 1


def gopher(text: str) -> bool:
    words = text.split()
    if not 50 <= len(words) <= 100_000:
        return False
    if not 3 <= sum(map(len, words)) / len(words) <= 10:
        return False
    lines = text.splitlines()
    if sum(line.endswith("...") for line in lines) > 0.3 * len(lines):
        return False
    return sum(any(c.isalpha() for c in w) for w in words) >= 0.8 * len(words)


@pytest.mark.problem("gopher_quality")
@pytest.mark.parametrize("seed", range(40))
def test_hidden_random_texts(student, seed):
    rng = random.Random(seed)
    vocabulary = ["a", "of", "the", "river", "mountains", "extraordinarily", "42", "3.14", "--", "internationalization"]
    lines = []
    for _ in range(rng.randint(2, 12)):
        line = " ".join(rng.choice(vocabulary) for _ in range(rng.randint(1, 15)))
        lines.append(line + "..." if rng.random() < 0.3 else line)
    text = "\n".join(lines)
    assert student.run_gopher_quality_filter(text=text) is gopher(text)


@pytest.mark.problem("exact_dedup")
@pytest.mark.parametrize("seed", range(3))
def test_hidden_exact_dedup_random_corpus(student, seed):
    rng = random.Random(seed)
    pool = [" ".join(rng.choice(string.ascii_lowercase) * rng.randint(1, 4) for _ in range(5)) for _ in range(30)]
    documents = {f"f{i}.txt": "".join(rng.choice(pool) + "\n" for _ in range(rng.randint(1, 20))) for i in range(6)}
    counts = Counter(line for text in documents.values() for line in text.splitlines())
    expected = {name: "".join(line + "\n" for line in text.splitlines() if counts[line] == 1)
                for name, text in documents.items()}
    assert student.run(producers.exact_dedup_outputs, documents=documents) == expected


def shingles(text: str, n: int) -> set[tuple[str, ...]]:
    text = "".join(c for c in unicodedata.normalize("NFD", text.lower()) if not unicodedata.combining(c))
    words = re.sub(r"[^\w\s]|_", "", text).split()
    return {tuple(words[i:i + n]) for i in range(max(1, len(words) - n + 1))}


@pytest.mark.problem("minhash_dedup")
@pytest.mark.parametrize("seed", range(2))
def test_hidden_minhash_clusters_match_true_jaccard(student, seed):
    rng = random.Random(seed)
    vocabulary = [f"w{i}" for i in range(400)]
    documents = {}
    for d in range(15):
        base = [rng.choice(vocabulary) for _ in range(150)]
        documents[f"d{d:02d}_0.txt"] = " ".join(base)
        for v in range(1, rng.randint(1, 3)):
            variant = list(base)
            variant[rng.randrange(150)] = "changed"
            documents[f"d{d:02d}_{v}.txt"] = " ".join(variant).upper()
    sets = {name: shingles(text, 5) for name, text in documents.items()}
    kept = student.run(producers.minhash_dedup_outputs, documents=documents, num_hashes=128, num_bands=32,
                       ngrams=5, jaccard_threshold=0.8)
    assert set(kept) <= set(documents)
    names = sorted(kept)
    for i, a in enumerate(names):  # no two kept documents are near-duplicates
        for b in names[i + 1:]:
            assert len(sets[a] & sets[b]) / len(sets[a] | sets[b]) < 0.8, (a, b)
    assert len(kept) == 15
