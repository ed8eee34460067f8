"""Adapters: the glue between the scaling tests and your package. You do not need to edit this file.

The scaling unit has no adapters to write: each function below calls the function of
``lmc_scaling`` it names with plain lists and returns plain numbers, lists and dicts, which is
what the grader can carry out of its sandbox. Write your code in the package.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lmc_scaling
from lmc_scaling.chinchilla import ParametricLaw, fit_parametric, huber, predicted_log_loss
from lmc_scaling.isoflop import bootstrap_power_law, fit_power_law, isoflop_minima, parabola_minimum

PREDICTION_FILE = Path(lmc_scaling.__file__).resolve().parent / "final_prediction.json"


def run_parabola_minimum(parameters: list[float], losses: list[float], window: int = 2) -> tuple[float, float]:
    n, loss = parabola_minimum(parameters, losses, window)
    return float(n), float(loss)


def run_isoflop_minima(
    parameters: list[float], compute_budgets: list[float], losses: list[float], window: int = 2
) -> list[dict[str, float]]:
    return [
        {"compute": float(m.compute), "parameters": float(m.parameters), "tokens": float(m.tokens), "loss": float(m.loss)}
        for m in isoflop_minima(parameters, compute_budgets, losses, window)
    ]


def run_fit_power_law(x: list[float], y: list[float]) -> dict[str, float]:
    law = fit_power_law(x, y)
    return {"coefficient": float(law.coefficient), "exponent": float(law.exponent)}


def run_bootstrap_power_law(
    x: list[float], y: list[float], targets: list[float], samples: int, seed: int, level: float
) -> dict[str, list[float]]:
    band = bootstrap_power_law(x, y, targets, samples=samples, seed=seed, level=level)
    return {key: [float(v) for v in getattr(band, key)] for key in ("estimate", "low", "high")}


def run_huber(residuals: list[float], delta: float) -> list[float]:
    import torch

    return huber(torch.tensor(residuals, dtype=torch.float64), delta).tolist()


def run_predicted_log_loss(theta: list[float], parameters: list[float], tokens: list[float]) -> list[float]:
    import torch

    log_n, log_d = (torch.tensor(v, dtype=torch.float64).log() for v in (parameters, tokens))
    return predicted_log_loss(torch.tensor(theta, dtype=torch.float64), log_n, log_d).tolist()


def run_fit_parametric(parameters: list[float], tokens: list[float], losses: list[float]) -> dict[str, float]:
    law = fit_parametric(parameters, tokens, losses)
    return {key: float(getattr(law, key)) for key in ("E", "A", "B", "alpha", "beta")}


def run_compute_optimal(law: dict[str, float], compute: list[float]) -> dict[str, list[float]]:
    parameters, tokens = ParametricLaw(**law).compute_optimal(compute)
    return {"parameters": [float(v) for v in parameters], "tokens": [float(v) for v in tokens]}


def final_prediction() -> dict[str, Any]:
    """Your final prediction as ``lmcourse scaling final`` saved it in your package."""
    if not PREDICTION_FILE.is_file():
        raise FileNotFoundError(f"{PREDICTION_FILE.name} is missing: record your prediction with `lmcourse scaling final`")
    return json.loads(PREDICTION_FILE.read_text(encoding="utf-8"))
