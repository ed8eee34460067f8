"""Producers of the hidden tests: run the student's code on objects built from seeds, return plain data.

Like ``tests/producers.py``: each producer takes the adapter module first, returns tensors,
numbers, lists, dicts or strings, and holds no expected value. The ``*_problem`` helpers build
the same inputs from a seed on both sides, so a test can compute its expectation with PyTorch's
own classes (``torch.optim.AdamW``, ``clip_grad_norm_``) without trusting the sandbox.
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

# ---- gradient clipping ----


def hidden_clipping_problem(seed: int, shapes: list[list[int]], without_grad: list[int], scale: float) -> list[nn.Parameter]:
    """Parameters of ``shapes``; those at the indices ``without_grad`` get no gradient."""
    generator = torch.Generator().manual_seed(seed)
    params = [nn.Parameter(torch.randn(shape, generator=generator)) for shape in shapes]
    for i, p in enumerate(params):
        if i not in without_grad:
            p.grad = torch.randn(p.shape, generator=generator) * scale
    return params


def clipped_gradients_hidden(
    adapters: ModuleType,
    seed: int,
    shapes: list[list[int]],
    without_grad: list[int],
    scale: float,
    max_l2_norm: float,
    as_generator: bool,
) -> dict[str, Any]:
    """Clip through the student's code; the parameters are passed as a list or as a one-shot generator."""
    params = hidden_clipping_problem(seed, shapes, without_grad, scale)
    adapters.run_gradient_clipping((p for p in params) if as_generator else params, max_l2_norm)
    return {
        "grads": [None if p.grad is None else p.grad.clone() for p in params],
        "values": [p.detach().clone() for p in params],
    }


# ---- AdamW ----


def adamw_problem(seed: int) -> tuple[dict[str, Tensor], Tensor, Tensor]:
    """Weights of a small network (``frozen`` never reaches the loss) and a regression batch."""
    generator = torch.Generator().manual_seed(seed)
    weights = {
        "w1": torch.randn(12, 6, generator=generator) * 0.7,
        "b1": torch.randn(12, generator=generator) * 0.1,
        "w2": torch.randn(3, 12, generator=generator) * 0.7,
        "frozen": torch.randn(5, generator=generator),
    }
    inputs = torch.randn(24, 6, generator=generator)
    targets = torch.randn(24, 3, generator=generator)
    return weights, inputs, targets


