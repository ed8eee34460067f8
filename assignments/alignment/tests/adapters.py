"""Adapters: the glue between the alignment tests and your package.

Each function takes primitive arguments, tensors, or Hugging Face models and tokenizers, calls
into ``lmc_alignment`` and returns plain results. Fill in the bodies marked below; the logic
belongs in your package.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from lmc_alignment.advantages import compute_group_normalized_rewards, compute_rollout_rewards
from lmc_alignment.dpo_loss import compute_per_instance_dpo_loss
from lmc_alignment.grpo_step import grpo_microbatch_train_step, grpo_train_step
from lmc_alignment.logprobs import compute_entropy, get_response_log_probs
from lmc_alignment.masking import masked_mean, masked_normalize
from lmc_alignment.packed_sft import PackedSFTDataset, iterate_batches
from lmc_alignment.parsing import parse_gsm8k_response, parse_mmlu_response
from lmc_alignment.pg_losses import (
    aggregate_loss_across_microbatch,
    compute_grpo_clip_loss,
    compute_naive_policy_gradient_loss,
    compute_policy_gradient_loss,
)
from lmc_alignment.sft_step import sft_microbatch_train_step
from lmc_alignment.tokenization import tokenize_prompt_and_output
from torch import Tensor
from torch.utils.data import Dataset


def run_tokenize_prompt_and_output(prompt_strs: list[str], output_strs: list[str], tokenizer: Any) -> dict[str, Tensor]:
    """``{"input_ids", "labels", "response_mask"}``, each (batch, max_len − 1)."""
    # BEGIN SOLUTION problem=tokenize_prompt_and_output
    return tokenize_prompt_and_output(prompt_strs, output_strs, tokenizer)
    # END SOLUTION


def run_get_response_log_probs(
    model: torch.nn.Module, input_ids: Tensor, labels: Tensor, return_token_entropy: bool
) -> dict[str, Tensor]:
    """``{"log_probs": (batch, seq)}`` plus ``"token_entropy"`` when asked."""
    # BEGIN SOLUTION problem=response_log_probs
    return get_response_log_probs(model, input_ids, labels, return_token_entropy)
    # END SOLUTION


def run_compute_entropy(logits: Tensor) -> Tensor:
    """logits (..., vocab) -> entropy (...)."""
    # BEGIN SOLUTION problem=response_log_probs
    return compute_entropy(logits)
    # END SOLUTION


def run_masked_mean(tensor: Tensor, mask: Tensor, dim: int | None = None) -> Tensor:
    """Masked sum / number of unmasked elements (NaN where there are none)."""
    # BEGIN SOLUTION problem=masked_mean
    return masked_mean(tensor, mask, dim)
    # END SOLUTION


def run_masked_normalize(tensor: Tensor, mask: Tensor, dim: int | None = None, normalize_constant: float = 1.0) -> Tensor:
    """Masked sum / ``normalize_constant``."""
    # BEGIN SOLUTION problem=masked_mean
    return masked_normalize(tensor, mask, dim, normalize_constant)
    # END SOLUTION


def run_sft_microbatch_train_step(
    policy_log_probs: Tensor, response_mask: Tensor, gradient_accumulation_steps: int, normalize_constant: float = 1.0
) -> tuple[Tensor, dict[str, Tensor]]:
    """``(loss, metadata)``; calls ``backward``."""
    # BEGIN SOLUTION problem=sft_microbatch_train_step
    return sft_microbatch_train_step(policy_log_probs, response_mask, gradient_accumulation_steps, normalize_constant)
    # END SOLUTION


def run_compute_rollout_rewards(
    reward_fn: Callable[[str, Any], dict[str, float]], rollout_responses: list[str], repeated_ground_truths: list[Any]
) -> tuple[Tensor, dict[str, float]]:
    """``(rewards (n,) float, metadata)``."""
    # BEGIN SOLUTION problem=rollout_rewards
    return compute_rollout_rewards(reward_fn, rollout_responses, repeated_ground_truths)
    # END SOLUTION


def run_compute_group_normalized_rewards(
    raw_rewards: Tensor,
    group_size: int,
    baseline: str = "mean",
    advantage_eps: float = 1e-6,
    advantage_normalizer: str = "std",
) -> tuple[Tensor, dict[str, float]]:
    """``(advantages (n,), metadata)``."""
    # BEGIN SOLUTION problem=group_normalized_rewards
    return compute_group_normalized_rewards(raw_rewards, group_size, baseline, advantage_eps, advantage_normalizer)
    # END SOLUTION


def run_compute_naive_policy_gradient_loss(raw_rewards_or_advantages: Tensor, policy_log_probs: Tensor) -> Tensor:
    """Per-token −A·logπ, (batch, seq)."""
    # BEGIN SOLUTION problem=policy_gradient_losses
    return compute_naive_policy_gradient_loss(raw_rewards_or_advantages, policy_log_probs)
    # END SOLUTION


def run_compute_grpo_clip_loss(
    advantages: Tensor, policy_log_probs: Tensor, old_log_probs: Tensor, cliprange: float
) -> tuple[Tensor, dict[str, Tensor]]:
    """``(per-token loss, metadata)``."""
    # BEGIN SOLUTION problem=policy_gradient_losses
    return compute_grpo_clip_loss(advantages, policy_log_probs, old_log_probs, cliprange)
    # END SOLUTION


def run_compute_policy_gradient_loss(
    raw_rewards_or_advantages: Tensor,
    policy_log_probs: Tensor,
    importance_reweighting_method: str = "none",
    old_log_probs: Tensor | None = None,
    cliprange: float | None = None,
    response_mask: Tensor | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """``(per-token loss, metadata)`` for "none", "noclip", "grpo" or "gspo"."""
    # BEGIN SOLUTION problem=policy_gradient_losses
    return compute_policy_gradient_loss(
        raw_rewards_or_advantages, policy_log_probs, importance_reweighting_method, old_log_probs, cliprange, response_mask
    )
    # END SOLUTION


def run_aggregate_loss_across_microbatch(
    per_token_policy_gradient_loss: Tensor,
    mask: Tensor,
    loss_normalization: str = "sequence",
    normalization_constant: float | None = None,
) -> Tensor:
    """A scalar loss: per-sequence masked mean then batch mean, or masked sum / constant."""
    # BEGIN SOLUTION problem=aggregate_loss
    return aggregate_loss_across_microbatch(per_token_policy_gradient_loss, mask, loss_normalization, normalization_constant)
    # END SOLUTION


def run_grpo_microbatch_train_step(
    policy_log_probs: Tensor,
    response_mask: Tensor,
    gradient_accumulation_steps: int,
    loss_type: str,
    raw_rewards: Tensor | None = None,
    advantages: Tensor | None = None,
    old_log_probs: Tensor | None = None,
    cliprange: float | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """``(loss, metadata)``; calls ``backward``."""
    # BEGIN SOLUTION problem=grpo_microbatch_train_step
    return grpo_microbatch_train_step(
        policy_log_probs, response_mask, gradient_accumulation_steps, loss_type, raw_rewards, advantages,
        old_log_probs, cliprange,
    )
    # END SOLUTION


def run_grpo_train_step(
    model: torch.nn.Module,
    tokenizer: Any,
    optimizer: torch.optim.Optimizer,
    gradient_accumulation_steps: int,
    max_grad_norm: float | None,
    reward_fn: Callable[[str, Any], dict[str, float]],
    repeated_prompts: list[str],
    rollout_responses: list[str],
    repeated_ground_truths: list[Any],
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
    """One full optimizer step; ``(summed loss, metadata)``."""
    # BEGIN SOLUTION problem=grpo_train_step
    return grpo_train_step(
        model, tokenizer, optimizer, gradient_accumulation_steps, max_grad_norm, reward_fn, repeated_prompts,
        rollout_responses, repeated_ground_truths, group_size, baseline, advantage_eps, advantage_normalizer,
        importance_reweighting_method, old_log_probs, cliprange, loss_normalization, normalization_constant,
    )
    # END SOLUTION


def get_packed_sft_dataset(tokenizer: Any, dataset_path: str | Path, seq_length: int, shuffle: bool) -> Dataset:
    """A dataset of ``{"input_ids", "labels"}`` windows of ``seq_length`` tokens."""
    # BEGIN SOLUTION problem=packed_sft_dataset
    return PackedSFTDataset(tokenizer, dataset_path, seq_length, shuffle)
    # END SOLUTION


def run_iterate_batches(dataset: Dataset, batch_size: int, shuffle: bool) -> Any:
    """One epoch of batches; ``len`` = ceil(N / batch_size)."""
    # BEGIN SOLUTION problem=packed_sft_dataset
    return iterate_batches(dataset, batch_size, shuffle)
    # END SOLUTION


def run_parse_mmlu_response(mmlu_example: dict[str, Any], model_output: str) -> str | None:
    """"A"–"D" or None."""
    # BEGIN SOLUTION problem=response_parsing
    return parse_mmlu_response(mmlu_example, model_output)
    # END SOLUTION


def run_parse_gsm8k_response(model_output: str) -> str | None:
    """The last number of the output, or None."""
    # BEGIN SOLUTION problem=response_parsing
    return parse_gsm8k_response(model_output)
    # END SOLUTION


def run_compute_per_instance_dpo_loss(
    lm: torch.nn.Module,
    lm_ref: torch.nn.Module,
    tokenizer: Any,
    beta: float,
    prompt: str,
    response_chosen: str,
    response_rejected: str,
) -> Tensor:
    """The DPO loss of one preference pair, a scalar."""
    # BEGIN SOLUTION problem=dpo_loss
    return compute_per_instance_dpo_loss(lm, lm_ref, tokenizer, beta, prompt, response_chosen, response_rejected)
    # END SOLUTION
