"""Leaderboard evaluation throughput: scored tokens per second of the trusted evaluator.

Builds the basics base model (``TrainConfig``'s defaults in reference/basics/train.py: vocab
10,000, context 256, d_model 512, 4 layers, 16 heads, d_ff 1344) with random weights, and scores
a random token stream of ``--tokens`` tokens exactly as a board does: ``score_stream`` with the
basics board's context and stride (256 and 128: every token but the first window's is computed
twice), fp32, TF32 off. Reports scored tokens/s (the number that bounds a board's evaluation
time), forward tokens/s (positions run through the model) and, steadier on a shared machine,
scored tokens per CPU second (CPU time summed over threads). Tokenizing is not included.

    python benchmarks/leaderboard_eval.py                      # CPU, 16,384 tokens
    python benchmarks/leaderboard_eval.py --device cuda --tokens 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, machine, median

from lmcourse.grader.course import Course
from lmcourse.leaderboard.architecture import build_model, parameter_count
from lmcourse.leaderboard.config import BoardRules, ModelConfig
from lmcourse.leaderboard.evaluate import describe_device, exact_fp32, resolve_device, score_stream, sliding_windows

BASE = ModelConfig(vocab_size=10_000, context_length=256, d_model=512, num_layers=4, num_heads=16, d_ff=1344,
                   rope_theta=10_000.0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--tokens", type=int, default=16_384, help="length of the scored stream")
    parser.add_argument("--runs", type=int, default=3, help="timed runs after one warm-up; the median is reported")
    args = parser.parse_args(argv)

    rules = BoardRules()  # the basics board's context and stride are the defaults
    device = resolve_device(args.device)
    torch.manual_seed(0)
    stream = torch.randint(BASE.vocab_size, (args.tokens,))
    windows = sliding_windows(args.tokens - 1, rules.context_length, rules.stride)
    forward_positions = len(windows) * min(rules.context_length, args.tokens - 1)
    with exact_fp32(device):
        model = build_model(BASE, Course.load(REPO), context_length=rules.context_length, device=device)
        model.eval().requires_grad_(False)
        print(f"{parameter_count(BASE):,} parameters on {describe_device(device)}; {args.tokens:,} tokens in "
              f"{len(windows)} windows; machine {machine()}", flush=True)
        score_stream(model, stream[: min(args.tokens, 4 * rules.context_length)], rules.context_length, rules.stride)
        seconds, cpu_seconds, load = [], [], []
        for run in range(args.runs):
            if device.type == "cuda":
                torch.cuda.synchronize()
            load.append(round(os.getloadavg()[0], 2))
            start, cpu_start = time.perf_counter(), time.process_time()
            nats = score_stream(model, stream, rules.context_length, rules.stride)  # returns a float: synchronised
            seconds.append(time.perf_counter() - start)
            cpu_seconds.append(time.process_time() - cpu_start)
            print(f"run {run + 1}: {seconds[-1]:.2f} s ({cpu_seconds[-1]:.2f} CPU s), "
                  f"{(args.tokens - 1) / seconds[-1]:,.0f} scored tokens/s, loss {nats / (args.tokens - 1):.4f}, "
                  f"load avg {load[-1]}", flush=True)
    best = median(seconds)
    summary = {
        "benchmark": "leaderboard_eval", "device": describe_device(device), "tokens": args.tokens - 1,
        "context_length": rules.context_length, "stride": rules.stride, "parameters": parameter_count(BASE),
        "seconds": [round(s, 3) for s in seconds], "cpu_seconds": [round(s, 3) for s in cpu_seconds],
        "load_avg": load, "scored_tokens_per_s": round((args.tokens - 1) / best),
        "forward_tokens_per_s": round(forward_positions / best),
        "scored_tokens_per_cpu_s": round((args.tokens - 1) / median(cpu_seconds)), "threads": torch.get_num_threads(),
        "torch": torch.__version__, "machine": machine(),
    }
    print(f"median {best:.2f} s: {summary['scored_tokens_per_s']:,} scored tokens/s "
          f"({summary['forward_tokens_per_s']:,} forward tokens/s, "
          f"{summary['scored_tokens_per_cpu_s']:,} scored tokens per CPU second)")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
