"""One microbatch of supervised fine-tuning: negative log-likelihood of the response tokens."""

from __future__ import annotations

from torch import Tensor

from .masking import masked_normalize


def sft_microbatch_train_step(
    policy_log_probs: Tensor,
    response_mask: Tensor,
    gradient_accumulation_steps: int,
    normalize_constant: float = 1.0,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Backpropagate the SFT loss of one microbatch; returns ``(loss, metadata)``.

    policy_log_probs, response_mask: (batch, seq). Loss = −(Σ response log-probs of a sequence /
    ``normalize_constant``), averaged over the batch, divided by ``gradient_accumulation_steps``
    so that the gradients summed over the accumulated microbatches are those of their mean.
    """
    # BEGIN SOLUTION problem=sft_microbatch_train_step
    per_sequence = -masked_normalize(policy_log_probs, response_mask, dim=-1, normalize_constant=normalize_constant)
    loss = per_sequence.mean() / gradient_accumulation_steps
    loss.backward()
    return loss, {"response_tokens": response_mask.sum().detach()}
    # END SOLUTION
