"""Producers of the hidden distributed tests that the public producers cannot express.

FSDP with evaluation passes (forward under ``torch.no_grad()``, no backward) before the first
training step and after every one: the first forward the wrapper sees builds no graph, and
gathered or prefetched weights must never outlive the step that changes the shards. As in
``tests/producers_distributed.py``, the scenario runs on the ranks and only plain data comes
out; :func:`train_single_process_with_evals` computes what it must equal on the trusted side.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

import torch
from torch import Tensor

from tests import producers_distributed as pd
from tests.distributed import run_on_ranks


def eval_batch(kind: str, seed: int) -> Tensor:
    """Inputs every rank evaluates (the same on all ranks)."""
    ids, _ = pd.batch(kind, seed + 100, 0, 2)
    return ids


def fsdp_eval_rank(rank: int, world_size: int, adapters_name: str, kind: str, seed: int, steps: int) -> list[Tensor]:
    """Logits of the evaluation batch before training and after each of ``steps`` FSDP steps."""
    adapters = importlib.import_module(adapters_name)
    wrapped = adapters.get_fsdp(pd.build_model(kind, seed), None)
    optimizer = torch.optim.SGD([p for p in wrapped.parameters() if p.requires_grad], **pd.SGD)
    evals = []
    for step in range(steps + 1):
        with torch.no_grad():
            evals.append(wrapped(eval_batch(kind, seed)).float().clone())
        if step == steps:
            break
        ids, targets = pd.batch(kind, seed, step, pd.ROWS_PER_RANK * world_size)
        rows = pd.rank_rows(rank, world_size)
        optimizer.zero_grad(set_to_none=True)
        pd.loss_of(wrapped(ids[rows]), targets[rows]).backward()
        adapters.fsdp_on_after_backward(wrapped, optimizer)
        optimizer.step()
    return evals


def fsdp_train_and_eval(adapters: ModuleType, kind: str, seed: int, steps: int, world_size: int = 2) -> list[Any]:
    """Per rank: the list of evaluation logits (``steps + 1`` tensors)."""
    return run_on_ranks(fsdp_eval_rank, adapters.__name__, kind, seed, steps, world_size=world_size)


def train_single_process_with_evals(kind: str, seed: int, steps: int, world_size: int = 2) -> list[Tensor]:
    """The evaluation logits of single-process SGD on the whole batch, before and after each step."""
    weights, forward = pd.single_process_model(kind, seed)
    optimizer = torch.optim.SGD([w for w in weights.values() if w.requires_grad], **pd.SGD)
    evals = []
    for step in range(steps + 1):
        with torch.no_grad():
            evals.append(forward(eval_batch(kind, seed)).float().clone())
        if step == steps:
            break
        ids, targets = pd.batch(kind, seed, step, pd.ROWS_PER_RANK * world_size)
        optimizer.zero_grad()
        pd.loss_of(forward(ids), targets).backward()
        optimizer.step()
    return evals
