"""The final prediction, scored under the true law: one test per band of ``fixtures/challenge.yaml``,
weighted as the band. The law is ``hidden_law.yaml`` beside this file (it never leaves the grader)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lmcourse.grader.scaling.challenge import compute_problem, load_challenge, prediction_metrics
from lmcourse.grader.scaling.config import FinalPrediction
from lmcourse.grader.scaling.law import load_law

CHALLENGE = load_challenge(Path(__file__).resolve().parents[2] / "fixtures" / "challenge.yaml")
LAW = load_law(Path(__file__).resolve().parent / "hidden_law.yaml")
BANDS = [
    pytest.param(metric, band.within, marks=pytest.mark.problem("scaling_prediction", weight=band.weight), id=f"{metric}-{band.within:g}")
    for metric, metric_bands in CHALLENGE.bands.items()
    for band in metric_bands
]


@pytest.mark.parametrize(("metric", "within"), BANDS)
def test_prediction_band(student, metric, within):
    prediction = FinalPrediction.model_validate(student.final_prediction())
    assert compute_problem(prediction, CHALLENGE) is None
    assert prediction_metrics(prediction, LAW, CHALLENGE)[metric] <= within
