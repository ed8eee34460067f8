"""What every training script shares: arguments, seeding, the JSONL log and safetensors checkpoints."""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn

from .rollout import evaluate, load_policy, load_tokenizer, read_problems


def existing(kind: str, hint: str) -> Callable[[str], str]:
    """An argparse type for a path that must already exist: a missing one is one sentence of usage
    error, not a traceback from deep inside transformers or ``open``."""

    def check(value: str) -> str:
        path = Path(value)
        if not (path.is_dir() if kind == "folder" else path.is_file()):
            raise argparse.ArgumentTypeError(f"no {kind} at {value} ({hint})")
        return value

    return check


def base_arguments(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    model = existing("folder", "convert one first: python -m lmc_alignment.convert_smollm2 --out models/smollm2")
    problems = existing("file", "make them first: lmcourse data prepare math --out data")
    parser.add_argument("--model", required=True, type=model, help="folder of a Hugging Face causal LM (config + safetensors)")
    parser.add_argument("--tokenizer", type=existing("folder", "a folder with tokenizer.json"),
                        help="tokenizer folder (default: --model)")
    parser.add_argument("--train", required=True, type=problems, help="JSONL problems: data/math/train.jsonl")
    parser.add_argument("--valid", required=True, type=problems, help="JSONL problems: data/math/valid.jsonl")
    parser.add_argument("--out", required=True, help="run folder: log.jsonl and checkpoints")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--lr", type=float, default=1e-5)
    parser.add_argument("--eval-every", type=int, default=10)
    parser.add_argument("--eval-problems", type=int, default=256)
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    # float32 weights by default: AdamW's steps at lr ~1e-5 are below bf16's resolution for most
    # weights (8 bits of mantissa: spacing ~4e-3 of the weight) and would round away.
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32",
                        help="weights' dtype (bfloat16 only for evaluation: updates round away)")
    return parser


def seed_everything(seed: int) -> random.Random:
    torch.manual_seed(seed)
    return random.Random(seed)


class RunLog:
    """Appends one JSON object per event to ``out/log.jsonl`` and echoes a short line."""

    def __init__(self, out: Path) -> None:
        out.mkdir(parents=True, exist_ok=True)
        self.path = out / "log.jsonl"
        self.started = time.perf_counter()

    def write(self, step: int, **values: Any) -> None:
        record = {"step": step, "elapsed_s": round(time.perf_counter() - self.started, 2), **values}
        with open(self.path, "a", encoding="utf-8") as file:
            file.write(json.dumps(record) + "\n")
        print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in record.items()), flush=True)


def save_checkpoint(model: nn.Module, tokenizer: Any, folder: Path) -> None:
    """The weights as safetensors with the config and tokenizer: a folder ``from_pretrained`` loads."""
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)


def open_policy(args: argparse.Namespace) -> tuple[nn.Module, Any]:
    """The policy and its tokenizer named by the common arguments (--model, --tokenizer, --device, --dtype)."""
    if str(args.device).startswith("cuda"):
        # float32 weights with TF32 matrix products: near-bf16 speed for the matmuls while the
        # weights and optimizer keep full precision. (Process-wide, so only where it matters.)
        torch.set_float32_matmul_precision("high")
    return load_policy(args.model, args.device, getattr(torch, args.dtype)), load_tokenizer(args.tokenizer or args.model)


class Run(NamedTuple):
    """What a training script starts from, once its arguments are read."""

    rng: random.Random  # seeded: which problems each step draws
    model: nn.Module
    tokenizer: Any
    train: list[dict[str, Any]]
    valid: list[dict[str, Any]]  # the first --eval-problems of --valid
    log: RunLog


def start_run(args: argparse.Namespace) -> Run:
    """Seed, load the policy and tokenizer, read the problems and open the log named by ``args``."""
    rng = seed_everything(args.seed)
    model, tokenizer = open_policy(args)
    return Run(rng, model, tokenizer, read_problems(args.train), read_problems(args.valid, args.eval_problems),
               RunLog(Path(args.out)))


def validation_record(step: int, args: argparse.Namespace, model: nn.Module, tokenizer: Any,
                      valid: list[dict[str, Any]], last: bool = False) -> dict[str, float]:
    """Validation accuracy and format rate, as ``valid_*`` fields, every --eval-every steps and at the last one."""
    if step % args.eval_every and step != args.steps and not last:
        return {}
    model.eval()
    return {f"valid_{k}": v for k, v in evaluate(model, tokenizer, valid, args.max_new_tokens).items()}
