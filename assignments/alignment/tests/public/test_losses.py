"""SFT step, rewards and advantages, policy-gradient losses, aggregation and the GRPO microbatch step,
each against a few lines of PyTorch written out here."""

from __future__ import annotations

import pytest
import torch

from tests import producers

SHAPE = [4, 10]


def masked_rows_mean(x, mask):
    return ((x * mask).sum(-1) / mask.sum(-1)).mean()


@pytest.mark.problem("sft_microbatch_train_step")
@pytest.mark.parametrize("accumulation, constant", [(1, 1.0), (4, 2.5)])
def test_sft_microbatch_train_step(student, accumulation, constant):
    out = student.run(producers.sft_step, 0, SHAPE, accumulation, constant)
    log_probs = (-producers.seeded(*SHAPE, seed=0).abs()).requires_grad_()
    mask = producers.seeded_mask(*SHAPE, seed=1)
    loss = -((log_probs * mask).sum(-1) / constant).mean() / accumulation
    loss.backward()
    torch.testing.assert_close(out["loss"], loss.detach())
    torch.testing.assert_close(out["grad"], log_probs.grad)


@pytest.mark.problem("rollout_rewards")
def test_compute_rollout_rewards(student):
    rewards, metadata = student.run(producers.rollout_rewards, ["5.", "5", "six."], ["5", "5", "5"])
    assert rewards.dtype == torch.float32 and rewards.tolist() == [1.0, 0.0, 0.0]
    assert metadata["reward"] == pytest.approx(1 / 3) and metadata["format_reward"] == pytest.approx(2 / 3)


@pytest.mark.problem("group_normalized_rewards")
@pytest.mark.parametrize("normalizer", ["std", "mean", "none"])
def test_group_normalized_rewards(student, normalizer):
    raw = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 1.0, 0.5])
    advantages, _ = student.run_compute_group_normalized_rewards(
        raw_rewards=raw, group_size=3, baseline="mean", advantage_eps=1e-6, advantage_normalizer=normalizer
    )
    groups = raw.reshape(3, 3)
    centered = groups - groups.mean(1, keepdim=True)
    scale = {"std": groups.std(1, keepdim=True) + 1e-6, "mean": groups.mean(1, keepdim=True) + 1e-6, "none": 1.0}
    torch.testing.assert_close(advantages, (centered / scale[normalizer]).reshape(-1))


@pytest.mark.problem("group_normalized_rewards")
def test_all_equal_group_has_zero_advantage(student):
    advantages, _ = student.run_compute_group_normalized_rewards(raw_rewards=torch.ones(4), group_size=4)
    assert torch.isfinite(advantages).all() and (advantages == 0).all()


def inputs():
    values = producers.grpo_inputs(0, SHAPE)
    values["log_probs"] = -producers.seeded(*SHAPE, seed=0).abs()
    return values


@pytest.mark.problem("policy_gradient_losses")
def test_naive_policy_gradient_loss(student):
    x = inputs()
    got = student.run_compute_naive_policy_gradient_loss(raw_rewards_or_advantages=x["advantages"], policy_log_probs=x["log_probs"])
    torch.testing.assert_close(got, -x["advantages"] * x["log_probs"])


@pytest.mark.problem("policy_gradient_losses")
@pytest.mark.parametrize("cliprange", [0.1, 0.5])
def test_grpo_clip_loss(student, cliprange):
    x = inputs()
    loss, _ = student.run_compute_grpo_clip_loss(
        advantages=x["advantages"], policy_log_probs=x["log_probs"], old_log_probs=x["old_log_probs"], cliprange=cliprange
    )
    ratio = torch.exp(x["log_probs"] - x["old_log_probs"])
    expected = -torch.minimum(ratio * x["advantages"], ratio.clamp(1 - cliprange, 1 + cliprange) * x["advantages"])
    torch.testing.assert_close(loss, expected)


@pytest.mark.problem("policy_gradient_losses")
def test_policy_gradient_loss_dispatch(student):
    x = inputs()
    common = {"raw_rewards_or_advantages": x["advantages"], "policy_log_probs": x["log_probs"],
              "old_log_probs": x["old_log_probs"], "cliprange": 0.2, "response_mask": x["mask"]}
    ratio = torch.exp(x["log_probs"] - x["old_log_probs"])
    noclip, _ = student.run_compute_policy_gradient_loss(importance_reweighting_method="noclip", **common)
    torch.testing.assert_close(noclip, -ratio * x["advantages"])
    gspo, _ = student.run_compute_policy_gradient_loss(importance_reweighting_method="gspo", **common)
    mask = x["mask"].float()
    seq_ratio = torch.exp(((x["log_probs"] - x["old_log_probs"]) * mask).sum(-1, keepdim=True) / mask.sum(-1, keepdim=True))
    expected = -torch.minimum(seq_ratio * x["advantages"], seq_ratio.clamp(0.8, 1.2) * x["advantages"])
    torch.testing.assert_close(gspo * mask, expected.expand(*SHAPE) * mask)


@pytest.mark.problem("aggregate_loss")
def test_aggregate_loss(student):
    x = inputs()
    per_token, mask = x["log_probs"], x["mask"]
    sequence = student.run_aggregate_loss_across_microbatch(per_token_policy_gradient_loss=per_token, mask=mask)
    torch.testing.assert_close(sequence, masked_rows_mean(per_token, mask))
    constant = student.run_aggregate_loss_across_microbatch(
        per_token_policy_gradient_loss=per_token, mask=mask, loss_normalization="constant", normalization_constant=40.0
    )
    torch.testing.assert_close(constant, (per_token * mask).sum() / 40.0)


@pytest.mark.problem("grpo_microbatch_train_step")
@pytest.mark.parametrize("loss_type, kwargs", [
    ("no_baseline", {"raw_rewards": True}),
    ("reinforce_with_baseline", {"advantages": True, "gradient_accumulation_steps": 2}),
    ("grpo_clip", {"advantages": True, "old_log_probs": True, "cliprange": 0.2}),
])
def test_grpo_microbatch_train_step(student, loss_type, kwargs):
    out = student.run(producers.grpo_microbatch_step, 0, SHAPE, loss_type, **kwargs)
    x = inputs()
    log_probs = x["log_probs"].clone().requires_grad_()
    scores = x["raw_rewards"] if loss_type == "no_baseline" else x["advantages"]
    if loss_type == "grpo_clip":
        ratio = torch.exp(log_probs - x["old_log_probs"])
        per_token = -torch.minimum(ratio * scores, ratio.clamp(0.8, 1.2) * scores)
    else:
        per_token = -scores * log_probs
    loss = masked_rows_mean(per_token, x["mask"]) / kwargs.get("gradient_accumulation_steps", 1)
    loss.backward()
    torch.testing.assert_close(out["loss"], loss.detach())
    torch.testing.assert_close(out["grad"], log_probs.grad)
