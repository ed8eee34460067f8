"""Hidden tests of the parametric fit: other published laws, outliers (the Huber loss at work),
extreme parameters (the log-sum-exp at work), another sweep, compute-optimal allocation elsewhere."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from tests import synthetic
from tests.hidden import inputs_hidden as inputs
from tests.public.test_parametric import check_recovery, huber

SNAPSHOT = json.loads((Path(__file__).resolve().parent / "snapshots" / "hidden_reference.json").read_text())


@pytest.mark.problem("parametric_fit")
@pytest.mark.parametrize(("law", "seed", "offset"), [(synthetic.EPOCH_REPLICATION, 1, 0.0), (synthetic.DATA_HUNGRY, 2, 0.2)],
                         ids=["epoch-replication", "data-hungry"])
def test_fit_recovers_other_laws(student, law, seed, offset):
    runs = synthetic.isoflop_sweep(law, seed=seed, offset=offset)
    check_recovery(student.run_fit_parametric(runs["parameters"], runs["tokens"], runs["losses"]), law)


@pytest.mark.problem("parametric_fit")
def test_fit_shrugs_off_outliers(student):
    # Four runs 30% too high: squared errors would bend the law towards them; the Huber loss does not.
    runs = inputs.sweep_with_outliers()
    check_recovery(student.run_fit_parametric(runs["parameters"], runs["tokens"], runs["losses"]), synthetic.CHINCHILLA)


@pytest.mark.problem("parametric_fit")
def test_fit_of_another_sweep_matches_the_reference(student):
    sweep = inputs.hidden_sweep()
    fit = student.run_fit_parametric(sweep["parameters"], sweep["tokens"], sweep["losses"])
    n, d = np.array(sweep["parameters"]), np.array(sweep["tokens"])
    expected = SNAPSHOT["hidden_parametric"]
    np.testing.assert_allclose(synthetic.law_loss(fit, n, d), synthetic.law_loss(expected, n, d), rtol=1e-3)


@pytest.mark.problem("parametric_fit")
def test_predicted_log_loss_does_not_overflow(student):
    # exp(a - α log N) is far beyond float64 here; the log of the sum is still an ordinary number.
    theta = [760.0, 5.0, 0.5, 0.3, 0.3]
    n, d = np.array([1e6, 1e9]), np.array([1e8, 1e11])
    terms = np.stack([theta[0] - theta[3] * np.log(n), theta[1] - theta[4] * np.log(d), np.full(2, theta[2])])
    expected = np.logaddexp.reduce(terms, axis=0)
    np.testing.assert_allclose(student.run_predicted_log_loss(theta, n.tolist(), d.tolist()), expected, rtol=1e-12)


@pytest.mark.problem("parametric_fit")
@pytest.mark.parametrize("delta", [1e-2, 0.5])
def test_huber_with_another_delta(student, delta):
    residuals = np.linspace(-2, 2, 41)
    np.testing.assert_allclose(student.run_huber(residuals.tolist(), delta), huber(residuals, delta), rtol=1e-12, atol=1e-18)


@pytest.mark.problem("parametric_fit")
@pytest.mark.parametrize("law", [synthetic.EPOCH_REPLICATION, {"E": 1.5, "A": 300.0, "B": 300.0, "alpha": 0.3, "beta": 0.3}],
                         ids=["epoch-replication", "symmetric"])
def test_compute_optimal_of_other_laws(student, law):
    compute = [1e15, 1e21, 1e27]
    got = student.run_compute_optimal(law, compute)
    n, d = synthetic.law_optimum(law, np.array(compute))
    np.testing.assert_allclose(got["parameters"], n, rtol=1e-9)
    np.testing.assert_allclose(got["tokens"], d, rtol=1e-9)
    # The optimum is a minimum: one percent more or fewer parameters at the same compute lose.
    for scale in (0.99, 1.01):
        worse = synthetic.law_loss(law, n * scale, d / scale)
        assert np.all(worse > synthetic.law_loss(law, n, d))
    if law["alpha"] == law["beta"]:
        assert got["parameters"][1] / got["tokens"][1] == pytest.approx(got["parameters"][0] / got["tokens"][0], rel=1e-9)
    assert math.isfinite(got["parameters"][-1])
