"""Supervised fine-tuning on worked solutions, in the R1-zero format.

    python -m lmc_alignment.sft --model models/smollm2 --train data/math/train.jsonl \\
        --valid data/math/valid.jsonl --out runs/sft [--examples 512] [--steps 200]

An example is the R1-zero prompt of a question and the response
``<solution> </think> <answer> <answer> </answer>`` built from the worked solution (its final
``#### N`` line becomes the answer). Logs loss, validation accuracy, entropy and response length;
saves safetensors in ``out/final``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from .experiment import RunLog, base_arguments, save_checkpoint, seed_everything, start_run, validation_record
from .logprobs import get_response_log_probs
from .prompts import r1_zero_prompt
from .sft_step import sft_microbatch_train_step
from .tokenization import tokenize_prompt_and_output


def arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = base_arguments("Supervised fine-tuning on worked math solutions.")
    parser.add_argument("--examples", type=int, default=None, help="use only the first N training problems")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--microbatches", type=int, default=4)
    return parser.parse_args(argv)


def r1_zero_example(problem: dict[str, Any]) -> tuple[str, str]:
    """(prompt, response) for a problem with a worked ``solution`` ending in ``#### answer``."""
    reasoning = problem["solution"].rsplit("####", 1)[0].strip()
    return r1_zero_prompt(problem["question"]), f" {reasoning} </think> <answer> {problem['answer']} </answer>"


def sft_step(model, tokenizer, optimizer, examples: Sequence[tuple[str, str]], microbatches: int) -> float:
    """One optimizer step over ``examples`` in ``microbatches`` accumulated pieces; returns the loss."""
    size = max(len(examples) // microbatches, 1)
    device = next(model.parameters()).device
    total = 0.0
    for start in range(0, len(examples), size):
        prompts, responses = zip(*examples[start : start + size])
        tokens = {k: v.to(device) for k, v in tokenize_prompt_and_output(list(prompts), list(responses), tokenizer).items()}
        log_probs = get_response_log_probs(model, tokens["input_ids"], tokens["labels"])["log_probs"]
        # Normalizing by the response tokens of the microbatch makes the loss a per-token NLL.
        tokens_per_sequence = float(tokens["response_mask"].sum()) / len(prompts)
        loss, _ = sft_microbatch_train_step(log_probs, tokens["response_mask"], -(-len(examples) // size),
                                            max(tokens_per_sequence, 1.0))
        total += loss.item()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return total


def train(model, tokenizer, examples: list[tuple[str, str]], valid, args: argparse.Namespace, log: RunLog) -> None:
    """SFT loop shared with expert iteration: batches drawn with replacement from ``examples``."""
    rng = seed_everything(args.seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0)
    for step in range(1, args.steps + 1):
        model.train()
        loss = sft_step(model, tokenizer, optimizer, rng.choices(examples, k=args.batch_size), args.microbatches)
        record: dict[str, float] = {"loss": loss}
        record.update(validation_record(step, args, model, tokenizer, valid))
        log.write(step, **record)


def main(argv: list[str] | None = None) -> None:
    args = arguments(argv)
    _, model, tokenizer, problems, valid, log = start_run(args)
    examples = [r1_zero_example(p) for p in problems[: args.examples]]
    train(model, tokenizer, examples, valid, args, log)
    save_checkpoint(model, tokenizer, Path(args.out) / "final")


if __name__ == "__main__":
    main()
