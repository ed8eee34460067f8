"""Hidden tests: GRPO steps in every variant and DPO against the reference's snapshots, and bad
inputs (uneven groups, empty responses, over-long sequences) that must fail clearly or be defined."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from tests import producers
from tests.hidden.cases import DPO_CASES, GRPO_VARIANTS

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
SNAPSHOT = np.load(Path(__file__).resolve().parent / "snapshots" / "alignment_hidden.npz")


def snap(key: str) -> torch.Tensor:
    return torch.from_numpy(SNAPSHOT[key])


@pytest.mark.problem("grpo_train_step")
@pytest.mark.parametrize("variant", sorted(GRPO_VARIANTS))
def test_grpo_train_step_variants(student, variant):
    out = student.run(producers.grpo_train_step, str(FIXTURES), **GRPO_VARIANTS[variant])
    torch.testing.assert_close(out["loss"], snap(f"grpo/{variant}/loss"), rtol=1e-4, atol=1e-6)
    for name, value in out["weights"].items():
        torch.testing.assert_close(value, snap(f"grpo/{variant}/weights/{name}"), rtol=1e-4, atol=1e-6)
    assert out["grads_none"]


@pytest.mark.problem("dpo_loss")
@pytest.mark.parametrize("case", range(len(DPO_CASES)))
def test_dpo_loss_snapshots(student, case):
    out = student.run(producers.dpo_loss, str(FIXTURES), *DPO_CASES[case])
    torch.testing.assert_close(out["loss"], snap(f"dpo/{case}/loss"), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out["policy_grad"], snap(f"dpo/{case}/policy_grad"), rtol=1e-4, atol=1e-7)


@pytest.mark.problem("group_normalized_rewards")
def test_uneven_groups_are_an_error(student):
    error = student.run(producers.error_of, "run_compute_group_normalized_rewards", raw_rewards=torch.ones(7), group_size=4)
    assert error == "ValueError"


@pytest.mark.problem("group_normalized_rewards")
def test_baseline_none_keeps_raw_rewards(student):
    raw = torch.tensor([0.0, 1.0, 1.0, 1.0])
    got, _ = student.run_compute_group_normalized_rewards(raw_rewards=raw, group_size=2, baseline="none", advantage_normalizer="none")
    torch.testing.assert_close(got, raw)


@pytest.mark.problem("aggregate_loss")
def test_empty_response_gives_a_finite_loss(student):
    per_token, mask = torch.ones(3, 5), torch.ones(3, 5, dtype=torch.bool)
    mask[1] = False
    loss = student.run_aggregate_loss_across_microbatch(per_token_policy_gradient_loss=per_token, mask=mask)
    assert math.isfinite(float(loss))


@pytest.mark.problem("aggregate_loss")
def test_constant_normalization_needs_a_constant(student):
    error = student.run(producers.error_of, "run_aggregate_loss_across_microbatch",
                        per_token_policy_gradient_loss=torch.ones(2, 3), mask=torch.ones(2, 3, dtype=torch.bool),
                        loss_normalization="constant", normalization_constant=None)
    assert error == "ValueError"


@pytest.mark.problem("response_log_probs")
def test_sequence_longer_than_the_context_is_an_error(student):
    assert student.run(producers.log_probs_of_long_input, str(FIXTURES), 1100) == "ValueError"


@pytest.mark.problem("masked_mean")
def test_masked_mean_without_unmasked_positions_is_nan(student):
    got = student.run_masked_mean(tensor=torch.ones(2, 3), mask=torch.tensor([[1, 1, 0], [0, 0, 0]]), dim=1)
    assert got[0] == 1.0 and torch.isnan(got[1])


@pytest.mark.problem("response_parsing")
@pytest.mark.parametrize("output, number", [("1,000,000 people", "1000000"), ("0.5 or .25", ".25"), ("", None)])
def test_parse_gsm8k_hidden(student, output, number):
    assert student.run_parse_gsm8k_response(model_output=output) == number
