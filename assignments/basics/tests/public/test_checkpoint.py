"""A checkpoint round trip: training resumed from it continues exactly as if never stopped."""

from __future__ import annotations

import pytest
import torch

from tests import producers


@pytest.mark.problem("checkpointing")
@pytest.mark.parametrize("via", ["path", "file"])
def test_checkpoint_round_trip(student, via):
    result = student.run(producers.checkpoint_round_trip, seed=0, save_at=5, via=via)
    assert result["iteration"] == 5
    model, optimizer, batches = producers.checkpoint_problem(seed=0)
    producers.train_steps(model, optimizer, batches)  # the same eight steps, uninterrupted
    # Resuming without AdamW's moment estimates would restart it cold and land elsewhere.
    for name, weights in model.state_dict().items():
        torch.testing.assert_close(result["weights"][name], weights, msg=name)
