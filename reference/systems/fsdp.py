"""Fully sharded data parallelism (ZeRO-3): each rank stores a 1/world slice of every large weight.

Data parallelism keeps a whole replica of the weights, their gradients and the optimizer state
on every rank. FSDP keeps only a *shard* of each Linear and Embedding weight per rank, so all
three shrink with the number of ranks; a layer's full weight exists only while it is needed:

- forward: a pre-forward hook all-gathers the layer's weight from the shards (the next layer's
  gather was started earlier: prefetch, recorded from the first forward pass's order); the
  layer runs; a post-forward hook drops the full weight;
- backward: autograd needs the weight again (``y = x Wᵀ`` saves W to compute ``∂L/∂x``). A
  saved-tensor hook stores a note instead of the weight and gathers it anew when backward asks;
- gradients: the full weight's gradient is reduce-scattered: each rank receives the sum over
  ranks of its own slice only, divided by the world size the gradient of its shard.

Other parameters (norm gains, biases) are small: replicated, their gradients averaged with an
all-reduce as in DDP. With ``compute_dtype`` (say bf16) the shards stay fp32 master weights; the
gathered weights, the replicated parameters and floating inputs are cast for the computation,
and gradients are reduced and stored in fp32.

A weight of n elements is flattened, padded with zeros to a multiple of the world size and cut
into equal pieces: rank r holds elements [r·k, (r+1)·k), k = ceil(n / world). The module keeps
its structure and names: its ``named_parameters()`` yield the original names, holding the 1-D
shards of sharded weights. Modules run under hooks; nothing of the model's code changes.

On every rank::

    model = FSDP(model)                         # before building the optimizer: it steps shards
    optimizer = AdamW(model.parameters())
    for x, y in batches:                        # this rank's slice of each batch
        loss_fn(model(x), y).backward()
        model.finish_gradient_synchronization()
        optimizer.step()
        optimizer.zero_grad()
    weights = model.gather_full_params()        # e.g. to save a checkpoint
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from ._basics import basics

#: Modules whose ``weight`` is sharded; every other parameter is replicated.
SHARDED_TYPES = (nn.Linear, nn.Embedding, basics.Linear, basics.Embedding)

# Newer torch renamed the collectives on flat tensors and warns on the old names.
_all_gather = getattr(dist, "all_gather_single", None) or dist.all_gather_into_tensor
_reduce_scatter = getattr(dist, "reduce_scatter_single", None) or dist.reduce_scatter_tensor


@dataclass(eq=False)
class _Shard:
    """One sharded weight: this rank's slice, and what it takes to rebuild the whole."""

    param: nn.Parameter  # (k,) this rank's slice: the master weights the optimizer steps
    shape: torch.Size  # of the full weight
    numel: int  # of the full weight; k · world minus the padding
    regathered: Tensor | None = None  # the full weight gathered again for backward, until its gradient is sent
    pending: list[tuple[dist.Work, Tensor]] = field(default_factory=list)  # gradient reduce-scatters in flight


class _ShardLink(torch.autograd.Function):
    """Identity on a gathered weight; its backward hands the weight's gradient to a callback.

    The gather is communication, not an autograd operation: this link is what connects the full
    weight to the shard parameter in the graph, so backward reaches the shard.
    """

    @staticmethod
    def forward(ctx: Any, shard: Tensor, full: Tensor, on_gradient: Callable[[Tensor], None]) -> Tensor:
        # BEGIN SOLUTION problem=fsdp
        ctx.on_gradient = on_gradient
        return full
        # END SOLUTION

    @staticmethod
    def backward(ctx: Any, grad_full: Tensor) -> tuple[None, None, None]:
        # BEGIN SOLUTION problem=fsdp
        ctx.on_gradient(grad_full)  # reduce-scattered asynchronously; the result lands in shard.grad
        return None, None, None
        # END SOLUTION


