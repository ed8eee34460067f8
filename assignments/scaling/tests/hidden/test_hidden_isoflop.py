"""Hidden tests of the IsoFLOP analysis: other windows, run orders, single profiles that do or do not
bracket a bottom, another sweep, degenerate inputs, and the bootstrap's determinism and level."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests import synthetic
from tests.hidden import inputs_hidden as inputs

SNAPSHOT = json.loads((Path(__file__).resolve().parent / "snapshots" / "hidden_reference.json").read_text())
PUBLIC = json.loads((Path(__file__).resolve().parents[1] / "public" / "snapshots" / "isoflops_reference.json").read_text())


def check_minima(got: list[dict[str, float]], expected: list[dict[str, float]]) -> None:
    assert [m["compute"] for m in got] == [m["compute"] for m in expected]
    for g, e in zip(got, expected, strict=True):
        assert g["parameters"] == pytest.approx(e["parameters"], rel=1e-5), e["compute"]
        assert g["loss"] == pytest.approx(e["loss"], rel=1e-6), e["compute"]
        assert g["tokens"] == pytest.approx(e["tokens"], rel=1e-5), e["compute"]


@pytest.mark.problem("isoflop_fit")
@pytest.mark.parametrize("window", [1, 3])
def test_minima_with_another_window(student, window):
    check_minima(student.run_isoflop_minima(*inputs.shipped_sweep(), window=window), SNAPSHOT[f"shipped_window_{window}"])


@pytest.mark.problem("isoflop_fit")
def test_minima_do_not_depend_on_the_order_of_the_runs(student):
    check_minima(student.run_isoflop_minima(*inputs.shuffled_sweep(seed=8)), PUBLIC["minima"])


@pytest.mark.problem("isoflop_fit")
@pytest.mark.parametrize("index", range(12))
def test_single_noisy_profiles(student, index):
    sizes, losses, window = inputs.noisy_profiles()[index]
    n, loss = student.run_parabola_minimum(sizes, losses, window)
    expected_n, expected_loss = SNAPSHOT["noisy_profiles"][index]
    assert n == pytest.approx(expected_n, rel=1e-5)
    assert loss == pytest.approx(expected_loss, rel=1e-6)


@pytest.mark.problem("isoflop_fit")
def test_three_runs_with_the_best_in_the_middle(student):
    sizes, losses = synthetic.parabola_profile(7.9, 3.1, 0.25, [7.4, 7.8, 8.6])
    n, loss = student.run_parabola_minimum(sizes, losses, 2)
    assert n == pytest.approx(10**7.9, rel=1e-6)
    assert loss == pytest.approx(3.1, rel=1e-9)


@pytest.mark.problem("isoflop_fit")
def test_best_run_first_is_returned_as_is(student):
    sizes, losses = synthetic.parabola_profile(5.0, 2.0, 0.3, [6.0, 6.4, 6.8, 7.2])
    assert student.run_parabola_minimum(sizes[::-1], losses[::-1], 2) == pytest.approx((sizes[0], losses[0]))


@pytest.mark.problem("isoflop_fit")
def test_another_sweep_off_centre(student):
    sweep = inputs.hidden_sweep()
    expected = SNAPSHOT["hidden_sweep"]
    got = student.run_isoflop_minima(sweep["parameters"], sweep["compute_budgets"], sweep["losses"])
    check_minima(got, expected["minima"])
    compute = [m["compute"] for m in got]
    for quantity in ("parameters", "tokens"):
        law = student.run_fit_power_law(compute, [m[quantity] for m in got])
        assert law["exponent"] == pytest.approx(expected[f"{quantity}_law"]["exponent"], abs=1e-5), quantity
        assert law["coefficient"] == pytest.approx(expected[f"{quantity}_law"]["coefficient"], rel=1e-3), quantity


@pytest.mark.problem("isoflop_fit")
def test_power_law_exponents_add_up_to_one(student):
    # C = 6 N D at every bottom, so the two exponents sum to 1 and the coefficients multiply to 1/6.
    sweep = inputs.hidden_sweep()
    minima = student.run_isoflop_minima(sweep["parameters"], sweep["compute_budgets"], sweep["losses"])
    compute = [m["compute"] for m in minima]
    n_law = student.run_fit_power_law(compute, [m["parameters"] for m in minima])
    d_law = student.run_fit_power_law(compute, [m["tokens"] for m in minima])
    assert n_law["exponent"] + d_law["exponent"] == pytest.approx(1.0, abs=1e-9)
    assert n_law["coefficient"] * d_law["coefficient"] == pytest.approx(1 / 6, rel=1e-9)


@pytest.mark.problem("isoflop_fit")
def test_power_law_of_noisy_points_is_least_squares_in_log_space(student):
    rng = np.random.default_rng(4)
    x = np.logspace(16, 21, 12)
    y = 0.02 * x**0.47 * np.exp(rng.normal(0, 0.1, x.size))
    slope, intercept = np.polyfit(np.log(x), np.log(y), 1)
    law = student.run_fit_power_law(x.tolist(), y.tolist())
    assert law["exponent"] == pytest.approx(slope, rel=1e-9)
    assert law["coefficient"] == pytest.approx(np.exp(intercept), rel=1e-7)


@pytest.mark.problem("isoflop_fit")
def test_power_law_through_one_x_is_refused(student):
    with pytest.raises(ValueError):
        student.run_fit_power_law([1e18, 1e18, 1e18], [1e8, 2e8, 3e8])


@pytest.mark.problem("isoflop_fit")
def test_bootstrap_is_deterministic_for_a_seed(student):
    minima = PUBLIC["minima"]
    args = ([m["compute"] for m in minima], [m["parameters"] for m in minima], [1e23])
    first = student.run_bootstrap_power_law(*args, samples=300, seed=9, level=0.9)
    assert student.run_bootstrap_power_law(*args, samples=300, seed=9, level=0.9) == first
    assert student.run_bootstrap_power_law(*args, samples=300, seed=10, level=0.9) != first


@pytest.mark.problem("isoflop_fit")
def test_bootstrap_band_at_another_level(student):
    expected = SNAPSHOT["hidden_bootstrap"]
    minima = SNAPSHOT["hidden_sweep"]["minima"]
    args = ([m["compute"] for m in minima], [m["parameters"] for m in minima], expected["targets"])
    band = student.run_bootstrap_power_law(*args, samples=expected["samples"], seed=1, level=expected["level"])
    wider = student.run_bootstrap_power_law(*args, samples=expected["samples"], seed=1, level=0.99)
    assert band["estimate"] == pytest.approx(expected["estimate"], rel=1e-6)
    width = np.log10(np.array(band["high"]) / np.array(band["low"]))
    np.testing.assert_allclose(width, np.log10(np.array(expected["high"]) / np.array(expected["low"])), rtol=0.2)
    assert np.all(np.array(wider["low"]) <= np.array(band["low"])) and np.all(np.array(wider["high"]) >= np.array(band["high"]))
