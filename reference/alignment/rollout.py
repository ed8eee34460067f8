"""Loading a policy, sampling responses from it, and measuring it on math problems.

Sampling uses Hugging Face ``generate`` with its KV cache (each new token attends to cached keys
and values instead of re-running the prefix). Evaluation can use vLLM instead when it is
installed and a GPU is present (``engine="vllm"``): it is several times faster for large
evaluation sets, but it loads the weights from disk, so it serves evaluation of saved checkpoints,
not rollouts of a policy that changes every step.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .logprobs import get_response_log_probs
from .prompts import r1_zero_prompt
from .rewards import r1_zero_reward_fn
from .tokenization import tokenize_prompt_and_output

STOP = "</answer>"


def load_policy(path: str | Path, device: str = "cpu", dtype: torch.dtype = torch.float32) -> nn.Module:
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path, dtype=dtype).to(device)


def load_tokenizer(path: str | Path) -> Any:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    tokenizer.padding_side = "left"  # generation continues from the last position of every row
    if tokenizer.pad_token is None:  # padding positions are masked out, so any token serves
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def read_problems(path: str | Path, limit: int | None = None) -> list[dict[str, Any]]:
    """Problems from a JSONL file of ``{"question", "answer", ...}`` (``lmcourse data prepare math``)."""
    with open(path, encoding="utf-8") as file:
        problems = [json.loads(line) for line in file if line.strip()]
    return problems[:limit] if limit else problems


def cut_at_stop(text: str) -> str:
    """Keep a response up to and including its first ``</answer>``: what follows is never graded."""
    end = text.find(STOP)
    return text if end < 0 else text[: end + len(STOP)]


@torch.no_grad()
def sample(
    model: nn.Module, tokenizer: Any, prompts: Sequence[str], n: int = 1, max_new_tokens: int = 256,
    temperature: float = 1.0, batch_size: int = 512,
) -> list[str]:
    """``n`` sampled responses per prompt, in order (all of prompt 0, then prompt 1, ...).

    ``batch_size`` counts rows (responses) per ``generate`` call. Decoding a small model is bound
    by kernel launches, not arithmetic: one call of 512 rows costs about what one of 128 does.

    A row stops at its first ``</answer>`` (``stop_strings``): nothing after it is graded, and a
    batch whose rows have all answered ends early instead of running to ``max_new_tokens``.
    """
    device = next(model.parameters()).device
    responses: list[str] = []
    per_call = max(batch_size // n, 1)
    for start in range(0, len(prompts), per_call):
        batch = tokenizer(list(prompts[start : start + per_call]), return_tensors="pt", padding=True, add_special_tokens=False)
        out = model.generate(
            **batch.to(device), do_sample=temperature > 0, temperature=temperature if temperature > 0 else None,
            max_new_tokens=max_new_tokens, num_return_sequences=n, use_cache=True, stop_strings=[STOP], tokenizer=tokenizer,
            pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
        new_tokens = out[:, batch["input_ids"].shape[1] :]
        responses += [cut_at_stop(t) for t in tokenizer.batch_decode(new_tokens, skip_special_tokens=True)]
    return responses


def sample_with_vllm(model_path: str | Path, prompts: Sequence[str], max_new_tokens: int, temperature: float) -> list[str]:
    """Greedy or sampled responses with vLLM (one per prompt), stopping at ``</answer>``."""
    from vllm import LLM, SamplingParams

    llm = LLM(model=str(model_path))
    params = SamplingParams(temperature=temperature, max_tokens=max_new_tokens, stop=[STOP], include_stop_str_in_output=True)
    return [o.outputs[0].text for o in llm.generate(list(prompts), params)]


def vllm_available() -> bool:
    return importlib.util.find_spec("vllm") is not None and torch.cuda.is_available()


@torch.no_grad()
def response_log_probs_in_batches(
    model: nn.Module, tokens: dict[str, torch.Tensor], batch_size: int = 32, return_token_entropy: bool = False,
) -> dict[str, torch.Tensor]:
    """:func:`get_response_log_probs` of a tokenized batch, ``batch_size`` rows per forward pass.

    One pass over every row would hold all their logits at once (rows × length × vocab floats:
    46 GB for 523 responses of SmolLM2), so large evaluation sets go through in slices.
    """
    device = next(model.parameters()).device
    parts = [
        get_response_log_probs(model, ids.to(device), labels.to(device), return_token_entropy)
        for ids, labels in zip(tokens["input_ids"].split(batch_size), tokens["labels"].split(batch_size))
    ]
    return {key: torch.cat([part[key] for part in parts]) for key in parts[0]}


def mean_response_entropy(model: nn.Module, tokenizer: Any, prompts: Sequence[str], responses: Sequence[str]) -> float:
    """Average per-token entropy of the policy over the response tokens (a collapse detector)."""
    tokens = tokenize_prompt_and_output(list(prompts), list(responses), tokenizer)
    entropy = response_log_probs_in_batches(model, tokens, return_token_entropy=True)["token_entropy"]
    mask = tokens["response_mask"].to(entropy.device)
    return float((entropy * mask).sum() / mask.sum().clamp(min=1))


def evaluate(
    model: nn.Module, tokenizer: Any, problems: Sequence[dict[str, Any]], max_new_tokens: int = 256,
    reward_fn: Callable[[str, Any], dict[str, float]] = r1_zero_reward_fn, engine: str = "hf",
    model_path: str | Path | None = None,
) -> dict[str, float]:
    """Greedy accuracy, format rate, mean response length (characters) and entropy on ``problems``."""
    prompts = [r1_zero_prompt(p["question"]) for p in problems]
    if engine == "vllm":
        responses = sample_with_vllm(model_path, prompts, max_new_tokens, 0.0)
    else:
        responses = sample(model, tokenizer, prompts, 1, max_new_tokens, temperature=0.0)
    scores = [reward_fn(r, p["answer"]) for r, p in zip(responses, problems)]
    return {
        "accuracy": sum(s["reward"] for s in scores) / len(scores),
        "format_rate": sum(s["format_reward"] for s in scores) / len(scores),
        "response_chars": sum(len(r) for r in responses) / len(responses),
        "entropy": mean_response_entropy(model, tokenizer, prompts, responses),
    }
