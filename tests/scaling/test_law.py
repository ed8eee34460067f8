"""The simulator: deterministic per config, valleys where the law says, divergence, and the staff
files it reads (the hidden law and the shipped data regenerate from their scripts)."""

from __future__ import annotations

import json
import math
import runpy

import numpy as np
import pytest

from lmcourse.grader.scaling.config import ExperimentConfig, shape_for
from lmcourse.grader.scaling.law import (
    CHECKPOINTS,
    HiddenLaw,
    expected_loss,
    optimal_batch_tokens,
    optimal_learning_rate,
    optimum,
    scaling_loss,
    simulate,
)

from .conftest import UNIT

CONTEXT = 512


def tuned(law: HiddenLaw, parameters: float, tokens: float, **changes: object) -> ExperimentConfig:
    """The config nearest ``parameters`` with every tuning knob at the law's best."""
    d_model, layers, heads = shape_for(parameters, law.aspect_ratio.optimum)
    n = 12 * layers * d_model**2
    config = ExperimentConfig(
        d_model=d_model, num_layers=layers, num_heads=heads,
        batch_size=max(1, round(optimal_batch_tokens(law, tokens) / CONTEXT)),
        learning_rate=optimal_learning_rate(law, n), train_tokens=int(tokens),
    )  # fmt: skip
    return config.model_copy(update=changes)


def test_same_config_same_losses_other_config_other_noise(law: HiddenLaw) -> None:
    config = tuned(law, 2e7, 4e8)
    first, again = simulate(law, config, CONTEXT), simulate(law, config.model_copy(), CONTEXT)
    assert first == again
    other = simulate(law, config.model_copy(update={"train_tokens": config.train_tokens + 1}), CONTEXT)
    assert other.final_loss != first.final_loss
    assert len(first.losses) == CHECKPOINTS and first.losses[-1][0] == config.train_tokens
    assert [t for t, _ in first.losses] == sorted(t for t, _ in first.losses)


def test_losses_scatter_by_the_stated_noise(law: HiddenLaw) -> None:
    ratios = []
    for tokens in np.linspace(3e8, 5e8, 200):
        config = tuned(law, 2e7, tokens)
        ratios.append(simulate(law, config, CONTEXT).final_loss / expected_loss(law, config, CONTEXT))
    assert np.std(np.log(ratios)) == pytest.approx(law.noise, rel=0.25)
    assert abs(np.mean(np.log(ratios))) < 3 * law.noise / math.sqrt(200)


def test_learning_rate_valley_bottoms_at_the_optimum_for_each_size(law: HiddenLaw) -> None:
    for parameters in (3e6, 3e8):
        config = tuned(law, parameters, 1e9)
        best = optimal_learning_rate(law, config.parameters)
        rates = best * np.logspace(-1, 0.5, 31)
        losses = [expected_loss(law, config.model_copy(update={"learning_rate": lr}), CONTEXT) for lr in rates]
        assert rates[int(np.argmin(losses))] == pytest.approx(best, rel=0.01)
    assert optimal_learning_rate(law, 3e8) < optimal_learning_rate(law, 3e6)  # larger models want smaller rates


def test_shape_and_batch_cost_loss_away_from_their_best(law: HiddenLaw) -> None:
    config = tuned(law, 5e7, 1e9)
    base = expected_loss(law, config, CONTEXT)
    skinny = config.model_copy(update={"d_model": 256, "num_heads": 4, "num_layers": round(config.parameters / (12 * 256**2))})
    assert expected_loss(law, skinny, CONTEXT) > base + 0.005
    assert expected_loss(law, config.model_copy(update={"batch_size": 1}), CONTEXT) > base + 0.05


def test_too_high_a_learning_rate_diverges(law: HiddenLaw) -> None:
    config = tuned(law, 1e7, 2e8)
    edge = optimal_learning_rate(law, config.parameters) * law.learning_rate.diverges_above
    assert simulate(law, config.model_copy(update={"learning_rate": edge * 0.95}), CONTEXT).failure is None
    far = simulate(law, config.model_copy(update={"learning_rate": min(1.0, edge * 8)}), CONTEXT)
    near = simulate(law, config.model_copy(update={"learning_rate": edge * 1.1}), CONTEXT)
    assert far.final_loss is None and "diverged" in (far.failure or "")
    assert 1 <= len(far.losses) < len(near.losses) < CHECKPOINTS  # the further past the edge, the sooner


def test_optimum_is_the_minimum_of_the_law_at_fixed_compute(law: HiddenLaw) -> None:
    best = optimum(law, 1e19)
    assert 6 * best.parameters * best.tokens == pytest.approx(1e19)
    sizes = best.parameters * np.logspace(-0.3, 0.3, 61)
    losses = [scaling_loss(law, n, 1e19 / (6 * n)) for n in sizes]
    assert sizes[int(np.argmin(losses))] == pytest.approx(best.parameters, rel=0.012)
    assert best.loss == pytest.approx(min(losses), rel=1e-6)


def test_tuned_runs_lose_nothing_to_tuning(law: HiddenLaw) -> None:
    config = tuned(law, 1e8, 2e9)
    config = config.model_copy(update={"d_model": 64 * 13, "num_layers": 16, "num_heads": 13})  # aspect 52
    assert expected_loss(law, config, CONTEXT) - scaling_loss(law, config.parameters, config.train_tokens) < 1e-3


def test_shipped_sweep_regenerates_identically() -> None:
    sweep = runpy.run_path(str(UNIT / "scripts" / "make_isoflops.py"))["sweep"]  # main() only runs as a script
    assert sweep() == json.loads((UNIT / "fixtures" / "isoflops.json").read_text())


def test_notebook_regenerates_identically() -> None:
    build = runpy.run_path(str(UNIT / "scripts" / "make_notebook.py"))["build"]
    assert build() == (UNIT / "writeup" / "scaling.ipynb").read_text()
