"""The alignment unit: supervised fine-tuning, RL from verifiable rewards (the GRPO family) and DPO,
with math answer grading."""

from .advantages import compute_group_normalized_rewards, compute_rollout_rewards
from .dpo_loss import compute_per_instance_dpo_loss
from .grpo_step import grpo_microbatch_train_step, grpo_train_step
from .logprobs import compute_entropy, get_response_log_probs, log_probs_of_labels
from .masking import masked_mean, masked_normalize
from .math_grader import grade, is_equivalent, last_boxed, normalize_answer
from .packed_sft import PackedSFTDataset, iterate_batches
from .parsing import parse_gsm8k_response, parse_mmlu_response
from .pg_losses import (
    aggregate_loss_across_microbatch,
    compute_grpo_clip_loss,
    compute_gspo_clip_loss,
    compute_naive_policy_gradient_loss,
    compute_policy_gradient_loss,
)
from .rewards import question_only_reward_fn, r1_zero_reward_fn
from .sft_step import sft_microbatch_train_step
from .tokenization import tokenize_prompt_and_output

__all__ = [
    "PackedSFTDataset",
    "aggregate_loss_across_microbatch",
    "compute_entropy",
    "compute_group_normalized_rewards",
    "compute_grpo_clip_loss",
    "compute_gspo_clip_loss",
    "compute_naive_policy_gradient_loss",
    "compute_per_instance_dpo_loss",
    "compute_policy_gradient_loss",
    "compute_rollout_rewards",
    "get_response_log_probs",
    "grade",
    "grpo_microbatch_train_step",
    "grpo_train_step",
    "is_equivalent",
    "iterate_batches",
    "last_boxed",
    "log_probs_of_labels",
    "masked_mean",
    "masked_normalize",
    "normalize_answer",
    "parse_gsm8k_response",
    "parse_mmlu_response",
    "question_only_reward_fn",
    "r1_zero_reward_fn",
    "sft_microbatch_train_step",
    "tokenize_prompt_and_output",
]