def train_adamw_hidden(
    optimizer_cls: type[torch.optim.Optimizer],
    seed: int,
    steps: int,
    groups: list[dict[str, Any]],
    hyper: dict[str, Any],
    lr_factors: list[float] | None = None,
) -> dict[str, Tensor]:
    """Train with ``optimizer_cls``; returns the final weights.

    ``groups``: parameter groups as ``{"params": [names], **overrides}``. ``lr_factors``: before
    step ``t`` every group's learning rate is set to its initial value times ``lr_factors[t]``,
    as a training loop with a schedule does.
    """
    weights, inputs, targets = adamw_problem(seed)
    params = {name: nn.Parameter(value) for name, value in weights.items()}
    param_groups = [{**group, "params": [params[name] for name in group["params"]]} for group in groups]
    optimizer = optimizer_cls(param_groups, **hyper)
    initial_lrs = [group["lr"] for group in optimizer.param_groups]
    for step in range(steps):
        if lr_factors is not None:
            for group, lr in zip(optimizer.param_groups, initial_lrs):
                group["lr"] = lr * lr_factors[step]
        hidden = torch.tanh(inputs @ params["w1"].T + params["b1"])
        loss = ((hidden @ params["w2"].T - targets) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return {name: p.detach().clone() for name, p in params.items()}


def adamw_trajectory_hidden(
    adapters: ModuleType,
    seed: int,
    steps: int,
    groups: list[dict[str, Any]],
    hyper: dict[str, Any],
    lr_factors: list[float] | None = None,
) -> dict[str, Tensor]:
    """:func:`train_adamw_hidden` with the student's AdamW."""
    return train_adamw_hidden(adapters.get_adamw_cls(), seed, steps, groups, hyper, lr_factors)


# ---- get_batch ----


def get_batch_hidden(
    adapters: ModuleType,
    seed: int,
    tokens: np.ndarray,
    batch_size: int,
    context_length: int,
    num_batches: int,
    memmap: bool,
) -> dict[str, Any]:
    """``num_batches`` batches over ``tokens`` (memory-mapped from a private file with ``memmap``), stacked."""
    torch.manual_seed(seed)
    np.random.seed(seed)
    with tempfile.TemporaryDirectory() as folder:
        dataset = tokens
        if memmap:
            path = Path(folder) / "tokens.bin"
            tokens.tofile(path)
            dataset = np.memmap(path, dtype=tokens.dtype, mode="r")
        batches = [adapters.run_get_batch(dataset, batch_size, context_length, "cpu") for _ in range(num_batches)]
        del dataset  # release the memmap before its folder goes
    return {
        "x": torch.stack([x for x, _ in batches]),
        "y": torch.stack([y for _, y in batches]),
        "dtypes": sorted({str(t.dtype) for batch in batches for t in batch}),
        "devices": sorted({str(t.device) for batch in batches for t in batch}),
    }


# ---- checkpointing ----


def checkpoint_hidden_problem(seed: int, optimizer_kind: str) -> tuple[nn.Module, torch.optim.Optimizer, list[tuple[Tensor, Tensor]]]:
    """A network with buffers (batch norm statistics), an optimizer with state, ten seeded batches.

    ``optimizer_kind``: "sgd" (momentum, Nesterov, weight decay) or "adamw" (two parameter
    groups with their own learning rates and decay).
    """
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(5, 10), nn.BatchNorm1d(10), nn.Tanh(), nn.Linear(10, 2))
    if optimizer_kind == "sgd":
        optimizer: torch.optim.Optimizer = torch.optim.SGD(
            model.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3
        )
    else:
        matrices = [p for p in model.parameters() if p.dim() >= 2]
        vectors = [p for p in model.parameters() if p.dim() < 2]
        optimizer = torch.optim.AdamW(
            [{"params": matrices}, {"params": vectors, "weight_decay": 0.0, "lr": 3e-3}], lr=1e-2, weight_decay=0.2
        )
    generator = torch.Generator().manual_seed(seed + 1)
    batches = [(torch.randn(12, 5, generator=generator), torch.randn(12, 2, generator=generator)) for _ in range(10)]
    return model, optimizer, batches


def run_checkpoint_steps(
    model: nn.Module, optimizer: torch.optim.Optimizer, batches: list[tuple[Tensor, Tensor]], first_step: int
) -> None:
    """Train on ``batches``; the learning rates decay with the step, as under a schedule."""
    initial = [group.setdefault("initial_lr", group["lr"]) for group in optimizer.param_groups]
    for step, (inputs, targets) in enumerate(batches, start=first_step):
        for group, lr in zip(optimizer.param_groups, initial):
            group["lr"] = lr / (1 + step)
        optimizer.zero_grad()
        ((model(inputs) - targets) ** 2).mean().backward()
        optimizer.step()


def checkpoint_resume_hidden(
    adapters: ModuleType, seed: int, optimizer_kind: str, save_at: int, iteration: int, via: str
) -> dict[str, Any]:
    """Train ``save_at`` steps, save; load into a fresh model and optimizer, train the rest.

    ``via``: "str" (a file name as a string), "path" (a ``Path``, saved to twice: first an
    older state, then the current one, which must win) or "file" (a binary file object).
    """
    model, optimizer, batches = checkpoint_hidden_problem(seed, optimizer_kind)
    run_checkpoint_steps(model, optimizer, batches[:save_at], 0)
    fresh_model, fresh_optimizer, _ = checkpoint_hidden_problem(seed + 50, optimizer_kind)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "run" / "ckpt.pt"
        path.parent.mkdir()
        if via == "file":
            target: Any = io.BytesIO()
        else:
            target = path if via == "path" else str(path)
            if via == "path":  # an older checkpoint at the same place, to be overwritten
                old_model, old_optimizer, _ = checkpoint_hidden_problem(seed + 7, optimizer_kind)
                adapters.run_save_checkpoint(old_model, old_optimizer, iteration - 1, target)
        adapters.run_save_checkpoint(model, optimizer, iteration, target)
        if via == "file":
            target.seek(0)
        loaded = adapters.run_load_checkpoint(target, fresh_model, fresh_optimizer)
    run_checkpoint_steps(fresh_model, fresh_optimizer, batches[save_at:], save_at)
    return {
        "iteration": int(loaded),
        "state": {k: v.detach().clone() for k, v in fresh_model.state_dict().items()},
        "lrs": [float(group["lr"]) for group in fresh_optimizer.param_groups],
    }
