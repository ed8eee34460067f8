"""The simulator's ground truth: the functional form of the loss a training run reaches.

This module holds the *form* only. Its coefficients are the course's secret (students fit them):
they live in a staff file (``assignments/scaling/tests/hidden/hidden_law.yaml``) that never ships
in a handout or in the ``lmcourse`` wheel, and the server loads it by path.

The loss of a run with N parameters trained on D tokens is

    L = E + A / N^α + B / D^β                               (the scaling law)
        + c_lr · ln²(lr / lr*(N))                            (learning rate, lr* = lr₀ · (N / N₀)^-γ)
        + c_ar · ln²((d_model / layers) / r*)                (aspect ratio)
        + c_b  · ln²(tokens per step / b*(D))                (batch, b* = b₀ · (D / D₀)^κ)

times a seeded multiplicative noise exp(σ z). Each correction is a valley in log space with its
bottom at zero, so the scaling law is the loss of a well-tuned run and the compute-optimal
model follows from it alone. A run whose learning rate exceeds lr*(N) by more than a factor
diverges. The noise is drawn from a generator seeded by the law's seed and the config's hash:
the same config always gives the same losses, so re-running one teaches nothing, while a
careless design (an untuned learning rate, a strange shape) pays in loss.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ..config import load_yaml_model
from .config import FLOPS_PER_PARAMETER_TOKEN, ExperimentConfig

#: Validation losses reported per run, at evenly spaced fractions of its tokens.
CHECKPOINTS = 10


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)


class LearningRateEffect(_Strict):
    optimum: float = Field(gt=0, description="Best peak learning rate (lr₀) of a model of reference_parameters.")
    reference_parameters: float = Field(gt=0, description="N₀.")
    size_exponent: float = Field(ge=0, description="γ: larger models want smaller learning rates, lr* ∝ N^-γ.")
    curvature: float = Field(ge=0, description="c_lr: loss added per squared e-fold away from lr*.")
    diverges_above: float = Field(gt=1, description="A run diverges when lr / lr* exceeds this factor.")


class AspectEffect(_Strict):
    optimum: float = Field(gt=0, description="r*: the best d_model / num_layers.")
    curvature: float = Field(ge=0, description="c_ar.")


class BatchEffect(_Strict):
    optimum_tokens: float = Field(gt=0, description="b₀: best tokens per optimizer step for a run of reference_tokens.")
    reference_tokens: float = Field(gt=0, description="D₀.")
    token_exponent: float = Field(ge=0, description="κ: longer runs want larger batches, b* ∝ D^κ.")
    curvature: float = Field(ge=0, description="c_b.")


class HiddenLaw(_Strict):
    """The coefficients of one simulated world (a staff file)."""

    E: float = Field(gt=0, description="Irreducible loss.")
    A: float = Field(gt=0)
    B: float = Field(gt=0)
    alpha: float = Field(gt=0, description="Exponent of N.")
    beta: float = Field(gt=0, description="Exponent of D.")
    learning_rate: LearningRateEffect
    aspect_ratio: AspectEffect
    batch: BatchEffect
    noise: float = Field(ge=0, lt=0.5, description="σ: relative standard deviation of a reported loss.")
    seed: int = Field(ge=0, description="Seeds the noise together with each config's hash.")


def load_law(path: Path) -> HiddenLaw:
    """The law in the YAML file at ``path``; a bad file is one :class:`ConfigError` sentence."""
    return load_yaml_model(path, HiddenLaw)


@dataclass(frozen=True)
class Optimum:
    """The compute-optimal run of a budget under a law (every correction at its bottom)."""

    compute: float
    parameters: float
    tokens: float
    loss: float


@dataclass(frozen=True)
class SimulatedRun:
    """What a simulated run reports: validation losses along the way, and how it ended."""

    losses: list[tuple[float, float]]  # (tokens seen, validation loss)
    failure: str | None  # None for a completed run

    @property
    def final_loss(self) -> float | None:
        return None if self.failure else self.losses[-1][1]


def scaling_loss(law: HiddenLaw, parameters: float, tokens: float) -> float:
    """E + A / N^α + B / D^β."""
    return law.E + law.A / parameters**law.alpha + law.B / tokens**law.beta


def optimal_learning_rate(law: HiddenLaw, parameters: float) -> float:
    effect = law.learning_rate
    return effect.optimum * (parameters / effect.reference_parameters) ** -effect.size_exponent


def optimal_batch_tokens(law: HiddenLaw, tokens: float) -> float:
    effect = law.batch
    return effect.optimum_tokens * (tokens / effect.reference_tokens) ** effect.token_exponent


def tuning_penalty(law: HiddenLaw, config: ExperimentConfig, context_length: int) -> float:
    """The loss a run adds to the scaling law for its learning rate, shape and batch; 0 when all are at their best."""
    lr = math.log(config.learning_rate / optimal_learning_rate(law, config.parameters))
    shape = math.log(config.aspect_ratio / law.aspect_ratio.optimum)
    batch = math.log(config.batch_size * context_length / optimal_batch_tokens(law, config.train_tokens))
    return law.learning_rate.curvature * lr**2 + law.aspect_ratio.curvature * shape**2 + law.batch.curvature * batch**2


def expected_loss(law: HiddenLaw, config: ExperimentConfig, context_length: int) -> float:
    """The noise-free final loss of ``config`` (finite even where the run would diverge)."""
    return scaling_loss(law, config.parameters, config.train_tokens) + tuning_penalty(law, config, context_length)


def optimum(law: HiddenLaw, compute: float) -> Optimum:
    """The best N and D for ``compute`` FLOPs (minimising the scaling law subject to C = 6 N D), and its loss."""
    total = law.alpha + law.beta
    g = (law.alpha * law.A / (law.beta * law.B)) ** (1 / total)
    c = compute / FLOPS_PER_PARAMETER_TOKEN
    parameters, tokens = g * c ** (law.beta / total), c ** (law.alpha / total) / g
    return Optimum(compute, parameters, tokens, scaling_loss(law, parameters, tokens))


def simulate(law: HiddenLaw, config: ExperimentConfig, context_length: int) -> SimulatedRun:
    """The validation losses of ``config`` at :data:`CHECKPOINTS` points, or where it diverged.

    The loss after a fraction of the tokens is the law's loss of a run that short (as if each
    checkpoint were the end of its own schedule) plus the same tuning penalty.
    """
    rng = np.random.default_rng(_noise_seed(law, config))
    noise = np.exp(law.noise * rng.standard_normal(CHECKPOINTS))  # one draw per checkpoint, fixed order
    penalty = tuning_penalty(law, config, context_length)
    ratio = config.learning_rate / optimal_learning_rate(law, config.parameters)
    # A learning rate far beyond the edge blows up early; one just past it, late in the run.
    diverged_at = (
        max(1, min(CHECKPOINTS - 1, round(CHECKPOINTS * law.learning_rate.diverges_above / ratio)))
        if ratio > law.learning_rate.diverges_above else None
    )
    losses = []
    for k in range(1, (diverged_at or CHECKPOINTS) + 1):
        tokens = config.train_tokens * k / CHECKPOINTS
        losses.append((tokens, (scaling_loss(law, config.parameters, tokens) + penalty) * float(noise[k - 1])))
    if diverged_at is None:
        return SimulatedRun(losses, None)
    return SimulatedRun(
        losses,
        f"training diverged after {100 * diverged_at // CHECKPOINTS}% of its tokens (the loss became NaN): "
        "the learning rate is too high for this model",
    )


def _noise_seed(law: HiddenLaw, config: ExperimentConfig) -> int:
    digest = hashlib.sha256(f"{law.seed}:{config.config_hash()}".encode()).digest()
    return int.from_bytes(digest[:8], "little")
