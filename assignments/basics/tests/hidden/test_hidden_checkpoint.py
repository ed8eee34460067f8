"""Hidden tests of checkpointing: a model with buffers, optimizers with momentum and parameter
groups, saving before any step, overwriting a file, a string path, a large iteration."""

from __future__ import annotations

import pytest
import torch

from tests.hidden import producers_hidden as hidden


def uninterrupted(seed: int, optimizer_kind: str) -> tuple[dict[str, torch.Tensor], list[float]]:
    model, optimizer, batches = hidden.checkpoint_hidden_problem(seed, optimizer_kind)
    hidden.run_checkpoint_steps(model, optimizer, batches, 0)
    return model.state_dict(), [group["lr"] for group in optimizer.param_groups]


def check_resume(student, seed, optimizer_kind, save_at, iteration, via):
    result = student.run(
        hidden.checkpoint_resume_hidden, seed=seed, optimizer_kind=optimizer_kind, save_at=save_at, iteration=iteration,
        via=via,
    )  # fmt: skip
    assert result["iteration"] == iteration
    state, lrs = uninterrupted(seed, optimizer_kind)
    assert set(result["state"]) == set(state)
    for name, value in state.items():  # parameters and batch-norm buffers alike
        torch.testing.assert_close(result["state"][name], value, msg=name)
    assert result["lrs"] == pytest.approx(lrs)


@pytest.mark.problem("checkpointing")
def test_resume_sgd_momentum_with_buffers(student):
    # Momentum buffers and batch-norm running statistics must both travel.
    check_resume(student, seed=5, optimizer_kind="sgd", save_at=4, iteration=4, via="str")


@pytest.mark.problem("checkpointing")
def test_resume_adamw_param_groups_from_file_object(student):
    check_resume(student, seed=6, optimizer_kind="adamw", save_at=7, iteration=123_456_789, via="file")


@pytest.mark.problem("checkpointing")
def test_saving_again_overwrites(student):
    # An older checkpoint sits at the same path; the newer one must replace it.
    check_resume(student, seed=8, optimizer_kind="adamw", save_at=3, iteration=3_000, via="path")


@pytest.mark.problem("checkpointing")
def test_checkpoint_before_the_first_step(student):
    # Nothing trained yet (empty optimizer state): loading must still replace the fresh weights.
    check_resume(student, seed=9, optimizer_kind="sgd", save_at=0, iteration=0, via="file")


@pytest.mark.problem("checkpointing")
def test_checkpoint_after_the_last_step(student):
    check_resume(student, seed=10, optimizer_kind="adamw", save_at=10, iteration=10, via="str")
