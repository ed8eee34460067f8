"""The prompt templates of the unit.

``R1_ZERO_PROMPT`` asks a base model to think, then answer inside tags, which
:func:`~.rewards.r1_zero_reward_fn` grades. ``INSTRUCTION_TEMPLATE`` is the Alpaca-style format of
the SFT and DPO data: the model learns to continue after "### Response:".
"""

from __future__ import annotations

R1_ZERO_PROMPT = (
    "A conversation between User and Assistant. The User asks a question, and the Assistant solves it. "
    "The Assistant first thinks about the reasoning process in the mind and then provides the User with "
    "the answer. The reasoning process is enclosed within <think> </think> and answer is enclosed within "
    "<answer> </answer> tags, respectively, i.e., <think> reasoning process here </think> "
    "<answer> answer here </answer>.\nUser: {question}\nAssistant: <think>"
)

INSTRUCTION_TEMPLATE = (
    "Below is an instruction that describes a task. Write a response that appropriately completes the request."
    "\n\n### Instruction:\n{prompt}\n\n### Response:\n"
)


def r1_zero_prompt(question: str) -> str:
    return R1_ZERO_PROMPT.format(question=question)


def instruction_prompt(prompt: str) -> str:
    """The part of an instruction example before the response."""
    return INSTRUCTION_TEMPLATE.format(prompt=prompt)
