"""Producers: functions the tests run against student code, returning plain data.

A producer takes the adapter module as its first argument, builds what cannot cross the sandbox
boundary (the tiny Hugging Face model and tokenizer of ``fixtures/``, tensors that need
gradients, an optimizer, a reward function), calls the adapters and returns tensors, numbers,
lists or dicts. Producers hold no expected values. The helpers without an ``adapters`` argument
build the same inputs on the trusted side, from the same files and seeds.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import torch
from torch import Tensor

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

# ---- inputs both sides build ----


def load_tokenizer(fixtures: str | Path = FIXTURES) -> Any:
    """The character-level tokenizer: ``<pad>`` = 0, ``<eos>`` = 1, one id per printable character."""
    from transformers import PreTrainedTokenizerFast

    path = Path(fixtures) / "tiny_tokenizer" / "tokenizer.json"
    return PreTrainedTokenizerFast(tokenizer_file=str(path), pad_token="<pad>", eos_token="<eos>")


def load_model(fixtures: str | Path = FIXTURES, name: str = "tiny_llama") -> torch.nn.Module:
    """A 2-layer Llama of width 32 (random weights), float32, in eval mode (no dropout anyway)."""
    from transformers import LlamaForCausalLM

    return LlamaForCausalLM.from_pretrained(Path(fixtures) / name, dtype=torch.float32).eval()


def seeded(*shape: int, seed: int) -> Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def seeded_mask(*shape: int, seed: int) -> Tensor:
    """A response-like mask: each row false, then true, then false (prompt, response, padding)."""
    generator = torch.Generator().manual_seed(seed)
    batch, seq = shape
    mask = torch.zeros(shape, dtype=torch.bool)
    for row in range(batch):
        start = int(torch.randint(0, seq // 2, (1,), generator=generator))
        end = int(torch.randint(start + 1, seq + 1, (1,), generator=generator))
        mask[row, start:end] = True
    return mask


def contains_reward(response: str, ground_truth: str) -> dict[str, float]:
    """A toy reward: formatted when the response ends with ".", correct when it contains the truth."""
    formatted = response.endswith(".")
    correct = formatted and ground_truth in response
    return {"format_reward": float(formatted), "answer_reward": float(correct), "reward": float(correct)}


# ---- producers ----


def tokenize(adapters: ModuleType, prompts: list[str], outputs: list[str], fixtures: str) -> dict[str, Tensor]:
    return dict(adapters.run_tokenize_prompt_and_output(prompts, outputs, load_tokenizer(fixtures)))


def response_log_probs(
    adapters: ModuleType, input_ids: Tensor, labels: Tensor, return_token_entropy: bool, fixtures: str
) -> dict[str, Any]:
    """The adapter's output on the tiny model, and the gradient of Σ log-probs w.r.t. the LM head."""
    model = load_model(fixtures)
    out = adapters.run_get_response_log_probs(model, input_ids, labels, return_token_entropy)
    out["log_probs"].sum().backward()
    result = {k: v.detach() for k, v in out.items()}
    result["lm_head_grad"] = model.lm_head.weight.grad
    return result


def sft_step(
    adapters: ModuleType, seed: int, shape: list[int], gradient_accumulation_steps: int, normalize_constant: float
) -> dict[str, Tensor]:
    """Loss, metadata keys and the gradient the step leaves on the log-probs."""
    log_probs = (-seeded(*shape, seed=seed).abs()).requires_grad_()
    loss, _ = adapters.run_sft_microbatch_train_step(
        log_probs, seeded_mask(*shape, seed=seed + 1), gradient_accumulation_steps, normalize_constant
    )
    return {"loss": loss.detach(), "grad": log_probs.grad}


def grpo_microbatch_step(adapters: ModuleType, seed: int, shape: list[int], loss_type: str, **kwargs: Any) -> dict[str, Tensor]:
    """As :func:`sft_step` for the GRPO microbatch step; ``kwargs`` name which inputs to pass."""
    batch, _ = shape
    log_probs = (-seeded(*shape, seed=seed).abs()).requires_grad_()
    inputs = grpo_inputs(seed, shape)
    loss, _ = adapters.run_grpo_microbatch_train_step(
        policy_log_probs=log_probs,
        response_mask=inputs["mask"],
        gradient_accumulation_steps=kwargs.get("gradient_accumulation_steps", 1),
        loss_type=loss_type,
        raw_rewards=inputs["raw_rewards"] if kwargs.get("raw_rewards") else None,
        advantages=inputs["advantages"] if kwargs.get("advantages") else None,
        old_log_probs=inputs["old_log_probs"] if kwargs.get("old_log_probs") else None,
        cliprange=kwargs.get("cliprange"),
    )
    return {"loss": loss.detach(), "grad": log_probs.grad}


