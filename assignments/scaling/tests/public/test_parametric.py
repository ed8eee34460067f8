"""The parametric loss L(N, D) = E + A/N^α + B/D^β: its pieces, its fit, and compute-optimal allocation.

Recovery: runs drawn from Chinchilla's published law with 0.5% noise must give back its
coefficients within the tolerances below (measured spread of a correct fit: E ±1%, α and β
±0.01, A and B ±15%).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from tests import synthetic

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
SNAPSHOT = json.loads((Path(__file__).resolve().parent / "snapshots" / "isoflops_reference.json").read_text())


def huber(r: np.ndarray, delta: float) -> np.ndarray:
    return np.where(np.abs(r) <= delta, 0.5 * r**2, delta * (np.abs(r) - 0.5 * delta))


def check_recovery(fit: dict[str, float], law: dict[str, float]) -> None:
    assert fit["E"] == pytest.approx(law["E"], rel=0.03)
    assert fit["alpha"] == pytest.approx(law["alpha"], abs=0.03)
    assert fit["beta"] == pytest.approx(law["beta"], abs=0.03)
    assert abs(math.log(fit["A"] / law["A"])) < 0.45, ("A", fit["A"], law["A"])
    assert abs(math.log(fit["B"] / law["B"])) < 0.45, ("B", fit["B"], law["B"])
    got = synthetic.law_optimum(fit, np.array([1e23]))[0]
    assert got == pytest.approx(synthetic.law_optimum(law, np.array([1e23]))[0], rel=0.25)


@pytest.mark.problem("parametric_fit")
def test_huber_is_quadratic_inside_delta_and_linear_beyond(student):
    residuals = np.array([-0.02, -1e-3, -4e-4, 0.0, 3e-4, 1e-3, 0.05])
    got = student.run_huber(residuals.tolist(), 1e-3)
    np.testing.assert_allclose(got, huber(residuals, 1e-3), rtol=1e-12, atol=1e-18)


@pytest.mark.problem("parametric_fit")
def test_predicted_log_loss_is_the_log_of_the_law(student):
    n, d = np.array([1e7, 3e8, 7e10]), np.array([2e8, 5e9, 1e12])
    theta = [6.0, 6.5, 0.5, 0.34, 0.28]  # a, b, e, alpha, beta
    law = {"E": math.exp(theta[2]), "A": math.exp(theta[0]), "B": math.exp(theta[1]), "alpha": theta[3], "beta": theta[4]}
    got = student.run_predicted_log_loss(theta, n.tolist(), d.tolist())
    np.testing.assert_allclose(got, np.log(synthetic.law_loss(law, n, d)), rtol=1e-12)


@pytest.mark.problem("parametric_fit")
def test_compute_optimal_allocation_of_chinchilla(student):
    compute = [1e20, 5.76e23, 1e25]
    got = student.run_compute_optimal(synthetic.CHINCHILLA, compute)
    n, d = synthetic.law_optimum(synthetic.CHINCHILLA, np.array(compute))
    np.testing.assert_allclose(got["parameters"], n, rtol=1e-9)
    np.testing.assert_allclose(got["tokens"], d, rtol=1e-9)
    np.testing.assert_allclose(6 * np.array(got["parameters"]) * np.array(got["tokens"]), compute, rtol=1e-9)


@pytest.mark.problem("parametric_fit")
def test_fit_recovers_chinchilla(student):
    runs = synthetic.isoflop_sweep(synthetic.CHINCHILLA, seed=0)
    check_recovery(student.run_fit_parametric(runs["parameters"], runs["tokens"], runs["losses"]), synthetic.CHINCHILLA)


@pytest.mark.problem("parametric_fit")
def test_fit_of_the_shipped_sweep_matches_the_reference(student):
    runs = json.loads((FIXTURES / "isoflops.json").read_text())
    n = np.array([r["parameters"] for r in runs])
    d = np.array([r["compute_budget"] for r in runs]) / (6 * n)
    fit = student.run_fit_parametric(n.tolist(), d.tolist(), [r["final_loss"] for r in runs])
    expected = SNAPSHOT["parametric"]
    # The objective has one clear minimum here: a correct fit lands on it, whatever its path.
    np.testing.assert_allclose(synthetic.law_loss(fit, n, d), synthetic.law_loss(expected, n, d), rtol=1e-3)
    assert fit["alpha"] == pytest.approx(expected["alpha"], abs=0.01)
    assert fit["beta"] == pytest.approx(expected["beta"], abs=0.01)
