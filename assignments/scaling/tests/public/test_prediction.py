"""The final prediction: recorded, well formed, and at the target compute.

``lmcourse scaling final`` records your prediction on the server and saves it as
``final_prediction.json`` in your package; the grader scores that file against the true law in
the bands of ``fixtures/challenge.yaml`` (hidden tests, one per band).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lmcourse.grader.scaling.challenge import compute_problem, load_challenge
from lmcourse.grader.scaling.config import FinalPrediction

CHALLENGE = load_challenge(Path(__file__).resolve().parents[2] / "fixtures" / "challenge.yaml")


@pytest.mark.problem("scaling_prediction")
def test_final_prediction_is_recorded_at_the_target_compute(student):
    prediction = FinalPrediction.model_validate(student.final_prediction())
    assert compute_problem(prediction, CHALLENGE) is None, compute_problem(prediction, CHALLENGE)
