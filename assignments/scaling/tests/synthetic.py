"""Runs drawn from known laws, for the tests: the same seed gives the same runs everywhere.

An IsoFLOP sweep from a parametric law L(N, D) = E + A/N^α + B/D^β: at each compute budget,
model sizes spread evenly in log N around the law's optimum, D = C / (6 N), and multiplicative
log-normal noise. Tests compare a fit to the law that generated the data.
"""

from __future__ import annotations

import numpy as np

#: Hoffmann et al. (2022), Approach 3.
CHINCHILLA = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
#: Besiroglu et al. (2024), "Chinchilla Scaling: A replication attempt".
EPOCH_REPLICATION = {"E": 1.82, "A": 482.01, "B": 2085.43, "alpha": 0.3478, "beta": 0.3658}
#: A data-hungrier world: D/N at the optimum falls as compute grows.
DATA_HUNGRY = {"E": 2.1, "A": 250.0, "B": 900.0, "alpha": 0.30, "beta": 0.33}


def law_loss(law: dict[str, float], parameters: np.ndarray, tokens: np.ndarray) -> np.ndarray:
    return law["E"] + law["A"] / parameters ** law["alpha"] + law["B"] / tokens ** law["beta"]


def law_optimum(law: dict[str, float], compute: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N_opt, D_opt) of the law at ``compute`` FLOPs, with C = 6 N D."""
    total = law["alpha"] + law["beta"]
    g = (law["alpha"] * law["A"] / (law["beta"] * law["B"])) ** (1 / total)
    c = np.asarray(compute, dtype=np.float64) / 6
    return g * c ** (law["beta"] / total), c ** (law["alpha"] / total) / g


def isoflop_sweep(
    law: dict[str, float],
    seed: int,
    noise: float = 0.005,
    budgets: tuple[float, ...] = (1e18, 3e18, 1e19, 3e19, 1e20, 3e20, 1e21, 3e21, 1e22),
    sizes: int = 9,
    spread: float = 0.8,
    offset: float = 0.0,
) -> dict[str, list[float]]:
    """``parameters``, ``tokens``, ``compute_budgets``, ``losses`` (lists) of a sweep.

    Each budget gets ``sizes`` models over ±``spread`` decades around 10^``offset`` times the
    law's optimal N (a nonzero offset puts the true bottom off-centre).
    """
    rng = np.random.default_rng(seed)
    parameters, compute = [], []
    for c in budgets:
        centre = law_optimum(law, np.array(c))[0] * 10**offset
        parameters += list(centre * np.logspace(-spread, spread, sizes))
        compute += [c] * sizes
    n, c = np.array(parameters), np.array(compute)
    d = c / (6 * n)
    losses = law_loss(law, n, d) * np.exp(noise * rng.standard_normal(len(n)))
    return {"parameters": n.tolist(), "tokens": d.tolist(), "compute_budgets": c.tolist(), "losses": losses.tolist()}


def parabola_profile(vertex: float, floor: float, curvature: float, log10_sizes: list[float]) -> tuple[list[float], list[float]]:
    """(N, loss) on an exact parabola in log10 N: ``floor + curvature · (log10 N − vertex)²``."""
    sizes = np.asarray(log10_sizes, dtype=np.float64)
    return (10**sizes).tolist(), (floor + curvature * (sizes - vertex) ** 2).tolist()
