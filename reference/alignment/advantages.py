"""From rollouts to rewards, and from rewards to group-normalized advantages.

GRPO samples ``group_size`` responses per prompt; a response's advantage is its reward compared
with the others of its group, which replaces a learned value function. The variants differ in
how the difference is scaled:

- ``"std"``  — GRPO: divide by the group's (unbiased) standard deviation;
- ``"none"`` — Dr. GRPO: no scaling, which removes the bias towards questions that are too easy or
  too hard (their tiny std inflates every advantage);
- ``"mean"`` — MaxRL-style: divide by the group's mean reward, so rarely solved questions weigh
  more (a success at pass rate p gets (1 − p)/p, approximating the gradient of log pass@k).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

RewardFn = Callable[[str, Any], dict[str, float]]
BASELINES = ("mean", "none")
NORMALIZERS = ("std", "mean", "none")


def compute_rollout_rewards(
    reward_fn: RewardFn, rollout_responses: Sequence[str], repeated_ground_truths: Sequence[Any]
) -> tuple[Tensor, dict[str, float]]:
    """Score each response against its ground truth.

    Returns the rewards (n,) float32 and the mean ``reward``, ``format_reward`` and
    ``answer_reward`` over the batch.
    """
    if len(rollout_responses) != len(repeated_ground_truths):
        raise ValueError(f"got {len(rollout_responses)} responses but {len(repeated_ground_truths)} ground truths")
    if not rollout_responses:
        raise ValueError("cannot score an empty batch of rollouts")
    # BEGIN SOLUTION problem=rollout_rewards
    scores = [reward_fn(response, truth) for response, truth in zip(rollout_responses, repeated_ground_truths)]
    rewards = torch.tensor([s["reward"] for s in scores], dtype=torch.float32)
    metadata = {
        key: sum(float(s[key]) for s in scores) / len(scores)
        for key in ("reward", "format_reward", "answer_reward")
    }
    return rewards, metadata
    # END SOLUTION


def compute_group_normalized_rewards(
    raw_rewards: Tensor,
    group_size: int,
    baseline: str = "mean",
    advantage_eps: float = 1e-6,
    advantage_normalizer: str = "std",
) -> tuple[Tensor, dict[str, float]]:
    """Advantages of a flat batch of rewards grouped by prompt.

    raw_rewards: (n_prompts × group_size,), the responses of one prompt contiguous. ``baseline``
    "mean" subtracts the group mean ("none" keeps raw rewards); ``advantage_normalizer`` divides
    by std + eps, mean + eps, or nothing. Returns the advantages (same shape, float32) and
    statistics of the raw rewards.
    """
    if baseline not in BASELINES:
        raise ValueError(f"baseline must be one of {BASELINES}, not {baseline!r}")
    if advantage_normalizer not in NORMALIZERS:
        raise ValueError(f"advantage_normalizer must be one of {NORMALIZERS}, not {advantage_normalizer!r}")
    if group_size < 1 or raw_rewards.numel() % group_size != 0:
        raise ValueError(f"{raw_rewards.numel()} rewards cannot be split into groups of {group_size}")
    if advantage_normalizer == "std" and group_size < 2:
        raise ValueError("normalizing by the standard deviation needs groups of at least 2 responses")
    # BEGIN SOLUTION problem=group_normalized_rewards
    groups = raw_rewards.float().reshape(-1, group_size)
    mean = groups.mean(dim=1, keepdim=True)
    advantages = groups - mean if baseline == "mean" else groups
    if advantage_normalizer == "std":
        advantages = advantages / (groups.std(dim=1, keepdim=True) + advantage_eps)
    elif advantage_normalizer == "mean":
        advantages = advantages / (mean + advantage_eps)
    metadata = {
        "reward_mean": groups.mean().item(),
        "reward_std": groups.std().item() if groups.numel() > 1 else 0.0,
        "reward_max": groups.max().item(),
        "reward_min": groups.min().item(),
        "groups_all_equal": (groups.amax(dim=1) == groups.amin(dim=1)).float().mean().item(),
    }
    return advantages.reshape(-1), metadata
    # END SOLUTION
