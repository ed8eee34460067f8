"""Bad inputs to the alignment reference fail with one clear error, or have a defined, finite result."""

from __future__ import annotations

import math

import pytest
import torch

pytest.importorskip("transformers")

from assignments.alignment.tests import producers  # noqa: E402
from reference.alignment.advantages import compute_group_normalized_rewards, compute_rollout_rewards  # noqa: E402
from reference.alignment.grpo_step import grpo_microbatch_train_step, grpo_train_step  # noqa: E402
from reference.alignment.logprobs import compute_entropy, get_response_log_probs  # noqa: E402
from reference.alignment.pg_losses import aggregate_loss_across_microbatch, compute_policy_gradient_loss  # noqa: E402
from reference.alignment.rewards import r1_zero_reward_fn  # noqa: E402
from reference.alignment.tokenization import tokenize_prompt_and_output  # noqa: E402


def test_uneven_groups_name_the_sizes():
    with pytest.raises(ValueError, match="7 rewards cannot be split into groups of 4"):
        compute_group_normalized_rewards(torch.ones(7), group_size=4)


def test_std_of_a_single_response_is_refused_not_nan():
    with pytest.raises(ValueError, match="at least 2"):
        compute_group_normalized_rewards(torch.ones(3), group_size=1)
    advantages, _ = compute_group_normalized_rewards(torch.ones(3), group_size=1, advantage_normalizer="none")
    assert (advantages == 0).all()


def test_unknown_options_are_errors():
    with pytest.raises(ValueError, match="advantage_normalizer"):
        compute_group_normalized_rewards(torch.ones(4), 2, advantage_normalizer="max")
    with pytest.raises(ValueError, match="needs old_log_probs"):
        compute_policy_gradient_loss(torch.ones(2, 1), torch.zeros(2, 3), "grpo", cliprange=0.2)
    with pytest.raises(ValueError, match="loss_type"):
        grpo_microbatch_train_step(torch.zeros(2, 3), torch.ones(2, 3), 1, "ppo", advantages=torch.ones(2, 1))


def test_mismatched_rollouts_and_truths():
    with pytest.raises(ValueError, match="2 responses but 3 ground truths"):
        compute_rollout_rewards(r1_zero_reward_fn, ["a", "b"], ["1", "2", "3"])


def test_empty_responses_have_an_empty_mask_and_a_finite_loss():
    tokenizer = producers.load_tokenizer()
    tokens = tokenize_prompt_and_output(["question", "q"], ["", ""], tokenizer)
    assert not tokens["response_mask"].any()
    log_probs = torch.zeros(tokens["labels"].shape, requires_grad=True)
    loss, _ = grpo_microbatch_train_step(log_probs, tokens["response_mask"], 1, "reinforce_with_baseline",
                                         advantages=torch.ones(2, 1))
    assert math.isfinite(loss.item()) and loss.item() == 0.0
    assert float(aggregate_loss_across_microbatch(torch.ones(2, 4), torch.zeros(2, 4, dtype=torch.bool))) == 0.0


def test_prompts_longer_than_the_context_are_refused():
    model = producers.load_model()
    ids = torch.full((1, 1025), 5)
    with pytest.raises(ValueError, match="exceed the model's context of 1024 tokens"):
        get_response_log_probs(model, ids, ids)


def test_batches_that_do_not_split_into_microbatches():
    model, tokenizer = producers.load_model(), producers.load_tokenizer()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="cannot be split into 4 equal microbatches"):
        grpo_train_step(model, tokenizer, optimizer, 4, 1.0, producers.contains_reward, ["q"] * 6, ["a."] * 6, ["a"] * 6, 2)


def test_entropy_is_chunked_and_exact():
    logits = torch.randn(3, 700, 11, generator=torch.Generator().manual_seed(0))
    reference = torch.distributions.Categorical(logits=logits).entropy()
    torch.testing.assert_close(compute_entropy(logits, chunk_rows=64), reference)


def test_log_probs_in_row_slices_equal_one_pass():
    """Evaluation sets go through the model in slices of rows; the result must not depend on it."""
    from reference.alignment.rollout import response_log_probs_in_batches

    model, tokenizer = producers.load_model(), producers.load_tokenizer()
    prompts = [f"question {i}:" for i in range(5)]
    responses = ["a" * (i + 1) + " answer." for i in range(5)]
    tokens = tokenize_prompt_and_output(prompts, responses, tokenizer)
    with torch.no_grad():
        whole = get_response_log_probs(model, tokens["input_ids"], tokens["labels"], True)
    sliced = response_log_probs_in_batches(model, tokens, batch_size=2, return_token_entropy=True)
    assert sliced.keys() == whole.keys()
    for key in whole:
        torch.testing.assert_close(sliced[key], whole[key])
