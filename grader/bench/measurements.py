"""The probe's ``report.json`` as pydantic models, and the statistics of a list of times.

The report of the submission's process is written where student code runs, so it is read as
untrusted data: validated field by field, and a file that does not validate is no report at all.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

#: One timed iteration: (CUDA-event ms on the probe's stream, host ms up to a device-wide sync).
Sample = tuple[float, float]


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Errors(_Data):
    rel_l2: float
    rel_max: float


class Verified(_Data):
    """How far one set of saved outputs is from the truth, per tensor; or why it could not be told."""

    errors: dict[str, Errors] | None = None
    error: str | None = None


class CaseReport(_Data):
    error: str | None = None
    samples: dict[str, list[Sample]] = Field(default_factory=dict)  # implementation -> iterations
    self_check: dict[str, dict[str, Errors]] = Field(default_factory=dict)  # reference role only
    verified: dict[str, Verified] = Field(default_factory=dict)  # reference role: check label -> errors


class ProbeReport(_Data):
    role: str
    device: dict[str, str | int | None]
    canary: dict[str, list[float]]
    load_error: str | None = None
    cases: dict[str, CaseReport] = Field(default_factory=dict)
    tampering: list[str] = Field(default_factory=list)


def read_report(path: Path) -> ProbeReport | None:
    """The report at ``path``; None if it is missing or malformed."""
    try:
        return ProbeReport.model_validate_json(path.read_bytes())
    except (OSError, ValidationError):
        return None


class Stats(BaseModel):
    """Median and interquartile range of one implementation's times, in ms."""

    median_ms: float
    q1_ms: float
    q3_ms: float
    min_ms: float
    wall_median_ms: float
    n: int

    @property
    def iqr_ms(self) -> float:
        return self.q3_ms - self.q1_ms


def stats(samples: list[Sample]) -> Stats:
    """Median, quartiles and minimum of the CUDA-event times, and the median of the host times."""
    if not samples:
        raise ValueError("no samples to summarize")
    stream = [s for s, _ in samples]
    q1, _, q3 = statistics.quantiles(stream, n=4, method="inclusive") if len(stream) > 1 else (stream[0],) * 3
    return Stats(
        median_ms=statistics.median(stream),
        q1_ms=q1,
        q3_ms=q3,
        min_ms=min(stream),
        wall_median_ms=statistics.median(w for _, w in samples),
        n=len(samples),
    )
