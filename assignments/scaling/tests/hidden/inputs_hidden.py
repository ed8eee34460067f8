"""Inputs of the hidden tests, regenerated from seeds on both sides (no expected values here)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tests import synthetic

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
#: Budgets of the hidden sweep: fewer, wider apart, the true bottom off-centre.
HIDDEN_BUDGETS = (1e17, 1e18, 1e19, 1e20, 1e21)


def shipped_sweep() -> tuple[list[float], list[float], list[float]]:
    runs = json.loads((FIXTURES / "isoflops.json").read_text())
    return [r["parameters"] for r in runs], [r["compute_budget"] for r in runs], [r["final_loss"] for r in runs]


def shuffled_sweep(seed: int) -> tuple[list[float], list[float], list[float]]:
    """The shipped sweep in a random order."""
    columns = np.array(shipped_sweep())
    order = np.random.default_rng(seed).permutation(columns.shape[1])
    return tuple(columns[:, order].tolist())  # type: ignore[return-value]


def hidden_sweep() -> dict[str, list[float]]:
    return synthetic.isoflop_sweep(synthetic.DATA_HUNGRY, seed=11, noise=0.008, budgets=HIDDEN_BUDGETS, sizes=7, spread=0.7, offset=0.25)


def noisy_profiles(count: int = 12) -> list[tuple[list[float], list[float], int]]:
    """(sizes, losses, window) of single profiles: uneven sizes, shuffled, some too noisy to bracket a bottom."""
    rng = np.random.default_rng(5)
    profiles = []
    for i in range(count):
        runs = int(rng.integers(3, 10))
        log_sizes = np.sort(rng.uniform(6.5, 10.5, runs))
        vertex = rng.uniform(6.0, 11.0)
        losses = 2.2 + rng.uniform(0.05, 0.5) * (log_sizes - vertex) ** 2 + rng.normal(0, 0.02 * (i % 3), runs)
        order = rng.permutation(runs)
        profiles.append(((10 ** log_sizes[order]).tolist(), losses[order].tolist(), int(rng.integers(1, 4))))
    return profiles


def sweep_with_outliers() -> dict[str, list[float]]:
    """Chinchilla's law with 0.5% noise, and four runs whose loss came out 30% high (a bad node, a data bug)."""
    runs = synthetic.isoflop_sweep(synthetic.CHINCHILLA, seed=3)
    for i in (4, 23, 40, 66):
        runs["losses"][i] *= 1.3
    return runs
