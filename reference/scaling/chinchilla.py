"""The parametric loss L(N, D) = E + A / N^α + B / D^β, fitted to runs, and what it says about compute.

This is Approach 3 of Hoffmann et al. (2022). E is the loss of a perfect model (the entropy of
text), A / N^α what a model of N parameters loses for being finite, B / D^β what D training
tokens lose for being finite. The fit follows the paper:

- parameters in log space, θ = (a, b, e, α, β) with A = exp(a), B = exp(b), E = exp(e), so
  every coefficient stays positive without constraints;
- the prediction in log space as a log-sum-exp, log L̂ = LSE(a − α log N, b − β log D, e),
  which is exact and stays finite for any θ;
- a Huber loss (δ = 10⁻³) on the residuals log L̂ − log L: quadratic for small residuals,
  linear beyond δ, so a few odd runs cannot drag the fit;
- L-BFGS from a grid of initialisations, since the objective has poor local minima.

The grid is the paper's (α, β ∈ {0, 0.5, …, 2}, e ∈ {−1, −0.5, …, 1}, a, b ∈ {0, 5, …, 25}). All
4500 points are scored at once, and L-BFGS starts from the best few: the grid's job is to find
the right basin, and a start from a poor grid point ends in a poor minimum or in the same one.

Compute-optimal allocation follows in closed form: minimising L(N, D) subject to 6 N D = C gives
N_opt = G (C/6)^(β/(α+β)) and D_opt = (C/6)^(α/(α+β)) / G with G = (α A / (β B))^(1/(α+β)).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import ArrayLike
from torch import Tensor

from .isoflop import FLOPS_PER_PARAMETER_TOKEN

HUBER_DELTA = 1e-3


@dataclass(frozen=True)
class ParametricLaw:
    """``L(N, D) = E + A / N**alpha + B / D**beta``, N parameters and D training tokens."""

    E: float
    A: float
    B: float
    alpha: float
    beta: float

    def loss(self, parameters: ArrayLike, tokens: ArrayLike) -> np.ndarray:
        n, d = np.asarray(parameters, dtype=np.float64), np.asarray(tokens, dtype=np.float64)
        return self.E + self.A / n**self.alpha + self.B / d**self.beta

    def compute_optimal(self, compute: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """``(N_opt, D_opt)`` minimising the loss at ``compute`` FLOPs, with C = 6 N D; any shape."""
        # BEGIN SOLUTION problem=parametric_fit
        c = np.asarray(compute, dtype=np.float64) / FLOPS_PER_PARAMETER_TOKEN
        total = self.alpha + self.beta
        g = (self.alpha * self.A / (self.beta * self.B)) ** (1 / total)
        return g * c ** (self.beta / total), c ** (self.alpha / total) / g
        # END SOLUTION


def huber(residuals: Tensor, delta: float = HUBER_DELTA) -> Tensor:
    """The Huber loss of each residual: ``r²/2`` where ``|r| ≤ delta``, ``delta·(|r| − delta/2)`` beyond; same shape."""
    # BEGIN SOLUTION problem=parametric_fit
    size = residuals.abs()
    return torch.where(size <= delta, 0.5 * residuals**2, delta * (size - 0.5 * delta))
    # END SOLUTION


def predicted_log_loss(theta: Tensor, log_n: Tensor, log_d: Tensor) -> Tensor:
    """log L̂ = LSE(a − α log N, b − β log D, e) for every θ and every run.

    theta: (..., 5) holding (a, b, e, α, β); log_n, log_d: (R,). Returns (..., R).
    """
    # BEGIN SOLUTION problem=parametric_fit
    a, b, e, alpha, beta = (t.unsqueeze(-1) for t in theta.unbind(-1))  # each (..., 1)
    terms = torch.broadcast_tensors(a - alpha * log_n, b - beta * log_d, e)  # each (..., R)
    return torch.logsumexp(torch.stack(terms, dim=-1), dim=-1)
    # END SOLUTION


def objective(theta: Tensor, log_n: Tensor, log_d: Tensor, log_loss: Tensor, delta: float = HUBER_DELTA) -> Tensor:
    """Mean Huber loss of the log-space residuals; theta (..., 5) gives (...)."""
    return huber(predicted_log_loss(theta, log_n, log_d) - log_loss, delta).mean(dim=-1)


def initial_grid() -> Tensor:
    """(4500, 5) starting points (a, b, e, α, β): the grid of Hoffmann et al."""
    a = b = [5.0 * i for i in range(6)]
    e = [-1.0, -0.5, 0.0, 0.5, 1.0]
    alpha = beta = [0.0, 0.5, 1.0, 1.5, 2.0]
    return torch.tensor(list(itertools.product(a, b, e, alpha, beta)), dtype=torch.float64)


def fit_parametric(
    parameters: ArrayLike, tokens: ArrayLike, losses: ArrayLike, delta: float = HUBER_DELTA, starts: int = 8
) -> ParametricLaw:
    """Fit ``L(N, D) = E + A/N^α + B/D^β`` to runs.

    parameters, tokens, losses: (R,) one entry per run, all positive. L-BFGS (strong Wolfe line
    search, float64) runs from the ``starts`` best points of :func:`initial_grid`; the lowest
    objective wins.
    """
    # BEGIN SOLUTION problem=parametric_fit
    log_n, log_d, log_loss = (torch.as_tensor(np.log(np.asarray(v, dtype=np.float64))) for v in (parameters, tokens, losses))
    grid = initial_grid()
    with torch.no_grad():
        ranked = grid[objective(grid, log_n, log_d, log_loss, delta).argsort()[:starts]]
    best_theta, best_value = ranked[0], math.inf
    for start in ranked:
        theta, value = _lbfgs(start, log_n, log_d, log_loss, delta)
        if value < best_value:  # a NaN (a start that blew up) never wins
            best_theta, best_value = theta, value
    a, b, e, alpha, beta = best_theta.tolist()
    return ParametricLaw(E=math.exp(e), A=math.exp(a), B=math.exp(b), alpha=alpha, beta=beta)
    # END SOLUTION


def _lbfgs(start: Tensor, log_n: Tensor, log_d: Tensor, log_loss: Tensor, delta: float) -> tuple[Tensor, float]:
    """Minimise :func:`objective` from ``start`` (5,) with L-BFGS; returns the end point and its value."""
    # BEGIN SOLUTION problem=parametric_fit
    theta = start.clone().requires_grad_(True)
    optimizer = torch.optim.LBFGS(
        [theta], lr=1.0, max_iter=200, history_size=20, tolerance_grad=1e-12, tolerance_change=1e-14,
        line_search_fn="strong_wolfe",
    )

    def closure() -> Tensor:
        optimizer.zero_grad()
        value = objective(theta, log_n, log_d, log_loss, delta)
        value.backward()
        return value

    optimizer.step(closure)
    with torch.no_grad():
        return theta.detach(), objective(theta, log_n, log_d, log_loss, delta).item()
    # END SOLUTION
