"""Adapters: the glue between the systems tests and your package.

Each function returns a class or an object from ``lmc_systems``, or calls one of its hooks. Fill in
the bodies marked below; the logic belongs in your package.
"""

from __future__ import annotations

from typing import Any

import torch

# ---- FlashAttention-2 adapters ----

from lmc_systems.flash_attention import FlashAttention2  # noqa: E402
from lmc_systems.flash_triton import FlashAttention2Triton  # noqa: E402


def get_flashattention_autograd_function_pytorch() -> type[torch.autograd.Function]:
    """A ``torch.autograd.Function`` class: ``apply(Q, K, V, is_causal=False)``, Q, K, V (batch, seq, d).

    Tiled forward in plain PyTorch that saves only O and L (logsumexp of the scores, (batch, seq_q));
    backward by recomputation with D = rowsum(dO * O).
    """
    # BEGIN SOLUTION problem=flash_pytorch
    return FlashAttention2
    # END SOLUTION


def get_flashattention_autograd_function_triton() -> type[torch.autograd.Function]:
    """The same contract, with the forward and backward as Triton kernels."""
    # BEGIN SOLUTION problem=flash_triton
    return FlashAttention2Triton
    # END SOLUTION


# ---- data-parallel adapters ----

from lmc_systems.ddp import DDPBucketed, DDPIndividualParameters  # noqa: E402
from lmc_systems.fsdp import FSDP  # noqa: E402
from lmc_systems.sharded_optimizer import ShardedOptimizer  # noqa: E402


def get_ddp_individual_parameters(module: torch.nn.Module) -> torch.nn.Module:
    """Broadcast rank 0's parameters; all-reduce (average) each gradient as soon as it is ready."""
    # BEGIN SOLUTION problem=ddp_individual
    return DDPIndividualParameters(module)
    # END SOLUTION


def ddp_individual_parameters_on_after_backward(ddp_model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
    """Wait for the gradient communication still in flight."""
    # BEGIN SOLUTION problem=ddp_individual
    ddp_model.finish_gradient_synchronization()
    # END SOLUTION


def get_ddp_bucketed(module: torch.nn.Module, bucket_size_mb: float) -> torch.nn.Module:
    """Gradients grouped into buckets of at most ``bucket_size_mb``, each all-reduced when complete."""
    # BEGIN SOLUTION problem=ddp_bucketed
    return DDPBucketed(module, bucket_size_mb)
    # END SOLUTION


def ddp_bucketed_on_after_backward(ddp_model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
    """Wait for every bucket."""
    # BEGIN SOLUTION problem=ddp_bucketed
    ddp_model.finish_gradient_synchronization()
    # END SOLUTION


def ddp_bucketed_on_train_batch_start(ddp_model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
    """Reset per-step state before a new batch."""
    # BEGIN SOLUTION problem=ddp_bucketed
    ddp_model.start_step()
    # END SOLUTION


def get_ddp(module: torch.nn.Module) -> torch.nn.Module:
    """The overlapping DDP (same contract as ``get_ddp_individual_parameters``)."""
    # BEGIN SOLUTION problem=ddp_individual
    return DDPIndividualParameters(module)
    # END SOLUTION


def ddp_on_after_backward(ddp_model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
    """Wait for gradient synchronization."""
    # BEGIN SOLUTION problem=ddp_individual
    ddp_model.finish_gradient_synchronization()
    # END SOLUTION


def get_fsdp(module: torch.nn.Module, compute_dtype: torch.dtype | None = None) -> torch.nn.Module:
    """Shard every Linear and Embedding weight across ranks; replicate the rest."""
    # BEGIN SOLUTION problem=fsdp
    return FSDP(module, compute_dtype)
    # END SOLUTION


def fsdp_on_after_backward(fsdp_model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
    """Wait for the gradient reductions."""
    # BEGIN SOLUTION problem=fsdp
    fsdp_model.finish_gradient_synchronization()
    # END SOLUTION


def fsdp_gather_full_params(fsdp_model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Full (unsharded) tensors keyed by the original parameter names."""
    # BEGIN SOLUTION problem=fsdp
    return fsdp_model.gather_full_params()
    # END SOLUTION


def get_sharded_optimizer(params: Any, optimizer_cls: type[torch.optim.Optimizer], **kwargs: Any) -> torch.optim.Optimizer:
    """ZeRO-1: each rank steps ~1/world of the parameters with ``optimizer_cls(**kwargs)``, then broadcasts."""
    # BEGIN SOLUTION problem=sharded_optimizer
    return ShardedOptimizer(params, optimizer_cls, **kwargs)
    # END SOLUTION