class FSDP(nn.Module):
    """Shards the Linear and Embedding weights of ``module`` (exposed as ``.module``) across ranks.

    Every rank starts from rank 0's weights. ``compute_dtype`` (e.g. ``torch.bfloat16``): run the
    layers in that dtype, keep fp32 master shards and fp32 gradients.
    """

    def __init__(self, module: nn.Module, compute_dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self.module = module
        self.compute_dtype = compute_dtype
        # BEGIN SOLUTION problem=fsdp
        self.world_size = dist.get_world_size()
        self._shards: dict[nn.Parameter, _Shard] = {}  # keyed by the shard parameter
        self._live: dict[int, _Shard] = {}  # storage address of each gathered full weight -> its shard
        self._order: list[_Shard] = []  # gathers of the first forward pass, in order: the prefetch plan
        self._position = 0  # gathers done in the current forward pass
        self._prefetched: dict[_Shard, tuple[Tensor, dist.Work]] = {}
        self._replicated_in_flight: list[dist.Work] = []
        self._swapped: dict[nn.Module, list[tuple[str, nn.Parameter]]] = {}  # running modules: their parameters
        self._recording = True  # the first forward pass records the order of gathers
        with torch.no_grad():
            for tensor in [*module.parameters(), *module.buffers()]:
                dist.broadcast(tensor, src=0)
        self._shard_weights()
        for submodule in module.modules():
            if self._swapped_params(submodule):
                submodule.register_forward_pre_hook(self._before_forward)
                submodule.register_forward_hook(self._after_forward, always_call=True)
        for param in module.parameters():
            if param not in self._shards and param.requires_grad:
                param.register_post_accumulate_grad_hook(self._send_replicated_gradient)
        # END SOLUTION

    # ---- sharding ----

    def _shard_weights(self) -> None:
        """Replace each Linear and Embedding weight by this rank's shard (a weight shared by two layers: one shard)."""
        # BEGIN SOLUTION problem=fsdp
        shard_of: dict[nn.Parameter, nn.Parameter] = {}
        for submodule in self.module.modules():
            if isinstance(submodule, SHARDED_TYPES):
                weight = submodule.weight
                if weight not in shard_of:
                    shard = self._cut(weight)
                    shard_of[weight] = shard.param
                    self._shards[shard.param] = shard
                submodule.weight = shard_of[weight]
        # END SOLUTION

    def _cut(self, weight: nn.Parameter) -> _Shard:
        """This rank's slice of ``weight``, flattened, zero-padded to k · world elements at the end."""
        # BEGIN SOLUTION problem=fsdp
        k = -(-weight.numel() // self.world_size)  # ceil
        flat = torch.zeros(k * self.world_size, dtype=weight.dtype, device=weight.device)
        flat[: weight.numel()] = weight.detach().flatten()
        rank = dist.get_rank()
        piece = flat[rank * k : (rank + 1) * k].clone()  # a copy: the rest of `flat` is freed
        return _Shard(nn.Parameter(piece, requires_grad=weight.requires_grad), weight.shape, weight.numel())
        # END SOLUTION

    def _swapped_params(self, module: nn.Module) -> list[str]:
        """Names of ``module``'s own parameters that its forward must see replaced (gathered or cast)."""
        # BEGIN SOLUTION problem=fsdp
        return [
            name
            for name, param in module.named_parameters(recurse=False)
            if param in self._shards or (self.compute_dtype is not None and param.is_floating_point())
        ]
        # END SOLUTION

    # ---- gathering ----

    def _start_gather(self, shard: _Shard) -> tuple[Tensor, dist.Work]:
        """Start all-gathering ``shard``'s weight (in the compute dtype: half the bytes in bf16).

        Returns the flat padded buffer (k · world,) being filled and the handle to wait on.
        """
        # BEGIN SOLUTION problem=fsdp
        local = shard.param.detach().to(self.compute_dtype or shard.param.dtype)
        buffer = torch.empty(local.numel() * self.world_size, dtype=local.dtype, device=local.device)
        return buffer, _all_gather(buffer, local, async_op=True)
        # END SOLUTION

    def _gather(self, shard: _Shard) -> Tensor:
        """The full weight for the forward pass; starts the prefetch of the next weight in the plan."""
        # BEGIN SOLUTION problem=fsdp
        buffer, work = self._prefetched.pop(shard, None) or self._start_gather(shard)
        if self._recording:
            self._order.append(shard)
        self._position += 1
        if not self._recording and self._position < len(self._order):
            upcoming = self._order[self._position]
            if upcoming not in self._prefetched:
                self._prefetched[upcoming] = self._start_gather(upcoming)
        work.wait()
        return buffer[: shard.numel].view(shard.shape)
        # END SOLUTION

    def _before_forward(self, module: nn.Module, args: Any) -> None:
        """Put full (gathered or cast) tensors in place of ``module``'s parameters for its forward."""
        # BEGIN SOLUTION problem=fsdp
        swapped = []
        for name in self._swapped_params(module):
            param = module._parameters[name]
            shard = self._shards.get(param)
            if shard is None:  # replicated: cast for the computation, the gradient comes back in fp32
                tensor = param.to(self.compute_dtype)
            else:
                full = self._gather(shard)
                self._live[full.untyped_storage().data_ptr()] = shard
                tensor = _ShardLink.apply(param, full, functools.partial(self._send_shard_gradient, shard))
            # Straight into `_parameters`: `module.weight` reads it there and the name keeps its place.
            module._parameters[name] = tensor
            swapped.append((name, param))
        self._swapped[module] = swapped
        # END SOLUTION

    def _after_forward(self, module: nn.Module, args: Any, output: Any) -> None:
        """Put the parameters back; the full weights are freed (backward gathers them anew)."""
        # BEGIN SOLUTION problem=fsdp
        for name, param in self._swapped.pop(module, []):
            if param in self._shards:
                self._live.pop(module._parameters[name].untyped_storage().data_ptr(), None)
            module._parameters[name] = param
        # END SOLUTION

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """The module's forward, its saved full weights turned into notes (see :meth:`_pack`)."""
        # BEGIN SOLUTION problem=fsdp
        if self.compute_dtype is not None:
            args = tuple(self._cast(a) for a in args)
            kwargs = {k: self._cast(v) for k, v in kwargs.items()}
        self._recording, self._position = not self._order, 0
        try:
            with torch.autograd.graph.saved_tensors_hooks(self._pack, self._unpack):
                return self.module(*args, **kwargs)
        finally:
            # A prefetched weight no layer used this time must not survive the optimizer step.
            for _, work in self._prefetched.values():
                work.wait()
            self._prefetched.clear()
        # END SOLUTION

    def _cast(self, value: Any) -> Any:
        # BEGIN SOLUTION problem=fsdp
        if isinstance(value, Tensor) and value.is_floating_point():
            return value.to(self.compute_dtype)
        return value
        # END SOLUTION

    # ---- backward ----

    def _pack(self, tensor: Tensor) -> Any:
        """What autograd keeps of a tensor it saves: a full weight (or a view of one) becomes a note."""
        # BEGIN SOLUTION problem=fsdp
        shard = self._live.get(tensor.untyped_storage().data_ptr())
        if shard is None:
            return tensor
        return shard, tensor.shape, tensor.stride(), tensor.storage_offset()
        # END SOLUTION

    def _unpack(self, packed: Any) -> Tensor:
        """A saved tensor back for backward; a note becomes the weight gathered anew (once per use of a layer)."""
        # BEGIN SOLUTION problem=fsdp
        if isinstance(packed, Tensor):
            return packed
        shard, shape, stride, offset = packed
        if shard.regathered is None:  # the first use in backward; later uses of the same layer share it
            shard.regathered, work = self._start_gather(shard)
            work.wait()
        return shard.regathered.as_strided(shape, stride, offset)  # same layout as the buffer it came from
        # END SOLUTION

    def _send_shard_gradient(self, shard: _Shard, grad_full: Tensor) -> None:
        """Start reduce-scattering a full weight's gradient (in fp32); this rank gets its slice's sum."""
        # BEGIN SOLUTION problem=fsdp
        shard.regathered = None  # every use of the weight in backward is done
        flat = torch.zeros(shard.param.numel() * self.world_size, dtype=torch.float32, device=grad_full.device)
        flat[: shard.numel] = grad_full.flatten()
        piece = torch.empty(shard.param.numel(), dtype=torch.float32, device=grad_full.device)
        shard.pending.append((_reduce_scatter(piece, flat, op=dist.ReduceOp.SUM, async_op=True), piece))
        # END SOLUTION

    def _send_replicated_gradient(self, param: Tensor) -> None:
        # BEGIN SOLUTION problem=fsdp
        param.grad.div_(self.world_size)  # divide, then sum: gloo lacked ReduceOp.AVG
        self._replicated_in_flight.append(dist.all_reduce(param.grad, op=dist.ReduceOp.SUM, async_op=True))
        # END SOLUTION

    def finish_gradient_synchronization(self) -> None:
        """Wait for every gradient reduction; shards' ``.grad`` then hold their slice of the mean gradient."""
        # BEGIN SOLUTION problem=fsdp
        for shard in self._shards.values():
            for work, piece in shard.pending:
                work.wait()
                piece.div_(self.world_size)
                grad = shard.param.grad
                shard.param.grad = piece if grad is None else grad + piece  # a shared weight sends twice
            shard.pending.clear()
        for work in self._replicated_in_flight:
            work.wait()
        self._replicated_in_flight.clear()
        # END SOLUTION

    # ---- checkpoints ----

    @torch.no_grad()
    def gather_full_params(self) -> dict[str, Tensor]:
        """Every parameter in full, fp32 for shards, keyed by its original name (a collective: call on all ranks)."""
        # BEGIN SOLUTION problem=fsdp
        full = {}
        for name, param in self.module.named_parameters():
            shard = self._shards.get(param)
            if shard is None:
                full[name] = param.detach().clone()
                continue
            buffer = torch.empty(param.numel() * self.world_size, dtype=param.dtype, device=param.device)
            _all_gather(buffer, param.detach())
            full[name] = buffer[: shard.numel].view(shard.shape).clone()
        return full
        # END SOLUTION
