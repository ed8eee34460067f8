"""What the training API returns: the JSON documents of every endpoint, shared by server and client.

Plain pydantic models with no database in sight, so the student's client imports them without
SQLAlchemy or FastAPI installed.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel

from .config import ExperimentConfig

Status = Literal["queued", "running", "completed", "failed"]


class LossPoint(BaseModel):
    tokens: float
    loss: float


class ExperimentView(BaseModel):
    id: int
    config: ExperimentConfig
    config_hash: str
    parameters: float  # N = 12 · layers · d_model²
    flops: float  # 6 N D
    cost: float  # charged, in the budget's unit
    status: Status
    failure_reason: str | None = None
    final_loss: float | None = None
    refunded: bool = False
    losses: list[LossPoint] = []
    created_at: dt.datetime
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None

    @property
    def done(self) -> bool:
        return self.status in ("completed", "failed")


class BudgetView(BaseModel):
    unit: str  # "flops" or "gpu_seconds"
    total: float
    spent: float
    remaining: float


class SubmitResult(BaseModel):
    experiment: ExperimentView
    charged: bool  # False when the config had been submitted before
    budget: BudgetView


class PredictionView(BaseModel):
    config: ExperimentConfig
    predicted_loss: float
    parameters: float
    flops: float
    revision: int  # 1 for the first recording, +1 for each replacement
    updated_at: dt.datetime


class ScoreView(BaseModel):
    metrics: dict[str, float]
    earned: float
    possible: float
    fraction: float


class StudentOverview(BaseModel):
    name: str
    role: str
    budget: BudgetView | None
    experiments: dict[str, int]  # count per status
    prediction: PredictionView | None
    score: ScoreView | None  # of the prediction under the hidden law


class InfoView(BaseModel):
    """The public rules of this server's challenge."""

    backend: str
    target_compute: float
    compute_tolerance: float
    max_run_flops: float
    context_length: int
    min_steps: int


class ErrorView(BaseModel):
    error: str  # one sentence
