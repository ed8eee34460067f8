"""The scaling challenge's public rules, and how a final prediction is scored against the truth.

The rules live in the unit's ``fixtures/challenge.yaml`` (it ships with the handout: students
must know the target and how they are graded): the target compute, the experiment budget, the
largest single run, the context length, and the score bands. The server and the hidden tests
read the same file.

A prediction names the configuration a student would train with ``target_compute`` FLOPs and
the loss they expect. Three numbers measure it against the hidden law:

- ``loss_error``: |predicted loss − true loss of that config| / true loss;
- ``size_error``: |log10(N / N_opt)|, decades between the chosen and the optimal model size;
- ``excess_loss``: true loss of that config / the optimal loss − 1, what the choice of size,
  shape, learning rate and batch costs.

Each metric has bands ``{within, weight}``; a prediction earns the weight of every band it is
within. The hidden tests grade one band per test, with that weight.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ..config import load_yaml_model
from .config import FinalPrediction
from .law import HiddenLaw, expected_loss, optimum

Metric = Literal["loss_error", "size_error", "excess_loss"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)


class Band(_Strict):
    within: float = Field(gt=0, description="The metric must be at most this.")
    weight: float = Field(gt=0, description="Weight of this band among all the prediction's bands.")


class Challenge(_Strict):
    target_compute: float = Field(gt=0, description="FLOPs (6 N D) of the run students predict.")
    compute_tolerance: float = Field(gt=0, lt=1, description="Allowed relative difference of a prediction's 6 N D from the target.")
    budget: float = Field(gt=0, description="Default experiment budget per student, in FLOPs.")
    max_run_flops: float = Field(gt=0, description="The largest single experiment, in FLOPs.")
    context_length: int = Field(gt=0, description="Tokens per sequence in every simulated run.")
    min_steps: int = Field(1, ge=1, description="Fewest optimizer steps an experiment may take.")
    bands: dict[Metric, list[Band]] = Field(description="Score bands of each metric.")


def load_challenge(path: Path) -> Challenge:
    return load_yaml_model(path, Challenge)


def compute_problem(prediction: FinalPrediction, challenge: Challenge) -> str | None:
    """Why the prediction's 6 N D misses the target, in one sentence; None when it is close enough."""
    ratio = prediction.config.flops / challenge.target_compute
    if abs(ratio - 1) <= challenge.compute_tolerance:
        return None
    return (
        f"the predicted config trains with {prediction.config.flops:.3g} FLOPs (6 N D), but the target is "
        f"{challenge.target_compute:.3g} ± {challenge.compute_tolerance:.0%}"
    )


def prediction_metrics(prediction: FinalPrediction, law: HiddenLaw, challenge: Challenge) -> dict[Metric, float]:
    """``loss_error``, ``size_error`` and ``excess_loss`` of a prediction under the true law."""
    true_loss = expected_loss(law, prediction.config, challenge.context_length)
    best = optimum(law, challenge.target_compute)
    return {
        "loss_error": abs(prediction.predicted_loss - true_loss) / true_loss,
        "size_error": abs(math.log10(prediction.config.parameters / best.parameters)),
        "excess_loss": true_loss / best.loss - 1,
    }


@dataclass(frozen=True)
class PredictionScore:
    metrics: dict[Metric, float]
    earned: float  # sum of the weights of the bands met
    possible: float  # sum of all weights

    @property
    def fraction(self) -> float:
        return self.earned / self.possible if self.possible else 0.0


def score_prediction(prediction: FinalPrediction, law: HiddenLaw, challenge: Challenge) -> PredictionScore:
    """Bands met by the prediction; one that misses the target compute earns nothing."""
    metrics = prediction_metrics(prediction, law, challenge)
    possible = sum(band.weight for bands in challenge.bands.values() for band in bands)
    if compute_problem(prediction, challenge):
        return PredictionScore(metrics, 0.0, possible)
    earned = sum(band.weight for name, bands in challenge.bands.items() for band in bands if metrics[name] <= band.within)
    return PredictionScore(metrics, earned, possible)
