"""Learning curves: a PNG of training and validation loss by step, read from a training log.

The log is the JSON-lines file ``reference/basics/train.py`` writes (``RunLog``): one object per
line with ``step``, ``train_loss`` and ``val_loss`` (``null`` on steps without an evaluation).
Students upload it as they like, so a line that is not such a record is skipped and counted,
never fatal.
"""

from __future__ import annotations

import io
import json
import logging
import math
from dataclasses import dataclass
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..grader.errors import LmcourseError

log = logging.getLogger(__name__)


class EmptyLog(LmcourseError):
    """A training log without a single record that has a step and a loss."""


@dataclass(frozen=True)
class LossCurves:
    """The points of a training log: ``(step, loss)`` pairs in file order."""

    train: list[tuple[float, float]]
    validation: list[tuple[float, float]]
    skipped: int  # lines that gave no point: not JSON, no numeric step, or no finite loss

    @property
    def empty(self) -> bool:
        return not self.train and not self.validation


def read_log(text: str | bytes) -> LossCurves:
    """The train and validation points of a JSON-lines log; blank lines are ignored, bad ones counted."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    train: list[tuple[float, float]] = []
    validation: list[tuple[float, float]] = []
    skipped = 0
    for line in text.splitlines():
        if not line.strip():
            continue
        record = _parse(line)
        step = _number(record.get("step")) if record else None
        train_loss = _number(record.get("train_loss")) if record else None
        val_loss = _number(record.get("val_loss")) if record else None
        if step is None or (train_loss is None and val_loss is None):
            skipped += 1
            continue
        if train_loss is not None:
            train.append((step, train_loss))
        if val_loss is not None:
            validation.append((step, val_loss))
    return LossCurves(train, validation, skipped)


def learning_curve_png(text: str | bytes, *, title: str | None = None) -> bytes:
    """A 640x400 PNG of train and validation loss against step; raises EmptyLog when nothing is plottable."""
    curves = read_log(text)
    if curves.empty:
        raise EmptyLog(f"the training log has no record with a step and a loss ({curves.skipped} lines unreadable).")
    if curves.skipped:
        log.info("learning curve: skipped %d unreadable lines of the training log", curves.skipped)
    return _plot(curves, title)


def _plot(curves: LossCurves, title: str | None) -> bytes:
    # The object API, not pyplot: pyplot keeps global state and the web app draws from several threads.
    figure = Figure(figsize=(6.4, 4.0), dpi=100, layout="constrained")
    axes = figure.add_subplot()
    if curves.train:
        axes.plot(*zip(*curves.train), label="train loss", color="#1f77b4", linewidth=1.2)
    if curves.validation:
        axes.plot(*zip(*curves.validation), label="validation loss", color="#d62728", marker="o", markersize=3)
    axes.set_xlabel("step")
    axes.set_ylabel("loss (nats per token)")
    axes.grid(alpha=0.3)
    axes.legend()
    if title:
        axes.set_title(title)
    if curves.skipped:
        axes.annotate(f"{curves.skipped} unreadable log lines skipped", (0.01, 0.01), xycoords="figure fraction",
                      fontsize=8, color="#666666")
    buffer = io.BytesIO()
    FigureCanvasAgg(figure).print_png(buffer)
    return buffer.getvalue()


def _parse(line: str) -> dict[str, Any] | None:
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def _number(value: Any) -> float | None:
    """A finite int or float (not a bool), else None: NaN losses of a diverged run cannot be drawn."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None
