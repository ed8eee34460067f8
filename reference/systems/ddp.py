"""Data-parallel training: every rank holds the whole model and averages its gradients with the others.

Each rank runs forward and backward on its own slice of the batch. Averaging the gradients over
the ranks before the optimizer step gives every rank the gradient of the whole batch, so the
replicas, started equal, stay equal. Both wrappers overlap that communication with the backward
pass: a gradient is sent the moment autograd has finished accumulating it, while the layers
closer to the input are still being differentiated.

- :class:`DDPIndividualParameters`: one asynchronous all-reduce per parameter.
- :class:`DDPBucketed`: gradients packed into buckets of at most ``bucket_size_mb``, one
  all-reduce per bucket: fewer, larger messages pay the per-call latency less often.

On every rank::

    model = DDPBucketed(model, bucket_size_mb=25)
    for x, y in batches:                        # this rank's slice of each batch
        model.start_step()
        loss_fn(model(x), y).backward()         # hooks start the all-reduces during backward
        model.finish_gradient_synchronization() # wait for them: grads now hold the averages
        optimizer.step()
        optimizer.zero_grad()

One backward pass per step: a second one would send the gradients again.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors


def broadcast_from_rank_zero(module: nn.Module) -> None:
    """Overwrite every parameter and buffer of ``module`` with rank 0's, so all replicas start equal."""
    # BEGIN SOLUTION problem=ddp_individual
    with torch.no_grad():
        for tensor in [*module.parameters(), *module.buffers()]:
            dist.broadcast(tensor, src=0)
    # END SOLUTION


def all_reduce_mean_async(tensor: Tensor) -> dist.Work:
    """Start replacing ``tensor`` in place by its mean over ranks; wait on the handle before reading it."""
    # BEGIN SOLUTION problem=ddp_individual
    # Divide, then sum: ReduceOp.AVG is missing from gloo in older torch releases.
    tensor.div_(dist.get_world_size())
    return dist.all_reduce(tensor, op=dist.ReduceOp.SUM, async_op=True)
    # END SOLUTION


class DDPIndividualParameters(nn.Module):
    """Wraps ``module`` (exposed as ``.module``; no parameters of its own) for data-parallel training.

    Construction broadcasts rank 0's weights. Each trainable parameter gets a hook that autograd
    calls once its gradient is fully accumulated (after every use, so a parameter shared by two
    layers is sent once, with both contributions) and that starts the gradient's all-reduce.
    """

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module
        # BEGIN SOLUTION problem=ddp_individual
        self._in_flight: list[dist.Work] = []
        broadcast_from_rank_zero(module)
        for param in module.parameters():  # each shared parameter once
            if param.requires_grad:
                param.register_post_accumulate_grad_hook(self._send_gradient)
        # END SOLUTION

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        # BEGIN SOLUTION problem=ddp_individual
        return self.module(*args, **kwargs)
        # END SOLUTION

    def _send_gradient(self, param: Tensor) -> None:
        # BEGIN SOLUTION problem=ddp_individual
        self._in_flight.append(all_reduce_mean_async(param.grad))
        # END SOLUTION

    def finish_gradient_synchronization(self) -> None:
        """Wait until every gradient of the last backward pass holds its mean over ranks."""
        # BEGIN SOLUTION problem=ddp_individual
        for work in self._in_flight:
            work.wait()
        self._in_flight.clear()
        # END SOLUTION


@dataclass(eq=False)
class _Bucket:
    """Parameters whose gradients travel in one all-reduce, and that all-reduce while in flight."""

    params: list[nn.Parameter]
    ready: int = 0  # gradients of this backward pass accumulated so far
    grads: list[Tensor] = field(default_factory=list)  # the gradients packed into `flat`
    flat: Tensor | None = None  # (sum of their numels,) being averaged
    work: dist.Work | None = None


class DDPBucketed(nn.Module):
    """Like :class:`DDPIndividualParameters`, with gradients sent in buckets of at most ``bucket_size_mb`` MiB.

    Buckets are filled in reverse registration order, which is roughly the order in which
    backward produces the gradients (the output layer's first); a parameter larger than a
    bucket gets one of its own. When a bucket's last gradient is ready, the bucket's gradients
    are copied into one flat tensor and its all-reduce starts;
    :meth:`finish_gradient_synchronization` waits and copies the averages back.
    """

    def __init__(self, module: nn.Module, bucket_size_mb: float) -> None:
        super().__init__()
        self.module = module
        # BEGIN SOLUTION problem=ddp_bucketed
        if bucket_size_mb <= 0:
            raise ValueError(f"bucket_size_mb must be positive, got {bucket_size_mb}")
        broadcast_from_rank_zero(module)
        trainable = [p for p in module.parameters() if p.requires_grad]
        self._buckets = _fill_buckets(reversed(trainable), max_bytes=int(bucket_size_mb * 2**20))
        for bucket in self._buckets:
            for param in bucket.params:
                param.register_post_accumulate_grad_hook(functools.partial(self._gradient_ready, bucket))
        # END SOLUTION

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        # BEGIN SOLUTION problem=ddp_bucketed
        return self.module(*args, **kwargs)
        # END SOLUTION

    def start_step(self) -> None:
        """Forget the last step's bucket state; call before each forward pass."""
        # BEGIN SOLUTION problem=ddp_bucketed
        for bucket in self._buckets:
            bucket.ready, bucket.grads, bucket.flat, bucket.work = 0, [], None, None
        # END SOLUTION

    def _gradient_ready(self, bucket: _Bucket, param: Tensor) -> None:
        # BEGIN SOLUTION problem=ddp_bucketed
        bucket.ready += 1
        if bucket.ready == len(bucket.params):
            self._send(bucket)
        # END SOLUTION

    def _send(self, bucket: _Bucket) -> None:
        """Pack the bucket's gradients into one flat tensor and start averaging it."""
        # BEGIN SOLUTION problem=ddp_bucketed
        bucket.grads = [p.grad for p in bucket.params if p.grad is not None]
        bucket.flat = _flatten_dense_tensors(bucket.grads)
        bucket.work = all_reduce_mean_async(bucket.flat)
        # END SOLUTION

    def finish_gradient_synchronization(self) -> None:
        """Wait for every bucket and write the averaged gradients back into ``param.grad``."""
        # BEGIN SOLUTION problem=ddp_bucketed
        for bucket in self._buckets:
            if bucket.work is None and bucket.ready:
                # Some parameter got no gradient this step (the same on every rank, as the graph is
                # the same): send the gradients there are.
                self._send(bucket)
            if bucket.work is not None:
                bucket.work.wait()
                for grad, mean in zip(bucket.grads, _unflatten_dense_tensors(bucket.flat, bucket.grads)):
                    grad.copy_(mean)
        self.start_step()  # ready for the next step even if the caller skips start_step
        # END SOLUTION


def _fill_buckets(params: Iterable[nn.Parameter], max_bytes: int) -> list[_Bucket]:
    """Consecutive runs of ``params`` holding at most ``max_bytes`` each (one dtype per bucket)."""
    # BEGIN SOLUTION problem=ddp_bucketed
    buckets: list[_Bucket] = []
    size = 0
    for param in params:
        nbytes = param.numel() * param.element_size()
        if not buckets or size + nbytes > max_bytes or param.dtype != buckets[-1].params[0].dtype:
            buckets.append(_Bucket([]))
            size = 0
        buckets[-1].params.append(param)
        size += nbytes
    return buckets
    # END SOLUTION
