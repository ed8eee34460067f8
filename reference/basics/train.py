"""Train a TransformerLM on a tokenized corpus.

    python -m lmc_basics.train --config cfg.yaml [--field value ...] [--resume]

The configuration is a YAML file of :class:`TrainConfig` fields; ``--field value`` on the
command line overrides it (``--max_lr`` and ``--max-lr`` both work). Data are flat files of
``uint16`` token ids. Everything a run writes lands in ``out_dir``:

- ``log.jsonl``: one JSON object per logging step with ``step``, ``train_loss``,
  ``val_loss`` (null between evaluations), ``lr``, ``tokens_per_s``, ``mfu`` (null when
  unknown) and ``elapsed_s``; attach it to a leaderboard submission;
- ``checkpoint.pt``: model, optimizer and iteration; ``--resume`` continues from it;
- ``model.safetensors`` and ``model_config.json`` at the end: the weights and shape a
  leaderboard evaluator loads.

On a GPU the model is compiled with ``torch.compile`` and runs under bf16 autocast, with
fp32 master weights.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
import typing
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import yaml
from safetensors.torch import save_file
from torch import Tensor, nn

from .checkpoint import load_checkpoint, save_checkpoint
from .data import get_batch, load_tokens
from .model import TransformerLM
from .nn_utils import cross_entropy, gradient_clipping
from .optimizer import AdamW, get_lr_cosine_schedule

# Dense bf16 tensor-core throughput in FLOP/s from vendor datasheets (SXM parts), matched as
# substrings of the device name in this order ("L40S" before "L4").
PEAK_BF16_FLOPS: list[tuple[str, float]] = [
    ("B200", 2250e12),
    ("H200", 989e12),
    ("H100", 989e12),
    ("A100", 312e12),
    ("L40S", 362e12),
    ("L4", 121e12),
]


class ConfigError(ValueError):
    """A configuration value is missing, unknown or of the wrong type."""


@dataclass
class TrainConfig:
    """Everything a training run needs; the defaults fit a ~20M-parameter model on one GPU."""

    # Data: flat uint16 token files.
    train_data: str = ""
    val_data: str | None = None
    # Model shape.
    vocab_size: int = 10_000
    context_length: int = 256
    d_model: int = 512
    num_layers: int = 4
    num_heads: int = 16
    d_ff: int = 1344
    rope_theta: float = 10_000.0
    # Optimizer and schedule: warm-up, then cosine decay from max_lr to min_lr at the last step.
    max_lr: float = 1e-3
    min_lr: float = 1e-4
    warmup_steps: int = 100
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    eps: float = 1e-8
    grad_clip: float = 1.0
    # The run.
    batch_size: int = 32
    steps: int = 5000
    log_interval: int = 10
    eval_interval: int = 500
    eval_batches: int = 20
    checkpoint_interval: int = 1000
    out_dir: str = "runs/basics"
    seed: int = 0
    # Hardware: "auto" picks CUDA, then Apple's MPS, then the CPU; bf16 autocast and
    # torch.compile by default on CUDA only.
    device: str = "auto"
    dtype: Literal["auto", "float32", "bfloat16"] = "auto"
    compile: bool | None = None

    def __post_init__(self) -> None:
        if not self.train_data:
            raise ConfigError("train_data is required: the path of a uint16 token file")
        if self.d_model % self.num_heads:
            raise ConfigError(f"d_model={self.d_model} must be divisible by num_heads={self.num_heads}")
        for name in ("steps", "batch_size", "log_interval", "eval_interval", "checkpoint_interval"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1")


# ----------------------------------------------------------------------- configuration


def parse_args(argv: Sequence[str] | None = None) -> tuple[TrainConfig, bool]:
    """The configuration (defaults < YAML file < command line) and whether to resume."""
    parser = argparse.ArgumentParser(prog="python -m lmc_basics.train", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, help="YAML file of TrainConfig fields")
    parser.add_argument("--resume", action="store_true", help="continue from out_dir/checkpoint.pt")
    for field in fields(TrainConfig):
        flags = {f"--{field.name}", f"--{field.name.replace('_', '-')}"}
        parser.add_argument(
            *sorted(flags), dest=field.name, default=argparse.SUPPRESS, metavar="VALUE", help=f"default: {field.default}"
        )
    args = vars(parser.parse_args(argv))
    config_path, resume = args.pop("config"), args.pop("resume")
    try:
        values = _read_yaml(config_path) if config_path else {}
        values.update(args)
        return make_config(values), resume
    except ConfigError as error:
        parser.error(str(error))  # exits with status 2 and the usage line


def make_config(values: dict[str, Any]) -> TrainConfig:
    """A TrainConfig from raw values (YAML scalars or command-line strings), each converted to its field's type."""
    hints = typing.get_type_hints(TrainConfig)
    unknown = sorted(set(values) - set(hints))
    if unknown:
        raise ConfigError(f"unknown config field(s): {', '.join(unknown)}")
    return TrainConfig(**{name: _convert(name, value, hints[name]) for name, value in values.items()})


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(f"cannot read {path}: {error}") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{path} must hold a mapping of config fields")
    return values


