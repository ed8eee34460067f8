"""Prompt + response tokenization with a mask that marks the response tokens."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


def pad_id_of(tokenizer: Any) -> int:
    """The tokenizer's padding id, falling back to end-of-sequence (Llama-style tokenizers have no pad)."""
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    if pad is None:
        raise ValueError("the tokenizer has neither a pad token nor an end-of-sequence token to pad with")
    return int(pad)


def tokenize_prompt_and_output(prompt_strs: list[str], output_strs: list[str], tokenizer: Any) -> dict[str, Tensor]:
    """Tokenize prompts and outputs separately, concatenate, right-pad and shift by one.

    Returns ``input_ids`` and ``labels`` (batch, max_len − 1), long, and ``response_mask`` (same
    shape, bool): ``labels[i, t]`` is the token after ``input_ids[i, t]``, and the mask is true
    where that label is an output token (never on the prompt or on padding). Tokenizing the two
    parts separately keeps the boundary exact even when the tokenizer would merge across it.
    An empty output gives a row whose mask is all false.
    """
    if len(prompt_strs) != len(output_strs):
        raise ValueError(f"got {len(prompt_strs)} prompts but {len(output_strs)} outputs")
    if not prompt_strs:
        raise ValueError("cannot tokenize an empty batch")
    # BEGIN SOLUTION problem=tokenize_prompt_and_output
    prompts = tokenizer(list(prompt_strs), add_special_tokens=False)["input_ids"]
    outputs = tokenizer(list(output_strs), add_special_tokens=False)["input_ids"]
    length = max(len(p) + len(o) for p, o in zip(prompts, outputs))
    ids = torch.full((len(prompts), length), pad_id_of(tokenizer), dtype=torch.long)
    is_output = torch.zeros((len(prompts), length), dtype=torch.bool)
    for row, (prompt, output) in enumerate(zip(prompts, outputs)):
        ids[row, : len(prompt) + len(output)] = torch.tensor(prompt + output, dtype=torch.long)
        is_output[row, len(prompt) : len(prompt) + len(output)] = True
    return {"input_ids": ids[:, :-1], "labels": ids[:, 1:], "response_mask": is_output[:, 1:]}
    # END SOLUTION
