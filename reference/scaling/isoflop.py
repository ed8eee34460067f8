"""IsoFLOP analysis: the compute-optimal model size from sweeps at fixed compute.

This is Approach 2 of Hoffmann et al. (2022), "Training Compute-Optimal Large Language Models".
A sweep trains models of several sizes N with the same compute budget C, so each run sees
D = C / (6 N) tokens. Plotted against log N, the final losses of one budget trace a valley (an
*IsoFLOP profile*): too small a model underfits, too large a one sees too few tokens. The bottom
of each valley is the best size for that budget; power laws through the bottoms,

    N_opt(C) = k_N · C^a        D_opt(C) = k_D · C^b        (a + b = 1 since C = 6 N D),

extrapolate to budgets nobody has trained at. Bootstrap resampling of the bottoms turns the
extrapolation into a band rather than a single number.

Arrays are NumPy; every function also takes plain sequences.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike

#: Training FLOPs per parameter per token (forward 2, backward 4): C = 6 N D.
FLOPS_PER_PARAMETER_TOKEN = 6.0


@dataclass(frozen=True)
class PowerLaw:
    """``y = coefficient · x ** exponent``."""

    coefficient: float
    exponent: float

    def __call__(self, x: ArrayLike) -> np.ndarray:
        return self.coefficient * np.asarray(x, dtype=np.float64) ** self.exponent


@dataclass(frozen=True)
class IsoFlopMinimum:
    """The bottom of one IsoFLOP profile."""

    compute: float  # C, FLOPs of every run of the profile
    parameters: float  # N at the bottom
    tokens: float  # D = C / (6 N)
    loss: float  # the loss there


@dataclass(frozen=True)
class Extrapolation:
    """A power law's prediction at some budgets, with a bootstrap band around it."""

    compute: np.ndarray  # (T,) the budgets predicted at
    estimate: np.ndarray  # (T,) the power law fitted to all points
    low: np.ndarray  # (T,) lower edge of the band
    high: np.ndarray  # (T,) upper edge of the band
    level: float  # the band holds this share of the bootstrap predictions (0.95)


