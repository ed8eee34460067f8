"""The sharded optimizer (ZeRO-1) on two gloo ranks against torch.optim.AdamW on one process.

Every rank computes the gradient of the whole batch, so sharding must not change the trajectory:
the weights after a few steps equal plain AdamW's. The inner optimizers the sharded one builds
(an AdamW subclass that records its instances) show which parameters each rank owns: a balanced
split, each parameter owned by exactly one rank, and optimizer state only for owned parameters.
"""

from __future__ import annotations

import pytest

from tests import producers_distributed as pd

pytestmark = pytest.mark.serial

GROUPS = [
    {"params": ["embed.weight", "fc1.weight", "fc1.bias"], "lr": 0.01},
    {"params": ["ln.weight", "ln.bias", "fc2.weight", "fc3.weight", "head.weight"], "weight_decay": 0.0},
]
NUMEL = {
    "embed.weight": 99,
    "fc1.weight": 135,
    "fc1.bias": 15,
    "ln.weight": 15,
    "ln.bias": 15,
    "fc2.weight": 225,
    "fc3.weight": 225,
    "head.weight": 105,
}


@pytest.mark.problem("sharded_optimizer")
def test_sharded_optimizer_matches_adamw(student):
    ranks = student.run(pd.sharded_optimizer_training, seed=0, steps=4, groups=GROUPS)
    expected = pd.train_adamw_single_process(seed=0, steps=4, groups=GROUPS)
    for rank, result in enumerate(ranks):
        assert result["is_optimizer"], "get_sharded_optimizer must return a torch.optim.Optimizer"
        assert result["group_sizes"] == [3, 5], (
            f"rank {rank}: param_groups must list every parameter, got sizes {result['group_sizes']}"
        )
        pd.assert_weights_close(result["weights"], expected, f"rank {rank}", rtol=1e-5, atol=1e-6)


@pytest.mark.problem("sharded_optimizer")
def test_sharded_optimizer_keeps_the_state_of_its_shard_only(student):
    ranks = student.run(pd.sharded_optimizer_training, seed=1, steps=2, groups=GROUPS)
    owned = [set(result["owned"]) for result in ranks]
    assert owned[0].isdisjoint(owned[1]), f"parameters owned by both ranks: {sorted(owned[0] & owned[1])}"
    assert owned[0] | owned[1] == set(NUMEL), f"parameters no rank owns: {sorted(set(NUMEL) - owned[0] - owned[1])}"
    loads = [sum(NUMEL[name] for name in names) for names in owned]
    assert max(loads) - min(loads) <= max(NUMEL.values()), f"unbalanced shards: {loads} elements per rank"
    for rank, result in enumerate(ranks):
        assert set(result["with_state"]) == owned[rank], (
            f"rank {rank}: optimizer state must exist for its own parameters only"
        )
