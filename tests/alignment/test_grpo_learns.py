"""GRPO learns: on the CPU, a few dozen steps of the reference GRPO raise the reward of the tiny
fixture model on a task it starts out bad at, in every variant the training script offers.

The task is scored by a reward the random model can already earn a little of (the share of
``a`` characters in a short response), so every group has some spread and the test measures the
optimizer, not luck in finding a first success. A sign error in the advantages, a loss that
ignores them or a wrong aggregation leaves the reward flat or lowers it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("transformers")

import torch  # noqa: E402

from reference.alignment.grpo_step import grpo_train_step  # noqa: E402
from reference.alignment.rollout import load_policy, load_tokenizer, sample  # noqa: E402

FIXTURES = Path(__file__).resolve().parents[2] / "assignments" / "alignment" / "fixtures"
PROMPTS = ["1+1=", "2+2=", "3+3=", "4+4="]
GROUP, NEW_TOKENS = 8, 8


def share_of_a(response: str, truth: object) -> dict[str, float]:
    score = response.count("a") / max(len(response), 1)
    return {"reward": score, "format_reward": 1.0, "answer_reward": score}


def mean_reward(model, tokenizer) -> float:
    torch.manual_seed(1234)  # the same sampling noise before and after training
    responses = sample(model, tokenizer, PROMPTS, 32, NEW_TOKENS, temperature=1.0)
    return sum(share_of_a(r, None)["reward"] for r in responses) / len(responses)


@pytest.mark.parametrize("variant", [
    {"advantage_normalizer": "std"},                                     # GRPO
    {"advantage_normalizer": "none", "loss_normalization": "constant"},  # Dr. GRPO
    {"advantage_normalizer": "mean"},                                    # MaxRL
])
def test_grpo_raises_the_reward(variant):
    torch.manual_seed(0)
    model = load_policy(FIXTURES / "tiny_llama")
    tokenizer = load_tokenizer(FIXTURES / "tiny_tokenizer")
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    before = mean_reward(model, tokenizer)
    repeated = [p for p in PROMPTS for _ in range(GROUP)]
    for _ in range(25):
        model.eval()
        responses = sample(model, tokenizer, PROMPTS, GROUP, NEW_TOKENS, temperature=1.0)
        model.train()
        grpo_train_step(model, tokenizer, optimizer, 2, 1.0, share_of_a, repeated, responses, [None] * len(repeated),
                        GROUP, normalization_constant=float(NEW_TOKENS), **variant)
    after = mean_reward(model, tokenizer)
    assert after > before + 0.1, (before, after)
