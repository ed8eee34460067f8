"""IsoFLOP analysis: profile bottoms, power laws and bootstrap bands, on exact data and on the shipped sweep.

``fixtures/isoflops.json`` is the sweep the notebook analyses; ``snapshots/isoflops_reference.json``
holds what the reference makes of it (made by ``make_snapshots.py``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests import synthetic

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
SNAPSHOT = json.loads((Path(__file__).resolve().parent / "snapshots" / "isoflops_reference.json").read_text())


def sweep() -> tuple[list[float], list[float], list[float]]:
    runs = json.loads((FIXTURES / "isoflops.json").read_text())
    return [r["parameters"] for r in runs], [r["compute_budget"] for r in runs], [r["final_loss"] for r in runs]


@pytest.mark.problem("isoflop_fit")
def test_parabola_minimum_finds_the_vertex_of_an_exact_parabola(student):
    sizes, losses = synthetic.parabola_profile(8.3, 2.5, 0.4, [7.0, 7.5, 8.0, 8.5, 9.0, 9.5, 10.0])
    n, loss = student.run_parabola_minimum(sizes, losses)
    assert n == pytest.approx(10**8.3, rel=1e-6)
    assert loss == pytest.approx(2.5, rel=1e-9)


@pytest.mark.problem("isoflop_fit")
def test_parabola_minimum_at_the_edge_is_the_best_run(student):
    # Loss still falling at the largest model: the sweep does not bracket a minimum.
    sizes, losses = synthetic.parabola_profile(11.0, 2.5, 0.4, [7.0, 7.5, 8.0, 8.5, 9.0])
    assert student.run_parabola_minimum(sizes, losses) == pytest.approx((1e9, losses[-1]))


@pytest.mark.problem("isoflop_fit")
def test_isoflop_minima_of_the_shipped_sweep(student):
    got = student.run_isoflop_minima(*sweep())
    expected = SNAPSHOT["minima"]
    assert [m["compute"] for m in got] == [m["compute"] for m in expected]  # one per budget, in increasing order
    for g, e in zip(got, expected, strict=True):
        assert g["parameters"] == pytest.approx(e["parameters"], rel=1e-5), e["compute"]
        assert g["loss"] == pytest.approx(e["loss"], rel=1e-6), e["compute"]
        assert g["tokens"] == pytest.approx(g["compute"] / (6 * g["parameters"]), rel=1e-9)


@pytest.mark.problem("isoflop_fit")
def test_fit_power_law_recovers_an_exact_law(student):
    x = np.logspace(15, 22, 8)
    law = student.run_fit_power_law(x.tolist(), (3.7 * x**0.52).tolist())
    assert law["exponent"] == pytest.approx(0.52, rel=1e-9)
    assert law["coefficient"] == pytest.approx(3.7, rel=1e-7)


@pytest.mark.problem("isoflop_fit")
def test_power_laws_through_the_shipped_bottoms(student):
    minima = SNAPSHOT["minima"]
    compute = [m["compute"] for m in minima]
    for quantity in ("parameters", "tokens"):
        law = student.run_fit_power_law(compute, [m[quantity] for m in minima])
        expected = SNAPSHOT[f"{quantity}_law"]
        assert law["exponent"] == pytest.approx(expected["exponent"], abs=1e-6), quantity
        assert law["coefficient"] == pytest.approx(expected["coefficient"], rel=1e-4), quantity


@pytest.mark.problem("isoflop_fit")
def test_bootstrap_band_around_the_extrapolation(student):
    expected = SNAPSHOT["bootstrap"]
    minima = SNAPSHOT["minima"]
    band = student.run_bootstrap_power_law(
        [m["compute"] for m in minima], [m["parameters"] for m in minima], expected["targets"],
        samples=expected["samples"], seed=0, level=expected["level"],
    )  # fmt: skip
    assert band["estimate"] == pytest.approx(expected["estimate"], rel=1e-6)
    for low, estimate, high in zip(band["low"], band["estimate"], band["high"], strict=True):
        assert low < estimate < high
    # Another resampling order draws other resamples: the width (in decades) agrees, not the digits.
    width = np.log10(np.array(band["high"]) / np.array(band["low"]))
    reference = np.log10(np.array(expected["high"]) / np.array(expected["low"]))
    np.testing.assert_allclose(width, reference, rtol=0.2)
