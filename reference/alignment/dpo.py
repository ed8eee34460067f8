"""DPO on preference pairs made by the verifier: a correct and an incorrect response to the same question.

    python -m lmc_alignment.dpo --model models/smollm2 --train data/math/train.jsonl \\
        --valid data/math/valid.jsonl --out runs/dpo [--beta 0.1] [--pairs 256]

Pairs come from sampling ``--samples`` responses (R1-zero prompt) per training question and
pairing a rewarded response with an unrewarded one (or from ``--pairs-file``). Training uses the instruction template of
:func:`~.dpo_loss.compute_per_instance_dpo_loss` around the question. Logs loss, the share of
pairs ranked correctly, validation accuracy, entropy and length; saves safetensors in ``out/final``.
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path

import torch

from .dpo_loss import compute_per_instance_dpo_loss
from .experiment import base_arguments, save_checkpoint, start_run, validation_record
from .prompts import r1_zero_prompt
from .rewards import r1_zero_reward_fn
from .rollout import read_problems, sample


def arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = base_arguments("DPO on verifier-labelled preference pairs.")
    parser.add_argument("--beta", type=float, default=0.1)
    parser.add_argument("--pairs", type=int, default=256, help="preference pairs to collect")
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=8, help="pairs per optimizer step")
    parser.add_argument("--pairs-file", help='JSONL of {"prompt", "chosen", "rejected"} to use instead of sampling')
    return parser.parse_args(argv)


def collect_pairs(model, tokenizer, problems, samples: int, max_new_tokens: int, limit: int) -> list[tuple[str, str, str]]:
    """(question, chosen, rejected) triples where the reward separates two samples of one question."""
    pairs: list[tuple[str, str, str]] = []
    for start in range(0, len(problems), 32):
        chunk = problems[start : start + 32]
        responses = sample(model, tokenizer, [r1_zero_prompt(p["question"]) for p in chunk], samples, max_new_tokens)
        for i, problem in enumerate(chunk):
            group = responses[i * samples : (i + 1) * samples]
            good = [r for r in group if r1_zero_reward_fn(r, problem["answer"])["reward"] == 1.0]
            bad = [r for r in group if r1_zero_reward_fn(r, problem["answer"])["reward"] == 0.0]
            if good and bad:
                pairs.append((problem["question"], good[0], bad[0]))
        if len(pairs) >= limit:
            break
    return pairs[:limit]


def main(argv: list[str] | None = None) -> None:
    args = arguments(argv)
    rng, model, tokenizer, train_problems, valid, log = start_run(args)
    model.eval()
    if args.pairs_file:
        pairs = [(p["prompt"], p["chosen"], p["rejected"]) for p in read_problems(args.pairs_file, args.pairs)]
    else:
        pairs = collect_pairs(model, tokenizer, rng.sample(train_problems, len(train_problems)), args.samples,
                              args.max_new_tokens, args.pairs)
    log.write(0, pairs=len(pairs))
    if not pairs:
        raise SystemExit("no question had both a correct and an incorrect sample: nothing to prefer")
    reference = copy.deepcopy(model).eval().requires_grad_(False)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0)
    for step in range(1, args.steps + 1):
        model.train()
        batch = rng.choices(pairs, k=args.batch_size)
        losses = []
        for question, chosen, rejected in batch:
            loss = compute_per_instance_dpo_loss(model, reference, tokenizer, args.beta, question, chosen, rejected)
            (loss / len(batch)).backward()
            losses.append(loss.item())
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        # loss < log 2 exactly when the policy ranks the chosen response above the rejected one (relative to the reference).
        record = {"loss": sum(losses) / len(losses), "pairs_ranked": sum(v < 0.6931 for v in losses) / len(losses)}
        record.update(validation_record(step, args, model, tokenizer, valid))
        log.write(step, **record)
    save_checkpoint(model, tokenizer, Path(args.out) / "final")


if __name__ == "__main__":
    main()
