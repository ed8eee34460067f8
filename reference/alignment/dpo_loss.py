"""Direct Preference Optimization on one (prompt, chosen, rejected) triple."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .logprobs import get_response_log_probs
from .prompts import instruction_prompt
from .tokenization import tokenize_prompt_and_output


def sequence_log_probs(lm: nn.Module, tokenizer: Any, prompt: str, responses: list[str]) -> Tensor:
    """log π(response | prompt) for each response: (n,), summed over the response tokens.

    The prompt is the instruction template; each response is followed by the end-of-sequence
    token (its probability is part of the answer: DPO should learn where to stop).
    """
    eos = tokenizer.eos_token or ""
    tokens = tokenize_prompt_and_output([instruction_prompt(prompt)] * len(responses), [r + eos for r in responses], tokenizer)
    device = next(lm.parameters()).device
    tokens = {k: v.to(device) for k, v in tokens.items()}
    log_probs = get_response_log_probs(lm, tokens["input_ids"], tokens["labels"])["log_probs"]
    return (log_probs * tokens["response_mask"]).sum(dim=-1)


def compute_per_instance_dpo_loss(
    lm: nn.Module,
    lm_ref: nn.Module,
    tokenizer: Any,
    beta: float,
    prompt: str,
    response_chosen: str,
    response_rejected: str,
) -> Tensor:
    """−log σ(β[(log π(y_w) − log π_ref(y_w)) − (log π(y_l) − log π_ref(y_l))]), a scalar.

    Gradients flow into ``lm`` only; ``lm_ref`` is the frozen starting point.
    """
    # BEGIN SOLUTION problem=dpo_loss
    policy = sequence_log_probs(lm, tokenizer, prompt, [response_chosen, response_rejected])
    with torch.no_grad():
        reference = sequence_log_probs(lm_ref, tokenizer, prompt, [response_chosen, response_rejected])
    margins = policy - reference.to(policy.device)
    return -F.logsigmoid(beta * (margins[0] - margins[1]))
    # END SOLUTION
