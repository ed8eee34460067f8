"""Run a chain of filters over WARC files and report what each one removed.

    python -m lmc_data.pipeline crawl/*.warc.gz --out kept/ --filters extract,language,gopher,quality

Files are processed in parallel (one worker process per file, each streaming its records); a
document goes through the filters in order and stops at the first that rejects it. The report
counts, per filter, the documents and bytes (of extracted text) it removed, as a table and as a
bar chart (PNG). Unreadable records are counted as skipped, never fatal.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from .classifiers import classify_nsfw, classify_quality, classify_toxic_speech
from .extract import extract_text_from_html_bytes
from .langid import identify_language
from .pii import mask_pii
from .quality import gopher_quality_filter
from .warc import ReadStats, iter_documents

# A filter takes extracted text and returns the (possibly rewritten) text, or None to drop it.
Filter = Callable[[str], "str | None"]


def _keep_if(predicate: Callable[[str], bool]) -> Filter:
    return lambda text: text if predicate(text) else None


FILTERS: dict[str, Filter] = {
    "language": _keep_if(lambda t: identify_language(t)[0] == "en"),
    "gopher": _keep_if(gopher_quality_filter),
    "nsfw": _keep_if(lambda t: classify_nsfw(t)[0] == "non-nsfw"),
    "toxic": _keep_if(lambda t: classify_toxic_speech(t)[0] == "non-toxic"),
    "quality": _keep_if(lambda t: classify_quality(t)[0] == "wiki"),
    "pii": lambda t: mask_pii(t)[0],
}


def filter_file(path: str, filters: Sequence[str], out_dir: str) -> dict[str, object]:
    """Extract and filter every document of one WARC file; write survivors to ``out_dir/<name>.txt``
    (documents separated by a blank line and a form feed). Returns the counts as plain data."""
    removed_docs: Counter[str] = Counter()
    removed_bytes: Counter[str] = Counter()
    stats = ReadStats()
    kept = []
    for doc in iter_documents(path, stats):
        text = extract_text_from_html_bytes(doc.payload)
        if not text:
            removed_docs["extract"] += 1
            removed_bytes["extract"] += len(doc.payload)
            continue
        for name in filters:
            result = FILTERS[name](text)
            if result is None:
                removed_docs[name] += 1
                removed_bytes[name] += len(text.encode("utf-8"))
                break
            text = result
        else:
            kept.append(text)
    (Path(out_dir) / f"{Path(path).name}.txt").write_text("\n\f\n".join(kept), encoding="utf-8")
    return {"records": stats.records, "skipped": stats.skipped, "kept": len(kept),
            "kept_bytes": sum(len(t.encode("utf-8")) for t in kept),
            "removed_docs": dict(removed_docs), "removed_bytes": dict(removed_bytes)}


def run(paths: Sequence[str], filters: Sequence[str], out_dir: str, workers: int) -> dict[str, object]:
    """Filter all files with ``workers`` processes; the summed report."""
    unknown = [f for f in filters if f not in FILTERS]
    if unknown:
        raise SystemExit(f"unknown filter(s) {unknown}; choose from {sorted(FILTERS)}")
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    total: dict[str, object] = {"records": 0, "skipped": 0, "kept": 0, "kept_bytes": 0,
                                "removed_docs": Counter(), "removed_bytes": Counter()}
    with ProcessPoolExecutor(workers) as pool, Progress() as progress:
        task = progress.add_task("filtering", total=len(paths))
        for future in as_completed([pool.submit(filter_file, p, filters, out_dir) for p in paths]):
            part = future.result()
            for key in ("records", "skipped", "kept", "kept_bytes"):
                total[key] += part[key]  # type: ignore[operator]
            total["removed_docs"].update(part["removed_docs"])  # type: ignore[union-attr]
            total["removed_bytes"].update(part["removed_bytes"])  # type: ignore[union-attr]
            progress.advance(task)
    return total


def report_table(report: dict[str, object], filters: Sequence[str]) -> Table:
    table = Table(title=f"{report['records']} documents read, {report['skipped']} records skipped")
    for column in ("step", "documents removed", "bytes removed"):
        table.add_column(column, justify="left" if column == "step" else "right")
    for step in ["extract", *filters]:
        table.add_row(step, str(report["removed_docs"].get(step, 0)), str(report["removed_bytes"].get(step, 0)))
    table.add_row("kept", str(report["kept"]), str(report["kept_bytes"]))
    return table


def report_png(report: dict[str, object], filters: Sequence[str], path: Path) -> None:
    """A bar chart of the documents each step removed, and of the documents kept."""
    import matplotlib

    matplotlib.use("Agg")  # no display: write the file only
    import matplotlib.pyplot as plt

    steps = ["extract", *filters, "kept"]
    counts = [report["removed_docs"].get(s, 0) for s in steps[:-1]] + [report["kept"]]
    fig, ax = plt.subplots(figsize=(1.2 * len(steps) + 2, 3.5))
    ax.bar(steps, counts, color=["tab:red"] * (len(steps) - 1) + ["tab:green"])
    ax.set_ylabel("documents")
    ax.set_title("Documents removed by each filter")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Filter WARC files through a chain of filters.")
    parser.add_argument("warc", nargs="+", help="WARC or WET files (gzip or plain)")
    parser.add_argument("--out", required=True, help="folder for kept text, report.json and report.png")
    parser.add_argument("--filters", default="language,gopher,quality,pii",
                        help=f"comma-separated, in order; from {','.join(FILTERS)}")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    filters = [f for f in args.filters.split(",") if f]
    report = run(args.warc, filters, args.out, args.workers)
    Console().print(report_table(report, filters))
    out = Path(args.out)
    (out / "report.json").write_text(json.dumps(report, indent=2, default=dict) + "\n")
    report_png(report, filters, out / "report.png")


if __name__ == "__main__":
    main()
