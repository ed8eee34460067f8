"""PNG figures of an IsoFLOP analysis: the profiles with their bottoms, and the fitted laws.

Figures are drawn on matplotlib's Agg canvas directly (``Figure`` + ``FigureCanvasAgg``), never
through pyplot: no display, no global state, safe in a server or a test.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from numpy.typing import ArrayLike

from .isoflop import Extrapolation, IsoFlopMinimum, PowerLaw


def _save(figure: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(figure).print_png(str(path))
    return path


def plot_isoflop_profiles(
    parameters: ArrayLike, compute_budgets: ArrayLike, losses: ArrayLike, minima: list[IsoFlopMinimum], path: str | Path
) -> Path:
    """Loss against N, one colour per compute budget, each profile's bottom starred; returns ``path``."""
    parameters, compute_budgets, losses = (np.asarray(v, dtype=np.float64) for v in (parameters, compute_budgets, losses))
    figure = Figure(figsize=(7, 4.5))
    axes = figure.add_subplot()
    budgets = np.unique(compute_budgets)
    colours = matplotlib.colormaps["viridis"](np.linspace(0, 1, len(budgets)))
    for compute, colour in zip(budgets, colours, strict=True):
        mine = compute_budgets == compute
        order = np.argsort(parameters[mine])
        axes.plot(parameters[mine][order], losses[mine][order], "o-", color=colour, ms=3, lw=1, label=f"{compute:.0e}")
    axes.scatter(
        [m.parameters for m in minima], [m.loss for m in minima], marker="*", s=90, color="crimson", zorder=3, label="bottoms"
    )
    axes.set(xscale="log", xlabel="parameters N", ylabel="final loss", title="IsoFLOP profiles")
    axes.legend(title="FLOPs", fontsize=7, ncol=2)
    figure.tight_layout()
    return _save(figure, path)


def plot_power_law(
    minima: list[IsoFlopMinimum], law: PowerLaw, extrapolation: Extrapolation, quantity: str, path: str | Path
) -> Path:
    """The bottoms' ``quantity`` ("parameters" or "tokens") against C, the law, and its band; returns ``path``."""
    compute = np.array([m.compute for m in minima])
    values = np.array([getattr(m, quantity) for m in minima])
    line = np.logspace(np.log10(compute.min()), np.log10(extrapolation.compute.max()), 100)
    figure = Figure(figsize=(7, 4.5))
    axes = figure.add_subplot()
    axes.scatter(compute, values, color="black", zorder=3, label="IsoFLOP bottoms")
    axes.plot(line, law(line), color="crimson", label=f"{law.coefficient:.3g} · C^{law.exponent:.3f}")
    axes.fill_between(
        extrapolation.compute, extrapolation.low, extrapolation.high, color="crimson", alpha=0.2,
        label=f"{extrapolation.level:.0%} bootstrap band",
    )
    for c, v in zip(extrapolation.compute, extrapolation.estimate, strict=True):
        axes.annotate(f"{v:.3g}", (c, v), textcoords="offset points", xytext=(-10, 8), fontsize=8)
    axes.set(xscale="log", yscale="log", xlabel="compute C (FLOPs)", ylabel=f"optimal {quantity}")
    axes.set_title(f"Compute-optimal {quantity}")
    axes.legend(fontsize=8)
    figure.tight_layout()
    return _save(figure, path)
