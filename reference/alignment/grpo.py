"""GRPO on math problems with the R1-zero prompt and reward.

    python -m lmc_alignment.grpo --model models/smollm2 --train data/math/train.jsonl \\
        --valid data/math/valid.jsonl --out runs/grpo [--steps 200] [--eval-only]

Each step samples ``--prompts-per-step`` questions, ``--group-size`` responses each (HF
``generate`` with a KV cache), then takes ``--epochs-per-rollout`` optimizer steps on them with
:func:`~.grpo_step.grpo_train_step`. With more than one epoch the log-probs of the sampling
policy are computed first and the importance ratio is clipped (``--importance grpo`` or
``gspo``). Logs reward, format rate, validation accuracy, entropy and response length to
``log.jsonl``; saves the final weights as safetensors in ``out/final``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from .experiment import base_arguments, save_checkpoint, start_run, validation_record
from .grpo_step import grpo_train_step
from .prompts import r1_zero_prompt
from .rewards import r1_zero_reward_fn
from .rollout import evaluate, response_log_probs_in_batches, sample, vllm_available
from .tokenization import tokenize_prompt_and_output


def arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = base_arguments("GRPO on math problems.")
    parser.add_argument("--prompts-per-step", type=int, default=16)
    parser.add_argument("--group-size", type=int, default=8)
    parser.add_argument("--microbatches", type=int, default=8, help="gradient accumulation steps per optimizer step")
    parser.add_argument("--epochs-per-rollout", type=int, default=1)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--normalizer", choices=["std", "mean", "none"], default="std")
    parser.add_argument("--baseline", choices=["mean", "none"], default="mean")
    parser.add_argument("--importance", choices=["none", "noclip", "grpo", "gspo"], default=None,
                        help="default: none on-policy, grpo with several epochs per rollout")
    parser.add_argument("--cliprange", type=float, default=0.2)
    parser.add_argument("--loss-normalization", choices=["sequence", "constant"], default="sequence")
    parser.add_argument("--max-grad-norm", type=float, default=1.0)
    parser.add_argument("--eval-only", action="store_true", help="only measure the starting model")
    parser.add_argument("--max-minutes", type=float, default=None,
                        help="stop after the step that crosses this wall-clock budget (evaluation included)")
    return parser.parse_args(argv)


def sampling_log_probs(model, tokenizer, prompts: list[str], responses: list[str]) -> torch.Tensor:
    """Log-probs of the rollouts under the policy that sampled them, before any update."""
    tokens = tokenize_prompt_and_output(prompts, responses, tokenizer)
    return response_log_probs_in_batches(model, tokens)["log_probs"]


def main(argv: list[str] | None = None) -> None:
    args = arguments(argv)
    rng, model, tokenizer, train, valid, log = start_run(args)
    engine = "vllm" if args.eval_only and vllm_available() else "hf"
    log.write(0, **{f"valid_{k}": v for k, v in evaluate(model, tokenizer, valid, args.max_new_tokens, engine=engine,
                                                         model_path=args.model).items()})
    if args.eval_only:
        return
    importance = args.importance or ("grpo" if args.epochs_per_rollout > 1 else "none")
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0, betas=(0.9, 0.95))
    deadline = time.monotonic() + 60 * args.max_minutes if args.max_minutes is not None else float("inf")
    for step in range(1, args.steps + 1):
        batch = rng.sample(train, args.prompts_per_step)
        questions = [r1_zero_prompt(p["question"]) for p in batch]
        prompts = [q for q in questions for _ in range(args.group_size)]  # one per rollout, as sample() orders them
        truths = [p["answer"] for p in batch for _ in range(args.group_size)]
        model.eval()
        started = time.perf_counter()
        responses = sample(model, tokenizer, questions, args.group_size, args.max_new_tokens, args.temperature)
        rollout_s = time.perf_counter() - started
        old = sampling_log_probs(model, tokenizer, prompts, responses) if importance != "none" else None
        model.train()
        for _ in range(args.epochs_per_rollout):
            loss, metadata = grpo_train_step(
                model, tokenizer, optimizer, args.microbatches, args.max_grad_norm, r1_zero_reward_fn, prompts,
                responses, truths, args.group_size, args.baseline, 1e-6, args.normalizer, importance, old,
                args.cliprange, args.loss_normalization, float(len(prompts) * args.max_new_tokens),
            )
        record = {"loss": float(loss), "train_reward": metadata["reward"], "train_format": metadata["format_reward"],
                  "response_chars": sum(map(len, responses)) / len(responses), "clip_fraction": metadata["clip_fraction"],
                  # groups whose responses all scored the same get zero advantage: no learning signal
                  "groups_all_equal": metadata["groups_all_equal"], "grad_norm": metadata.get("grad_norm", 0.0),
                  "rollout_s": rollout_s}
        out_of_time = time.monotonic() > deadline
        record.update(validation_record(step, args, model, tokenizer, valid, last=out_of_time))
        log.write(step, **record)
        if out_of_time:
            break
    save_checkpoint(model, tokenizer, Path(args.out) / "final")


if __name__ == "__main__":
    main()