def _convert(name: str, value: Any, hint: Any) -> Any:
    """Convert ``value`` to the type ``hint`` (int, float, str, bool, a Literal, or one of these | None)."""
    options = typing.get_args(hint)
    if typing.get_origin(hint) is Literal:
        if value not in options:
            raise ConfigError(f"{name} must be one of {', '.join(map(str, options))}, not {value!r}")
        return value
    if type(None) in options:  # an optional field
        if value is None or str(value).lower() in ("none", "null"):
            return None
        (hint,) = [option for option in options if option is not type(None)]
    if hint is bool:
        text = str(value).lower()
        if text not in ("true", "false", "1", "0", "yes", "no"):
            raise ConfigError(f"{name} must be true or false, not {value!r}")
        return text in ("true", "1", "yes")
    try:
        # float("3e-4") also rescues numbers YAML reads as strings (it wants "3.0e-4").
        return hint(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be of type {hint.__name__}, not {value!r}") from None


# ----------------------------------------------------------------------- hardware and accounting


def resolve_device(name: str) -> torch.device:
    """The device called `name`; "auto" is the fastest one present."""
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def peak_flops(device: torch.device) -> float | None:
    """The dense bf16 peak of a known GPU, else None (so no MFU is reported)."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((flops for key, flops in PEAK_BF16_FLOPS if key in name), None)


def flops_per_token(model: TransformerLM, cfg: TrainConfig) -> float:
    """Training FLOPs per token (forward and backward), as in PaLM (Chowdhery et al., 2022, app. B).

    6 per weight of every matrix product (2 forward, 4 backward): all parameters but the
    embedding table, a lookup. Attention scores and their weighted sum add 12 · layers ·
    d_model · context per token, counting the masked half as computed.
    """
    matmul_params = sum(p.numel() for p in model.parameters()) - model.token_embeddings.weight.numel()
    return 6 * matmul_params + 12 * cfg.num_layers * cfg.d_model * cfg.context_length


def build_model(cfg: TrainConfig, device: torch.device) -> TransformerLM:
    return TransformerLM(
        vocab_size=cfg.vocab_size,
        context_length=cfg.context_length,
        d_model=cfg.d_model,
        num_layers=cfg.num_layers,
        num_heads=cfg.num_heads,
        d_ff=cfg.d_ff,
        rope_theta=cfg.rope_theta,
        device=device,
    )


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> AdamW:
    """AdamW that decays matrices only: pulling RMSNorm gains towards 0 would not regularise anything."""
    matrices = [p for p in model.parameters() if p.dim() >= 2]
    gains = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": matrices}, {"params": gains, "weight_decay": 0.0}]
    return AdamW(groups, lr=cfg.max_lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps, weight_decay=cfg.weight_decay)


# ----------------------------------------------------------------------- the loop


LossFn = Callable[[Tensor, Tensor], Tensor]
"""(logits (batch, seq, vocab), targets (batch, seq)) -> mean loss: cross_entropy, compiled or not."""


def train_step(
    model: nn.Module,
    loss_fn: LossFn,
    optimizer: torch.optim.Optimizer,
    x: Tensor,
    y: Tensor,
    lr: float,
    grad_clip: float,
    bf16: bool,
) -> Tensor:
    """One optimizer step on inputs ``x`` and targets ``y`` (batch, seq) at learning rate ``lr``.

    ``bf16`` runs the forward pass under bf16 autocast. Returns the loss as a detached scalar
    tensor: reading its value waits for the GPU, so the caller does that only when it logs.
    """
    # BEGIN SOLUTION
    for group in optimizer.param_groups:
        group["lr"] = lr
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
        loss = loss_fn(model(x), y)
    loss.backward()
    gradient_clipping(model.parameters(), grad_clip)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return loss.detach()
    # END SOLUTION


@torch.no_grad()
def evaluate(
    model: nn.Module, loss_fn: LossFn, tokens: np.ndarray, cfg: TrainConfig, device: torch.device, bf16: bool
) -> float:
    """Mean loss over ``cfg.eval_batches`` batches of ``tokens``.

    The batches come from a generator seeded the same way every time, so successive
    evaluations measure the same windows and their differences are the model's.
    """
    # BEGIN SOLUTION
    generator = torch.Generator().manual_seed(cfg.seed)
    losses = []
    for _ in range(cfg.eval_batches):
        x, y = get_batch(tokens, cfg.batch_size, cfg.context_length, device, generator)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            losses.append(loss_fn(model(x), y))
    return torch.stack(losses).mean().item()
    # END SOLUTION


def train(cfg: TrainConfig, resume: bool = False) -> dict[str, Any]:
    """Run the training loop of ``cfg``; returns the last log record."""
    device = resolve_device(cfg.device)
    bf16 = cfg.dtype == "bfloat16" or (cfg.dtype == "auto" and device.type == "cuda")
    use_compile = cfg.compile if cfg.compile is not None else device.type == "cuda"
    torch.set_float32_matmul_precision("high")  # TF32 for any matmul left in fp32
    out_dir = Path(cfg.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    checkpoint_path = out_dir / "checkpoint.pt"

    torch.manual_seed(cfg.seed)
    train_tokens = load_tokens(cfg.train_data)
    val_tokens = load_tokens(cfg.val_data) if cfg.val_data else None
    model = build_model(cfg, device)
    optimizer = build_optimizer(model, cfg)
    if resume and not checkpoint_path.is_file():
        raise FileNotFoundError(f"--resume: there is no checkpoint at {checkpoint_path}")
    start = load_checkpoint(checkpoint_path, model, optimizer) if resume else 0
    torch.manual_seed(cfg.seed + start)  # a resumed run draws new batches instead of replaying the first ones
    # The compiled wrapper shares its parameters with `model`, which is what gets saved.
    step_model = torch.compile(model) if use_compile else model
    # Compiled, the loss is fused into a few kernels instead of passes over fp32 copies of
    # the logits: steps ran 1.6x faster on an H200 at vocab 10k.
    loss_fn = torch.compile(cross_entropy) if use_compile else cross_entropy

    tokens_per_step = cfg.batch_size * cfg.context_length
    flops = flops_per_token(model, cfg)
    peak = peak_flops(device) if bf16 else None  # the table holds bf16 peaks
    log = RunLog(out_dir / "log.jsonl", append=resume)
    log.note(f"{sum(p.numel() for p in model.parameters()):,} parameters on {device}, bf16={bf16}, compile={use_compile}")
    run_start = interval_start = time.perf_counter()
    loss_sum, interval_steps, record = torch.zeros((), device=device), 0, {}
    for step in range(start, cfg.steps):
        lr = get_lr_cosine_schedule(step, cfg.max_lr, cfg.min_lr, cfg.warmup_steps, cfg.steps)
        x, y = get_batch(train_tokens, cfg.batch_size, cfg.context_length, device)
        loss_sum += train_step(step_model, loss_fn, optimizer, x, y, lr, cfg.grad_clip, bf16)
        interval_steps += 1
        done, last = step + 1, step + 1 == cfg.steps
        evaluating = val_tokens is not None and (done % cfg.eval_interval == 0 or last)
        if done % cfg.log_interval == 0 or evaluating or last:
            train_loss = (loss_sum / interval_steps).item()  # waits for the GPU: the interval is complete
            tokens_per_s = interval_steps * tokens_per_step / (time.perf_counter() - interval_start)
            record = {
                "step": done,
                "train_loss": train_loss,
                "val_loss": evaluate(step_model, loss_fn, val_tokens, cfg, device, bf16) if evaluating else None,
                "lr": lr,
                "tokens_per_s": tokens_per_s,
                "mfu": tokens_per_s * flops / peak if peak else None,
                "elapsed_s": time.perf_counter() - run_start,
            }
            log.write(record)
            if not math.isfinite(train_loss):
                raise FloatingPointError(f"the training loss diverged at step {done}")
            # Restart the throughput clock after the evaluation: it is not training time.
            loss_sum, interval_steps, interval_start = torch.zeros((), device=device), 0, time.perf_counter()
        if done % cfg.checkpoint_interval == 0 or last:
            _save_atomically(model, optimizer, done, checkpoint_path)
    export_weights(model, cfg, out_dir)
    return record


def _save_atomically(model: nn.Module, optimizer: torch.optim.Optimizer, iteration: int, path: Path) -> None:
    """Write to a temporary file, then rename: a run killed mid-save keeps its previous checkpoint."""
    partial = path.with_suffix(".partial")
    save_checkpoint(model, optimizer, iteration, partial)
    os.replace(partial, path)


def export_weights(model: TransformerLM, cfg: TrainConfig, out_dir: Path) -> None:
    """The weights as safetensors (nothing to unpickle) and the model shape as JSON."""
    save_file({name: t.detach().contiguous().cpu() for name, t in model.state_dict().items()}, out_dir / "model.safetensors")
    shape = ("vocab_size", "context_length", "d_model", "num_layers", "num_heads", "d_ff", "rope_theta")
    config = {key: value for key, value in asdict(cfg).items() if key in shape}
    (out_dir / "model_config.json").write_text(json.dumps(config, indent=1) + "\n", encoding="utf-8")


class RunLog:
    """Appends records to a JSON-lines file and echoes a short line to the terminal."""

    def __init__(self, path: Path, append: bool) -> None:
        self.path = path
        if not append:
            path.write_text("", encoding="utf-8")

    def write(self, record: dict[str, Any]) -> None:
        with self.path.open("a", encoding="utf-8") as file:
            file.write(json.dumps(record) + "\n")
        parts = [f"step {record['step']:>6}", f"train {record['train_loss']:.4f}"]
        if record["val_loss"] is not None:
            parts.append(f"val {record['val_loss']:.4f}")
        parts += [f"lr {record['lr']:.2e}", f"{record['tokens_per_s']:,.0f} tok/s"]
        if record["mfu"] is not None:
            parts.append(f"MFU {record['mfu']:.1%}")
        parts.append(f"{record['elapsed_s']:.1f}s")
        self.note(" | ".join(parts))

    def note(self, text: str) -> None:
        print(text, flush=True)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    cfg, resume = parse_args(argv)
    return train(cfg, resume)


if __name__ == "__main__":
    main()