def grpo_inputs(seed: int, shape: list[int]) -> dict[str, Tensor]:
    """Rewards, advantages, old log-probs and a mask of a (batch, seq) microbatch."""
    batch, seq = shape
    generator = torch.Generator().manual_seed(seed + 7)
    return {
        "raw_rewards": torch.randint(0, 2, (batch, 1), generator=generator).float(),
        "advantages": torch.randn((batch, 1), generator=generator),
        "old_log_probs": -seeded(*shape, seed=seed).abs() + 0.2 * seeded(*shape, seed=seed + 3),
        "mask": seeded_mask(*shape, seed=seed + 1),
    }


def rollout_rewards(adapters: ModuleType, responses: list[str], truths: list[str]) -> list[Any]:
    rewards, metadata = adapters.run_compute_rollout_rewards(contains_reward, responses, truths)
    return [rewards, dict(metadata)]


GRPO_PROMPTS = ["Q: 2+3? A:", "Q: name a color. A:"]
GRPO_TRUTHS = ["5", "red"]
GRPO_RESPONSES = ["5.", "It is 5.", "six", "5 or 6.", "red.", "blue.", "Red", "a red one."]


def grpo_train_step(adapters: ModuleType, fixtures: str, group_size: int = 4, **options: Any) -> dict[str, Any]:
    """One ``run_grpo_train_step`` with SGD on the tiny model; returns the loss, the metadata,
    the weights after the step and whether every gradient was reset to None."""
    torch.manual_seed(0)
    model, tokenizer = load_model(fixtures), load_tokenizer(fixtures)
    optimizer = torch.optim.SGD(model.parameters(), lr=options.pop("lr", 0.5))
    prompts = [p for p in GRPO_PROMPTS for _ in range(group_size)]
    truths = [t for t in GRPO_TRUTHS for _ in range(group_size)]
    responses = GRPO_RESPONSES[: len(prompts)]
    loss, metadata = adapters.run_grpo_train_step(
        model=model, tokenizer=tokenizer, optimizer=optimizer, reward_fn=contains_reward, repeated_prompts=prompts,
        rollout_responses=responses, repeated_ground_truths=truths, group_size=group_size, **options,
    )
    return {
        "loss": torch.as_tensor(loss).detach().float(),
        "metadata_keys": sorted(metadata),
        "weights": {k: v.detach().clone() for k, v in model.state_dict().items()},
        "grads_none": all(p.grad is None for p in model.parameters()),
    }


def packed_windows(adapters: ModuleType, fixtures: str, seq_length: int, batch_size: int) -> dict[str, Any]:
    """Every window of the packed dataset (not shuffled) and the batches of one epoch."""
    dataset = adapters.get_packed_sft_dataset(load_tokenizer(fixtures), str(Path(fixtures) / "sft_tiny.jsonl"), seq_length, False)
    windows = [dataset[i] for i in range(len(dataset))]
    batches = adapters.run_iterate_batches(dataset, batch_size, False)
    return {
        "input_ids": [w["input_ids"] for w in windows],
        "labels": [w["labels"] for w in windows],
        "num_batches": len(batches),
        "batch_shapes": [list(b["input_ids"].shape) for b in batches],
    }


def dpo_loss(adapters: ModuleType, fixtures: str, beta: float, prompt: str, chosen: str, rejected: str) -> dict[str, Tensor]:
    """The loss, and the LM head gradient it leaves on the policy (and none on the reference)."""
    lm, lm_ref, tokenizer = load_model(fixtures), load_model(fixtures, "tiny_llama_ref"), load_tokenizer(fixtures)
    loss = adapters.run_compute_per_instance_dpo_loss(lm, lm_ref, tokenizer, beta, prompt, chosen, rejected)
    loss.backward()
    return {
        "loss": loss.detach(),
        "policy_grad": lm.lm_head.weight.grad,
        "ref_has_grad": any(p.grad is not None for p in lm_ref.parameters()),
    }


def error_of(adapters: ModuleType, adapter: str, **kwargs: Any) -> str | None:
    """The exception class name an adapter raises (None if it returns), for the bad-input tests."""
    try:
        getattr(adapters, adapter)(**kwargs)
    except Exception as exc:  # noqa: BLE001 - the class name is the data
        return type(exc).__name__
    return None


def log_probs_of_long_input(adapters: ModuleType, fixtures: str, length: int) -> str | None:
    """What the log-prob adapter does with a sequence longer than the model's context."""
    ids = torch.ones((1, length), dtype=torch.long) * 5
    try:
        out = adapters.run_get_response_log_probs(load_model(fixtures), ids, ids, False)
    except Exception as exc:  # noqa: BLE001
        return type(exc).__name__
    return "finite" if bool(torch.isfinite(out["log_probs"]).all()) else "nan"
