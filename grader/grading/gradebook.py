"""What a batch leaves for staff: a gradebook CSV and an HTML report with plots.

The report shows the score histogram, each problem's pass rate and the slowest tests, with the
PNG plots embedded so the single HTML file can be mailed or archived as it is.
"""

from __future__ import annotations

import base64
import csv
import io
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from ..course import Unit
from ..templating import render_template
from .journal import Row

SLOWEST = 15


def write_gradebook(rows: list[Row], path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["student", "state", "score", "possible", "days_late", "seconds", "error"])
        for r in rows:
            writer.writerow([r.id, r.state, _num(r.score), _num(r.possible), r.days_late or 0, _num(r.seconds), r.error or ""])


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def write_report(unit: Unit, rows: list[Row], out: Path) -> Path:
    """``out/report.html``: histogram, per-problem pass rates, slowest tests, errors."""
    rates, slowest = _test_stats(unit, rows, out)
    scores = [r.score or 0.0 for r in rows if r.state == "done"]
    html = render_template(
        "report/batch.html.j2",
        unit=unit.config.title,
        total=len(rows),
        done=sum(r.state == "done" for r in rows),
        errors=[r for r in rows if r.state == "error"],
        mean=sum(scores) / len(scores) if scores else 0.0,
        possible=unit.config.total_points - sum(p.points for p in unit.config.problems if not p.graded_by_tests),
        histogram=_png(_histogram, scores),
        pass_rates=_png(_bars, rates),
        rates=rates,
        slowest=slowest,
    )
    path = out / "report.html"
    path.write_text(html, encoding="utf-8")
    return path


def _test_stats(unit: Unit, rows: list[Row], out: Path) -> tuple[dict[str, float], list[dict[str, Any]]]:
    passed: dict[str, int] = defaultdict(int)
    seen: dict[str, int] = defaultdict(int)
    durations: list[dict[str, Any]] = []
    for r in rows:
        path = out / r.id / "tests.json"
        if r.state != "done" or not path.is_file():
            continue
        for t in json.loads(path.read_text(encoding="utf-8")):
            if t["problem"]:
                seen[t["problem"]] += 1
                passed[t["problem"]] += t["outcome"] == "passed"
            durations.append({"student": r.id, "test": t["nodeid"], "seconds": t["duration"]})
    rates = {p.name: passed[p.name] / seen[p.name] for p in unit.config.problems if seen[p.name]}
    slowest = sorted(durations, key=lambda d: -d["seconds"])[:SLOWEST]
    return rates, slowest


def _png(plot: Any, data: Any) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.2), dpi=100)
    plot(ax, data)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


def _histogram(ax: Any, scores: list[float]) -> None:
    ax.hist(scores, bins=20, color="#4c72b0")
    ax.set_xlabel("score")
    ax.set_ylabel("submissions")
    ax.set_title("score distribution")


def _bars(ax: Any, rates: dict[str, float]) -> None:
    names = list(rates)
    ax.barh(names, [100 * rates[n] for n in names], color="#55a868")
    ax.set_xlim(0, 100)
    ax.invert_yaxis()
    ax.set_xlabel("% of tests passed")
    ax.set_title("pass rate by problem")