def load_runs(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(parameters, compute_budgets, final_losses)``, each (R,), from a JSON list of runs.

    Each run is an object with the keys ``parameters``, ``compute_budget`` and ``final_loss``.
    """
    runs = json.loads(Path(path).read_text(encoding="utf-8"))
    columns = ([run[key] for run in runs] for key in ("parameters", "compute_budget", "final_loss"))
    parameters, budgets, losses = (np.asarray(column, dtype=np.float64) for column in columns)
    return parameters, budgets, losses


def parabola_minimum(parameters: ArrayLike, losses: ArrayLike, window: int = 2) -> tuple[float, float]:
    """The bottom ``(N, loss)`` of one IsoFLOP profile.

    parameters, losses: (R,) the runs of one compute budget, in any order.

    A parabola in log10 N is fitted (least squares) to the best run and its ``window``
    neighbours on each side; its vertex is the bottom. Near the bottom every smooth valley
    looks like a parabola, while far-away runs would bend the fit, hence the window. When the
    best run sits at the edge of the sweep, or the parabola does not open upwards, or its
    vertex falls outside the runs it was fitted to, the data do not bracket a minimum and the
    best run itself is returned.
    """
    # BEGIN SOLUTION problem=isoflop_fit
    order = np.argsort(np.asarray(parameters, dtype=np.float64))
    log_n = np.log10(np.asarray(parameters, dtype=np.float64)[order])
    loss = np.asarray(losses, dtype=np.float64)[order]
    best = int(np.argmin(loss))
    lo, hi = max(0, best - window), min(len(loss), best + window + 1)
    if 0 < best < len(loss) - 1 and hi - lo >= 3:
        a, b, c = np.polyfit(log_n[lo:hi], loss[lo:hi], 2)
        vertex = -b / (2 * a) if a > 0 else np.nan
        if log_n[lo] <= vertex <= log_n[hi - 1]:
            return float(10**vertex), float(c - b * b / (4 * a))
    return float(10 ** log_n[best]), float(loss[best])
    # END SOLUTION


def isoflop_minima(
    parameters: ArrayLike, compute_budgets: ArrayLike, losses: ArrayLike, window: int = 2
) -> list[IsoFlopMinimum]:
    """The bottom of every IsoFLOP profile, in increasing order of compute.

    parameters, compute_budgets, losses: (R,) one entry per run; runs with the same compute
    budget form one profile. Each bottom comes from :func:`parabola_minimum`, and its tokens
    from C = 6 N D.
    """
    # BEGIN SOLUTION problem=isoflop_fit
    parameters = np.asarray(parameters, dtype=np.float64)
    compute_budgets = np.asarray(compute_budgets, dtype=np.float64)
    losses = np.asarray(losses, dtype=np.float64)
    minima = []
    for compute in np.unique(compute_budgets):
        mine = compute_budgets == compute
        n, loss = parabola_minimum(parameters[mine], losses[mine], window)
        minima.append(IsoFlopMinimum(float(compute), n, float(compute / (FLOPS_PER_PARAMETER_TOKEN * n)), loss))
    return minima
    # END SOLUTION


def fit_power_law(x: ArrayLike, y: ArrayLike) -> PowerLaw:
    """The power law ``y = k · x^a`` through positive points, by least squares in log-log space.

    x, y: (P,) with at least two distinct x. A power law is a straight line in log-log space,
    and fitting there weighs every decade alike (a fit in linear space would be decided by the
    largest points alone).
    """
    # BEGIN SOLUTION problem=isoflop_fit
    log_x, log_y = np.log(np.asarray(x, dtype=np.float64)), np.log(np.asarray(y, dtype=np.float64))
    if np.ptp(log_x) == 0:
        raise ValueError("a power law needs points at two or more distinct x")
    exponent, log_coefficient = np.polyfit(log_x, log_y, 1)
    return PowerLaw(float(np.exp(log_coefficient)), float(exponent))
    # END SOLUTION


def fit_isoflop_laws(minima: list[IsoFlopMinimum]) -> tuple[PowerLaw, PowerLaw]:
    """``(N_opt(C), D_opt(C))``: power laws through the bottoms of the profiles."""
    compute = [m.compute for m in minima]
    return fit_power_law(compute, [m.parameters for m in minima]), fit_power_law(compute, [m.tokens for m in minima])


def bootstrap_power_law(
    x: ArrayLike, y: ArrayLike, targets: ArrayLike, samples: int = 1000, seed: int = 0, level: float = 0.95
) -> Extrapolation:
    """Extrapolate ``y = k · x^a`` to ``targets`` with a bootstrap band.

    x, y: (P,) the points (say IsoFLOP bottoms); targets: (T,) where to predict. Each of
    ``samples`` resamples draws P points with replacement and refits; the band holds the
    central ``level`` share of their predictions at each target. Resamples that hold a
    single distinct x cannot fix a slope and are drawn again. The band shows how much the
    extrapolation rests on the handful of points it came from.
    """
    # BEGIN SOLUTION problem=isoflop_fit
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.float64)
    if len(np.unique(x)) < 2:
        raise ValueError("a power law needs points at two or more distinct x")
    rng = np.random.default_rng(seed)
    predictions = np.empty((samples, len(targets)))
    drawn = 0
    while drawn < samples:
        pick = rng.integers(0, len(x), size=len(x))
        if np.ptp(x[pick]) == 0:
            continue
        predictions[drawn] = fit_power_law(x[pick], y[pick])(targets)
        drawn += 1
    # Percentiles of log predictions: the band is symmetric in decades, as the fit is.
    tail = 100 * (1 - level) / 2
    low, high = np.exp(np.percentile(np.log(predictions), [tail, 100 - tail], axis=0))
    return Extrapolation(targets, fit_power_law(x, y)(targets), low, high, level)
    # END SOLUTION
