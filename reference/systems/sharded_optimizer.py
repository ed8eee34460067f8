"""Optimizer state sharding (ZeRO stage 1): each rank keeps the optimizer state of ~1/world of the parameters.

In data-parallel training every rank computes the same averaged gradients and would take the
same optimizer step. AdamW's two moments cost twice the parameters' memory on every rank; here
each parameter has one *owner* rank that alone keeps its state and updates it, then sends the
new values to the others. Optimizer memory shrinks by the world size; the price is one
broadcast per parameter and step.

Parameters are dealt out greedily, largest first, each to the rank that owns the fewest
elements so far: the same deterministic plan on every rank, balanced to within one parameter.

On every rank, after the gradients are averaged (DDP)::

    optimizer = ShardedOptimizer(model.parameters(), torch.optim.AdamW, lr=1e-3)
    ...
    optimizer.step()          # steps this rank's parameters, then broadcasts every parameter
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor


class ShardedOptimizer(torch.optim.Optimizer):
    """Wraps ``optimizer_cls(owned parameters, **kwargs)``; ``param_groups`` list every parameter.

    Hyperparameters are read from this object's ``param_groups`` at each step, so schedulers
    that write ``group["lr"]`` work as with any optimizer. ``state`` is the inner optimizer's:
    only the parameters this rank owns have an entry.
    """

    def __init__(self, params: Iterable[Any], optimizer_cls: type[torch.optim.Optimizer], **kwargs: Any) -> None:
        # BEGIN SOLUTION problem=sharded_optimizer
        self._optimizer_cls, self._kwargs = optimizer_cls, kwargs
        self._rank, self._world_size = dist.get_rank(), dist.get_world_size()
        self._load = [0] * self._world_size  # elements owned by each rank so far
        self._owner: dict[Tensor, int] = {}
        self._inner: torch.optim.Optimizer | None = None  # created with the first parameters this rank owns
        self._inner_groups: list[dict[str, Any] | None] = []  # per group of ours: its owned part, if any
        super().__init__(params, kwargs)  # calls add_param_group for each group
        # END SOLUTION

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group (as any optimizer does) and deal its parameters out to owners."""
        # BEGIN SOLUTION problem=sharded_optimizer
        super().add_param_group(param_group)  # checks the group and fills in the defaults
        group = self.param_groups[-1]
        for param in sorted(group["params"], key=Tensor.numel, reverse=True):
            owner = min(range(self._world_size), key=self._load.__getitem__)
            self._owner[param] = owner
            self._load[owner] += param.numel()
        owned = [p for p in group["params"] if self._owner[p] == self._rank]
        if not owned:
            self._inner_groups.append(None)
            return
        inner_group = {**group, "params": owned}
        if self._inner is None:
            self._inner = self._optimizer_cls([inner_group], **self._kwargs)
            self.state = self._inner.state
        else:
            self._inner.add_param_group(inner_group)
        self._inner_groups.append(self._inner.param_groups[-1])
        # END SOLUTION

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """Step the parameters this rank owns, then broadcast each parameter from its owner."""
        # BEGIN SOLUTION problem=sharded_optimizer
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group, inner_group in zip(self.param_groups, self._inner_groups):
            if inner_group is not None:  # hyperparameters may have changed since the last step
                inner_group.update({k: v for k, v in group.items() if k != "params"})
        if self._inner is not None:
            self._inner.step()
        handles = [
            dist.broadcast(param, src=self._owner[param], async_op=True)
            for group in self.param_groups
            for param in group["params"]
        ]
        for handle in handles:
            handle.wait()
        return loss
        # END SOLUTION

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state saved by this rank's :meth:`state_dict` (each rank saves and loads its own)."""
        # BEGIN SOLUTION problem=sharded_optimizer
        super().load_state_dict(state_dict)
        if self._inner is not None:
            self._inner.state = self.state  # the base class replaced `state`: the inner optimizer reads the new one
        # END SOLUTION
