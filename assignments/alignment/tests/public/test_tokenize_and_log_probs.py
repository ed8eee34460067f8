"""Tokenization with a response mask, per-token log-probabilities and entropies, masked reductions."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from tests import producers

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
PROMPTS = ["Hello, world", "2+2=", "Q"]
OUTPUTS = [" is nice.", "4", "A: yes, it is"]


@pytest.mark.problem("tokenize_prompt_and_output")
def test_tokenize_prompt_and_output(student):
    out = student.run(producers.tokenize, PROMPTS, OUTPUTS, str(FIXTURES))
    tokenizer = producers.load_tokenizer(FIXTURES)
    lengths = [len(p) + len(o) for p, o in zip(PROMPTS, OUTPUTS)]  # one token per character
    assert out["input_ids"].shape == out["labels"].shape == out["response_mask"].shape == (3, max(lengths) - 1)
    for row, (prompt, output) in enumerate(zip(PROMPTS, OUTPUTS)):
        ids = tokenizer(prompt + output, add_special_tokens=False)["input_ids"]
        padded = ids + [tokenizer.pad_token_id] * (max(lengths) - len(ids))
        assert out["input_ids"][row].tolist() == padded[:-1]
        assert out["labels"][row].tolist() == padded[1:]
        expected = [len(prompt) - 1 <= t < len(ids) - 1 for t in range(max(lengths) - 1)]
        assert out["response_mask"][row].tolist() == expected


@pytest.mark.problem("tokenize_prompt_and_output")
def test_empty_output_has_no_response_token(student):
    out = student.run(producers.tokenize, ["abc", "de"], ["", "fgh"], str(FIXTURES))
    assert out["response_mask"].dtype == torch.bool
    assert not out["response_mask"][0].any()
    assert out["response_mask"][1].sum() == 3


def expected_log_probs(input_ids, labels):
    model = producers.load_model(FIXTURES)
    with torch.no_grad():
        logits = model(input_ids).logits
    log_probs = F.log_softmax(logits, dim=-1)
    return log_probs.gather(-1, labels.unsqueeze(-1)).squeeze(-1), -(log_probs.exp() * log_probs).sum(-1)


@pytest.mark.problem("response_log_probs")
def test_response_log_probs_and_entropy(student):
    tokenizer = producers.load_tokenizer(FIXTURES)
    ids = torch.tensor([tokenizer("The cat sat down.", add_special_tokens=False)["input_ids"]] * 2)
    ids[1, 5:] = 0
    input_ids, labels = ids[:, :-1], ids[:, 1:]
    out = student.run(producers.response_log_probs, input_ids, labels, True, str(FIXTURES))
    log_probs, entropy = expected_log_probs(input_ids, labels)
    torch.testing.assert_close(out["log_probs"], log_probs, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out["token_entropy"], entropy, rtol=1e-5, atol=1e-5)
    assert out["lm_head_grad"] is not None and out["lm_head_grad"].abs().sum() > 0  # gradients flow


@pytest.mark.problem("response_log_probs")
def test_entropy_of_extreme_logits(student):
    logits = producers.seeded(4, 6, 50, seed=3) * 10
    logits[0, 0] = torch.tensor([1e4] + [0.0] * 49)  # a certain prediction: entropy 0, not NaN
    expected = -(F.softmax(logits, -1) * F.log_softmax(logits, -1)).sum(-1)
    got = student.run_compute_entropy(logits=logits)
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.problem("masked_mean")
@pytest.mark.parametrize("dim", [None, 0, 1, -1])
def test_masked_mean_and_normalize(student, dim):
    x, mask = producers.seeded(4, 7, seed=0), producers.seeded_mask(4, 7, seed=1)
    count = mask.sum() if dim is None else mask.sum(dim=dim)
    total = (x * mask).sum() if dim is None else (x * mask).sum(dim=dim)
    torch.testing.assert_close(student.run_masked_mean(tensor=x, mask=mask, dim=dim), total / count)
    got = student.run_masked_normalize(tensor=x, mask=mask, dim=dim, normalize_constant=3.0)
    torch.testing.assert_close(got, total / 3.0)
