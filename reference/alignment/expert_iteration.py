"""Expert iteration: sample answers, keep those the verifier accepts, fine-tune on them, repeat.

    python -m lmc_alignment.expert_iteration --model models/smollm2 --train data/math/train.jsonl \\
        --valid data/math/valid.jsonl --out runs/ei [--rounds 3] [--questions 512] [--samples 4]

Each round samples ``--samples`` responses to ``--questions`` training questions, keeps the
correct ones (reward 1 under the R1-zero reward) and runs ``--steps`` SFT steps on them. Logs the
share of questions solved per round, then the SFT metrics; saves safetensors in ``out/final``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .experiment import base_arguments, save_checkpoint, start_run
from .prompts import r1_zero_prompt
from .rewards import r1_zero_reward_fn
from .rollout import sample
from .sft import train


def arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = base_arguments("Expert iteration on math problems.")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--questions", type=int, default=512)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--microbatches", type=int, default=4)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = arguments(argv)
    rng, model, tokenizer, train_problems, valid, log = start_run(args)
    for round_ in range(1, args.rounds + 1):
        questions = rng.sample(train_problems, min(args.questions, len(train_problems)))
        prompts = [r1_zero_prompt(p["question"]) for p in questions]
        model.eval()
        responses = sample(model, tokenizer, prompts, args.samples, args.max_new_tokens, args.temperature)
        kept = [(prompts[i // args.samples], response) for i, response in enumerate(responses)
                if r1_zero_reward_fn(response, questions[i // args.samples]["answer"])["reward"] == 1.0]
        solved = len({prompt for prompt, _ in kept})
        log.write(round_ * args.steps, round=round_, kept_responses=len(kept), solved_share=solved / len(questions))
        if kept:
            train(model, tokenizer, kept, valid, args, log)
    save_checkpoint(model, tokenizer, Path(args.out) / "final")


if __name__ == "__main__":
    main()
