"""The scaling unit: IsoFLOP profiles, power laws and the parametric loss L(N, D), fitted from runs."""

from .chinchilla import ParametricLaw, fit_parametric, huber, initial_grid, objective, predicted_log_loss
from .isoflop import (
    Extrapolation,
    IsoFlopMinimum,
    PowerLaw,
    bootstrap_power_law,
    fit_isoflop_laws,
    fit_power_law,
    isoflop_minima,
    load_runs,
    parabola_minimum,
)

__all__ = [
    "Extrapolation",
    "IsoFlopMinimum",
    "ParametricLaw",
    "PowerLaw",
    "bootstrap_power_law",
    "fit_isoflop_laws",
    "fit_parametric",
    "fit_power_law",
    "huber",
    "initial_grid",
    "isoflop_minima",
    "load_runs",
    "objective",
    "parabola_minimum",
    "predicted_log_loss",
]
