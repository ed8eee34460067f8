"""GRPO training steps: one microbatch, and one whole optimizer step over a batch of rollouts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from .advantages import RewardFn, compute_group_normalized_rewards, compute_rollout_rewards
from .logprobs import get_response_log_probs
from .pg_losses import aggregate_loss_across_microbatch, compute_policy_gradient_loss
from .tokenization import tokenize_prompt_and_output

LOSS_TYPES = {"no_baseline": "none", "reinforce_with_baseline": "none", "grpo_clip": "grpo"}


def grpo_microbatch_train_step(
    policy_log_probs: Tensor,
    response_mask: Tensor,
    gradient_accumulation_steps: int,
    loss_type: str,
    raw_rewards: Tensor | None = None,
    advantages: Tensor | None = None,
    old_log_probs: Tensor | None = None,
    cliprange: float | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Backpropagate one microbatch's policy-gradient loss; returns ``(loss, metadata)``.

    ``loss_type``: "no_baseline" (REINFORCE on ``raw_rewards``), "reinforce_with_baseline"
    (REINFORCE on ``advantages``) or "grpo_clip" (clipped ratio on ``advantages``, needs
    ``old_log_probs`` and ``cliprange``). The per-token loss is averaged over each sequence's
    response tokens, then over the batch, then divided by ``gradient_accumulation_steps``.
    """
    if loss_type not in LOSS_TYPES:
        raise ValueError(f"loss_type must be one of {tuple(LOSS_TYPES)}, not {loss_type!r}")
    scores = raw_rewards if loss_type == "no_baseline" else advantages
    if scores is None:
        raise ValueError(f"loss_type {loss_type!r} needs {'raw_rewards' if loss_type == 'no_baseline' else 'advantages'}")
    # BEGIN SOLUTION problem=grpo_microbatch_train_step
    per_token, metadata = compute_policy_gradient_loss(
        scores, policy_log_probs, LOSS_TYPES[loss_type], old_log_probs, cliprange, response_mask
    )
    loss = aggregate_loss_across_microbatch(per_token, response_mask, "sequence") / gradient_accumulation_steps
    loss.backward()
    return loss, metadata
    # END SOLUTION


def grpo_train_step(
    model: nn.Module,
    tokenizer: Any,
    optimizer: torch.optim.Optimizer,
    gradient_accumulation_steps: int,
    max_grad_norm: float | None,
    reward_fn: RewardFn,
    repeated_prompts: Sequence[str],
    rollout_responses: Sequence[str],
    repeated_ground_truths: Sequence[Any],
    group_size: int,
    baseline: str = "mean",
    advantage_eps: float = 1e-6,
    advantage_normalizer: str = "std",
    importance_reweighting_method: str = "none",
    old_log_probs: Tensor | None = None,
    cliprange: float | None = None,
    loss_normalization: str = "sequence",
    normalization_constant: float | None = None,
) -> tuple[Tensor, dict[str, float]]:
    """One optimizer step on a batch of rollouts; returns ``(summed loss, metadata)``.

    rewards → group-normalized advantages → tokenization → the batch split, in order, into
    ``gradient_accumulation_steps`` equal microbatches → for each: forward, per-token loss,
    aggregation, backward → gradient clipping at ``max_grad_norm`` (None: no clipping) →
    optimizer step → gradients reset to None.

    ``old_log_probs`` (batch, seq − 1 of the tokenized batch) are the log-probs of the policy that
    sampled the rollouts; None means on-policy, and the ratio is taken against the current
    log-probs detached (value 1, gradient ∇logπ). "sequence" losses of a microbatch are scaled by
    microbatch / batch so that the accumulated gradient is that of the whole batch's mean.
    """
    batch = len(repeated_prompts)
    if not batch == len(rollout_responses) == len(repeated_ground_truths):
        raise ValueError("repeated_prompts, rollout_responses and repeated_ground_truths must have the same length")
    if gradient_accumulation_steps < 1 or batch % gradient_accumulation_steps != 0:
        raise ValueError(f"a batch of {batch} rollouts cannot be split into {gradient_accumulation_steps} equal microbatches")
    # BEGIN SOLUTION problem=grpo_train_step
    raw_rewards, reward_metadata = compute_rollout_rewards(reward_fn, rollout_responses, repeated_ground_truths)
    advantages, advantage_metadata = compute_group_normalized_rewards(
        raw_rewards, group_size, baseline, advantage_eps, advantage_normalizer
    )
    device = next(model.parameters()).device
    tokens = {k: v.to(device) for k, v in tokenize_prompt_and_output(list(repeated_prompts), list(rollout_responses), tokenizer).items()}
    if old_log_probs is not None and old_log_probs.shape != tokens["labels"].shape:
        raise ValueError(f"old_log_probs has shape {tuple(old_log_probs.shape)}, the tokenized batch {tuple(tokens['labels'].shape)}")
    micro = batch // gradient_accumulation_steps
    total_loss = torch.zeros((), device=device)
    clipped_tokens = 0.0
    for start in range(0, batch, micro):
        rows = slice(start, start + micro)
        mask = tokens["response_mask"][rows]
        log_probs = get_response_log_probs(model, tokens["input_ids"][rows], tokens["labels"][rows])["log_probs"]
        old = log_probs.detach() if old_log_probs is None else old_log_probs[rows].to(device)
        per_token, metadata = compute_policy_gradient_loss(
            advantages[rows].to(device), log_probs, importance_reweighting_method, old, cliprange, mask
        )
        loss = aggregate_loss_across_microbatch(per_token, mask, loss_normalization, normalization_constant)
        if loss_normalization == "sequence":
            loss = loss * (micro / batch)
        loss.backward()
        total_loss += loss.detach()
        if "clipped" in metadata:
            clipped_tokens += float((metadata["clipped"] & mask).sum())
    grad_norm = (
        float(torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)) if max_grad_norm is not None else None
    )
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    metadata = {
        **reward_metadata,
        **advantage_metadata,
        "clip_fraction": clipped_tokens / max(float(tokens["response_mask"].sum()), 1.0),
        "response_tokens": float(tokens["response_mask"].sum()),
    }
    if grad_norm is not None:
        metadata["grad_norm"] = grad_norm
    return total_loss, metadata
    # END SOLUTION
