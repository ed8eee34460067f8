"""What a student asks the training API for: an experiment, and a final prediction.

An experiment is one training run of the basics Transformer: its shape (width, depth, heads),
its optimizer settings (batch, peak learning rate) and how many tokens it trains on. The
parameter count is the non-embedding count of that model, N = 12 · layers · d_model² (attention
4 d², SwiGLU feed-forward 3 · d · 8/3 d), and its cost is C = 6 N D FLOPs.

Two configs that validate to the same values are the same experiment: :meth:`ExperimentConfig.config_hash`
hashes the canonical JSON (sorted keys, normalised numbers), so ``learning_rate=1e-3`` and
``0.001`` or ``train_tokens=1e8`` and ``100000000`` are one experiment and charged once.
"""

from __future__ import annotations

import hashlib
import json
import math

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

FLOPS_PER_PARAMETER_TOKEN = 6
PARAMETERS_PER_LAYER_WIDTH2 = 12


class _Input(BaseModel):
    """Unknown keys are errors, numbers must be finite: a typo never silently becomes a default."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)

    @field_validator("*", mode="before")
    @classmethod
    def _numbers_are_numbers(cls, value: object) -> object:
        # Pydantic's lax mode would read True as 1 and "64" as 64; an API client sending those has a bug.
        if isinstance(value, bool | str):
            raise ValueError(f"expected a number, got {type(value).__name__}")
        return value


class ExperimentConfig(_Input):
    d_model: int = Field(ge=16, le=8192, description="Width of the residual stream.")
    num_layers: int = Field(ge=1, le=128, description="Number of Transformer blocks.")
    num_heads: int = Field(ge=1, le=128, description="Attention heads; must divide d_model.")
    batch_size: int = Field(ge=1, le=8192, description="Sequences per optimizer step.")
    learning_rate: float = Field(ge=1e-6, le=1.0, description="Peak learning rate of the cosine schedule.")
    train_tokens: int = Field(ge=10**5, le=10**13, description="Tokens the run trains on (D).")

    @field_validator("train_tokens", mode="before")
    @classmethod
    def _whole_tokens(cls, value: object) -> object:
        # 1e8 arrives as a float from JSON and Python alike; accept it when it is a whole number.
        if isinstance(value, float) and math.isfinite(value) and value == int(value):
            return int(value)
        return value

    @model_validator(mode="after")
    def _heads_divide_width(self) -> ExperimentConfig:
        if self.d_model % self.num_heads:
            raise ValueError(f"num_heads={self.num_heads} does not divide d_model={self.d_model}")
        return self

    @property
    def parameters(self) -> float:
        """N, the non-embedding parameter count: 12 · layers · d_model²."""
        return float(PARAMETERS_PER_LAYER_WIDTH2 * self.num_layers * self.d_model**2)

    @property
    def flops(self) -> float:
        """C = 6 N D, the training compute in FLOPs."""
        return FLOPS_PER_PARAMETER_TOKEN * self.parameters * self.train_tokens

    @property
    def aspect_ratio(self) -> float:
        """d_model / num_layers: wide and shallow is large, narrow and deep is small."""
        return self.d_model / self.num_layers

    def canonical_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))

    def config_hash(self) -> str:
        """A stable sha256 (hex) of the canonical config: equal configs, equal hashes, on every machine."""
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()


def shape_for(parameters: float, aspect_ratio: float, head_dim: int = 64) -> tuple[int, int, int]:
    """``(d_model, num_layers, num_heads)`` with about ``parameters`` = 12 · layers · d_model² at ``aspect_ratio``.

    d_model is a multiple of ``head_dim`` (one head per ``head_dim`` channels), so the count is
    the nearest these steps allow: within a few percent, more for tiny models. Recompute N from
    the shape rather than trusting the request.
    """
    ideal_layers = (parameters / (PARAMETERS_PER_LAYER_WIDTH2 * aspect_ratio**2)) ** (1 / 3)
    candidates = []
    for layers in {max(1, math.floor(ideal_layers)), max(1, math.ceil(ideal_layers))}:
        ideal_width = (parameters / (PARAMETERS_PER_LAYER_WIDTH2 * layers)) ** 0.5 / head_dim
        for steps in {max(1, math.floor(ideal_width)), max(1, math.ceil(ideal_width))}:
            candidates.append((head_dim * steps, layers))
    width, layers = min(candidates, key=lambda s: (abs(math.log(PARAMETERS_PER_LAYER_WIDTH2 * s[1] * s[0] ** 2 / parameters)), s))
    return width, layers, width // head_dim


class FinalPrediction(_Input):
    """The configuration a student would train at the target budget, and the loss they expect."""

    config: ExperimentConfig
    predicted_loss: float = Field(gt=0, le=100, description="The final loss the config is predicted to reach.")
