"""The reference fits recover what generated the data: IsoFLOP bottoms and power laws on exact
data, and the parametric law on noisy data drawn from known coefficients (Chinchilla's and two
other sets). Tolerances are stated per coefficient; they are a few times the spread of a correct
fit at 0.5% noise (E ±1%, α and β ±0.01, A and B ±15%), so a wrong objective or a bad start fails."""

from __future__ import annotations

import math

import numpy as np
import pytest

from reference.scaling import chinchilla, isoflop
from reference.scaling.plots import plot_isoflop_profiles, plot_power_law

KNOWN_LAWS = {
    "chinchilla": {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28},
    "epoch-replication": {"E": 1.82, "A": 482.01, "B": 2085.43, "alpha": 0.3478, "beta": 0.3658},
    "data-hungry": {"E": 2.1, "A": 250.0, "B": 900.0, "alpha": 0.30, "beta": 0.33},
}


def sweep(law: dict[str, float], seed: int, noise: float = 0.005) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(N, D, C, loss): nine budgets 1e18..1e22, nine sizes over ±0.8 decades around the optimum."""
    truth = chinchilla.ParametricLaw(**law)
    budgets = np.logspace(18, 22, 9)
    n = np.concatenate([truth.compute_optimal(c)[0] * np.logspace(-0.8, 0.8, 9) for c in budgets])
    c = np.repeat(budgets, 9)
    d = c / (6 * n)
    loss = truth.loss(n, d) * np.exp(noise * np.random.default_rng(seed).standard_normal(n.size))
    return n, d, c, loss


@pytest.mark.parametrize("name", KNOWN_LAWS)
def test_parametric_fit_recovers_known_coefficients(name: str) -> None:
    law = KNOWN_LAWS[name]
    n, d, _, loss = sweep(law, seed=0)
    fit = chinchilla.fit_parametric(n, d, loss)
    assert fit.E == pytest.approx(law["E"], rel=0.03)
    assert fit.alpha == pytest.approx(law["alpha"], abs=0.03)
    assert fit.beta == pytest.approx(law["beta"], abs=0.03)
    assert abs(math.log(fit.A / law["A"])) < 0.45
    assert abs(math.log(fit.B / law["B"])) < 0.45
    truth = chinchilla.ParametricLaw(**law)
    assert fit.compute_optimal(1e23)[0] == pytest.approx(truth.compute_optimal(1e23)[0], rel=0.25)


def test_parametric_fit_is_exact_without_noise() -> None:
    n, d, _, loss = sweep(KNOWN_LAWS["chinchilla"], seed=0, noise=0.0)
    fit = chinchilla.fit_parametric(n, d, loss)
    np.testing.assert_allclose(fit.loss(n, d), loss, rtol=1e-6)
    assert fit.alpha == pytest.approx(0.34, abs=2e-3) and fit.beta == pytest.approx(0.28, abs=2e-3)


def test_compute_optimal_minimises_the_loss_at_fixed_compute() -> None:
    law = chinchilla.ParametricLaw(**KNOWN_LAWS["chinchilla"])
    n, d = law.compute_optimal(5.76e23)  # Chinchilla's own budget: about 70B parameters on 1.4T tokens
    assert 6 * n * d == pytest.approx(5.76e23)
    assert 3e10 < n < 1e11
    for scale in (0.98, 1.02):
        assert law.loss(n * scale, d / scale) > law.loss(n, d)


def test_huber_joins_smoothly_at_delta() -> None:
    import torch

    r = torch.tensor([-1e-3, -1e-3 + 1e-12, 1e-3 - 1e-12, 1e-3, 0.5], dtype=torch.float64)
    h = chinchilla.huber(r, 1e-3)
    assert h[0].item() == pytest.approx(0.5e-6) and h[1].item() == pytest.approx(0.5e-6)
    assert h[4].item() == pytest.approx(1e-3 * (0.5 - 0.5e-3))


def test_isoflop_bottoms_and_power_laws_of_exact_profiles() -> None:
    # Exact parabolas in log10 N with bottoms on N_opt = 0.1 · C^0.5: the fits give them back exactly.
    budgets = np.array([1e18, 1e19, 1e20, 1e21])
    vertex = np.log10(0.1 * budgets**0.5)
    log_n = np.concatenate([v + np.linspace(-1, 1, 9) + 0.05 for v in vertex])  # the bottom between two runs
    c = np.repeat(budgets, 9)
    loss = 2.0 + 0.3 * (log_n - np.repeat(vertex, 9)) ** 2
    minima = isoflop.isoflop_minima(10**log_n, c, loss)
    np.testing.assert_allclose([m.parameters for m in minima], 10**vertex, rtol=1e-9)
    n_law, d_law = isoflop.fit_isoflop_laws(minima)
    assert n_law.exponent == pytest.approx(0.5, abs=1e-9) and n_law.coefficient == pytest.approx(0.1, rel=1e-7)
    assert d_law.exponent == pytest.approx(0.5, abs=1e-9) and d_law.coefficient == pytest.approx(1 / 0.6, rel=1e-7)


def test_bootstrap_band_holds_the_truth_and_widens_with_distance() -> None:
    rng = np.random.default_rng(1)
    x = np.logspace(18, 21, 8)
    y = 0.1 * x**0.5 * np.exp(rng.normal(0, 0.05, x.size))
    band = isoflop.bootstrap_power_law(x, y, [1e22, 1e24], samples=1000, seed=0)
    truth = 0.1 * np.array([1e22, 1e24]) ** 0.5
    assert np.all(band.low < truth) and np.all(truth < band.high)
    widths = np.log10(band.high / band.low)
    assert widths[1] > widths[0] > 0


def test_plots_are_pngs(tmp_path) -> None:
    n, _, c, loss = sweep(KNOWN_LAWS["chinchilla"], seed=2)
    minima = isoflop.isoflop_minima(n, c, loss)
    law, _ = isoflop.fit_isoflop_laws(minima)
    band = isoflop.bootstrap_power_law([m.compute for m in minima], [m.parameters for m in minima], [1e24], samples=200)
    for path in (plot_isoflop_profiles(n, c, loss, minima, tmp_path / "profiles.png"),
                 plot_power_law(minima, law, band, "parameters", tmp_path / "sub" / "law.png")):
        data = path.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
