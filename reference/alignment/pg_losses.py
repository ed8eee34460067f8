"""Per-token policy-gradient losses and how they are reduced to one number.

Each loss is written so that its gradient is the policy gradient: −A·∇logπ for the plain
REINFORCE estimator, and −A·∇w with an importance ratio w = π/π_old when the responses were
sampled by an older policy (several optimizer steps per batch of rollouts).

Shapes: advantages or rewards (batch, 1) (or (batch,)); log-probs and masks (batch, seq).
"""

from __future__ import annotations

import torch
from torch import Tensor

from .masking import masked_normalize

IMPORTANCE_METHODS = ("none", "noclip", "grpo", "gspo")
LOSS_NORMALIZATIONS = ("sequence", "constant")


def as_column(values: Tensor) -> Tensor:
    """(batch,) or (batch, 1) -> (batch, 1), so that it broadcasts over the sequence."""
    return values.reshape(-1, 1)


def compute_naive_policy_gradient_loss(raw_rewards_or_advantages: Tensor, policy_log_probs: Tensor) -> Tensor:
    """REINFORCE: −A·logπ per token; (batch, 1) and (batch, seq) -> (batch, seq)."""
    # BEGIN SOLUTION problem=policy_gradient_losses
    return -as_column(raw_rewards_or_advantages).to(policy_log_probs.dtype) * policy_log_probs
    # END SOLUTION


def compute_grpo_clip_loss(
    advantages: Tensor, policy_log_probs: Tensor, old_log_probs: Tensor, cliprange: float
) -> tuple[Tensor, dict[str, Tensor]]:
    """PPO's clipped surrogate per token: −min(w·A, clip(w, 1−ε, 1+ε)·A), w = exp(logπ − logπ_old).

    Returns the loss (batch, seq) and ``{"clipped": bool (batch, seq)}``, true where the clipped
    term was the smaller one (there the token has no gradient).
    """
    # BEGIN SOLUTION problem=policy_gradient_losses
    advantages = as_column(advantages).to(policy_log_probs.dtype)
    ratio = torch.exp(policy_log_probs - old_log_probs)
    unclipped = ratio * advantages
    clipped = torch.clamp(ratio, 1 - cliprange, 1 + cliprange) * advantages
    return -torch.minimum(unclipped, clipped), {"clipped": clipped < unclipped}
    # END SOLUTION


def compute_gspo_clip_loss(
    advantages: Tensor, policy_log_probs: Tensor, old_log_probs: Tensor, cliprange: float, response_mask: Tensor
) -> tuple[Tensor, dict[str, Tensor]]:
    """GSPO: one ratio per sequence, s = exp(mean over response tokens of logπ − logπ_old), clipped
    like GRPO's; the sequence's loss is repeated on each of its tokens (batch, seq).

    A length-normalized sequence ratio does not let a few tokens with extreme token-level ratios
    dominate a long response, which is what destabilizes token-level clipping on long outputs.
    """
    # BEGIN SOLUTION problem=policy_gradient_losses
    advantages = as_column(advantages).to(policy_log_probs.dtype)
    tokens = response_mask.sum(dim=-1, keepdim=True).clamp(min=1)
    log_ratio = masked_normalize(policy_log_probs - old_log_probs, response_mask, dim=-1).unsqueeze(-1) / tokens
    ratio = torch.exp(log_ratio)
    unclipped = ratio * advantages
    clipped = torch.clamp(ratio, 1 - cliprange, 1 + cliprange) * advantages
    loss = -torch.minimum(unclipped, clipped)
    return loss.expand_as(policy_log_probs), {"clipped": (clipped < unclipped).expand_as(policy_log_probs)}
    # END SOLUTION


def compute_policy_gradient_loss(
    raw_rewards_or_advantages: Tensor,
    policy_log_probs: Tensor,
    importance_reweighting_method: str = "none",
    old_log_probs: Tensor | None = None,
    cliprange: float | None = None,
    response_mask: Tensor | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Dispatch to the per-token loss of ``importance_reweighting_method``:

    - ``"none"``: REINFORCE, −A·logπ (on-policy);
    - ``"noclip"``: −w·A with the token ratio w, unclipped;
    - ``"grpo"``: the clipped token ratio (needs ``cliprange``);
    - ``"gspo"``: the clipped sequence ratio (needs ``cliprange`` and ``response_mask``).
    """
    if importance_reweighting_method not in IMPORTANCE_METHODS:
        raise ValueError(f"importance_reweighting_method must be one of {IMPORTANCE_METHODS}, not {importance_reweighting_method!r}")
    if importance_reweighting_method != "none" and old_log_probs is None:
        raise ValueError(f"importance reweighting {importance_reweighting_method!r} needs old_log_probs")
    if importance_reweighting_method in ("grpo", "gspo") and cliprange is None:
        raise ValueError(f"importance reweighting {importance_reweighting_method!r} needs a cliprange")
    if importance_reweighting_method == "gspo" and response_mask is None:
        raise ValueError("GSPO's sequence-level ratio needs the response_mask")
    # BEGIN SOLUTION problem=policy_gradient_losses
    if importance_reweighting_method == "none":
        return compute_naive_policy_gradient_loss(raw_rewards_or_advantages, policy_log_probs), {}
    if importance_reweighting_method == "noclip":
        ratio = torch.exp(policy_log_probs - old_log_probs)
        return -ratio * as_column(raw_rewards_or_advantages).to(policy_log_probs.dtype), {}
    if importance_reweighting_method == "grpo":
        return compute_grpo_clip_loss(raw_rewards_or_advantages, policy_log_probs, old_log_probs, cliprange)
    return compute_gspo_clip_loss(raw_rewards_or_advantages, policy_log_probs, old_log_probs, cliprange, response_mask)
    # END SOLUTION


def aggregate_loss_across_microbatch(
    per_token_policy_gradient_loss: Tensor,
    mask: Tensor,
    loss_normalization: str = "sequence",
    normalization_constant: float | None = None,
) -> Tensor:
    """Reduce a (batch, seq) per-token loss to a scalar.

    - ``"sequence"``: mean over each sequence's response tokens, then mean over the batch (GRPO);
      a sequence with no response token contributes 0 rather than NaN;
    - ``"constant"``: sum over every response token of the batch / ``normalization_constant``
      (Dr. GRPO, with e.g. batch size × maximum response length), free of length bias.
    """
    if loss_normalization not in LOSS_NORMALIZATIONS:
        raise ValueError(f"loss_normalization must be one of {LOSS_NORMALIZATIONS}, not {loss_normalization!r}")
    if loss_normalization == "constant" and not normalization_constant:
        raise ValueError('loss_normalization="constant" needs a positive normalization_constant')
    # BEGIN SOLUTION problem=aggregate_loss
    if loss_normalization == "constant":
        return masked_normalize(per_token_policy_gradient_loss, mask, normalize_constant=normalization_constant)
    tokens = mask.sum(dim=-1).clamp(min=1)
    return (masked_normalize(per_token_policy_gradient_loss, mask, dim=-1) / tokens).mean()
    # END SOLUTION

