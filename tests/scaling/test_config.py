"""Experiment configs: validation with one-sentence reasons, and a hash that ignores spelling."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from lmcourse.grader.scaling.config import ExperimentConfig, FinalPrediction, shape_for

GOOD = {"d_model": 256, "num_layers": 4, "num_heads": 4, "batch_size": 32, "learning_rate": 2e-3, "train_tokens": 20_000_000}


def test_parameters_and_flops() -> None:
    config = ExperimentConfig(**GOOD)
    assert config.parameters == 12 * 4 * 256**2
    assert config.flops == 6 * config.parameters * 20_000_000
    assert config.aspect_ratio == 64


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"num_heads": 3}, "num_heads=3 does not divide d_model=256"),
        ({"d_model": 8}, "greater than or equal to 16"),
        ({"learning_rate": float("nan")}, "finite number"),
        ({"learning_rate": 2.0}, "less than or equal to 1"),
        ({"train_tokens": 1.5e7 + 0.5}, "valid integer"),
        ({"batch_size": True}, "expected a number, got bool"),
        ({"d_model": "256"}, "expected a number, got str"),
        ({"optimizer": "sgd"}, "Extra inputs are not permitted"),
    ],
)
def test_invalid_configs_are_refused_with_a_reason(change: dict[str, object], reason: str) -> None:
    with pytest.raises(ValidationError, match=reason):
        ExperimentConfig(**{**GOOD, **change})


def test_hash_is_stable_across_spellings() -> None:
    a = ExperimentConfig(**GOOD)
    b = ExperimentConfig(**{**GOOD, "learning_rate": 0.002, "train_tokens": 2e7})
    c = ExperimentConfig.model_validate_json('{"train_tokens": 2e7, "learning_rate": 0.0020, "batch_size": 32,'
                                            ' "num_heads": 4, "num_layers": 4, "d_model": 256}')
    assert a.config_hash() == b.config_hash() == c.config_hash()
    # A known value: the hash is part of the database, so it must never change between releases.
    assert a.config_hash() == "e8c873532fed0613b9edbe1b10e0e8854735c16898992f58a18de3be9469df9d"
    assert ExperimentConfig(**{**GOOD, "batch_size": 64}).config_hash() != a.config_hash()


def test_shape_for_hits_the_asked_size_and_aspect() -> None:
    for parameters in (3e6, 2e8, 7e9):
        d_model, layers, heads = shape_for(parameters, 50.0)
        assert d_model % 64 == 0 and d_model // heads == 64
        assert 12 * layers * d_model**2 == pytest.approx(parameters, rel=0.1)


def test_prediction_needs_a_positive_finite_loss() -> None:
    with pytest.raises(ValidationError):
        FinalPrediction(config=ExperimentConfig(**GOOD), predicted_loss=float("inf"))
    with pytest.raises(ValidationError):
        FinalPrediction(config=ExperimentConfig(**GOOD), predicted_loss=0.0)
