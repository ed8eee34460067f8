"""Generation from a stand-in bigram model: greedy, end-of-text, temperature, nucleus, seeding."""

from __future__ import annotations

import pytest
import torch

from tests import producers


def bigram_logits(vocab: int, seed: int) -> torch.Tensor:
    return 3 * torch.randn(vocab, vocab, generator=torch.Generator().manual_seed(seed))


def greedy_chain(logits: torch.Tensor, start: int, length: int) -> list[int]:
    chain, token = [], start
    for _ in range(length):
        token = int(logits[token].argmax())
        chain.append(token)
    return chain


def frequencies(tokens: list[int], vocab: int) -> torch.Tensor:
    return torch.bincount(torch.tensor(tokens), minlength=vocab).double() / len(tokens)


@pytest.mark.problem("decoding")
def test_greedy(student):
    logits = bigram_logits(12, seed=0)
    out = student.run(
        producers.generated_tokens, logits=logits, prompt=[5, 2], max_new_tokens=9, temperature=0.0, top_p=1.0, eos_id=None
    )
    assert out == greedy_chain(logits, start=2, length=9)


@pytest.mark.problem("decoding")
def test_greedy_stops_at_end_of_text(student):
    logits = bigram_logits(12, seed=0)
    chain = greedy_chain(logits, start=2, length=9)
    eos = chain[3]
    out = student.run(
        producers.generated_tokens, logits=logits, prompt=[2], max_new_tokens=9, temperature=0.0, top_p=1.0, eos_id=eos
    )
    assert out == chain[: chain.index(eos) + 1], "generation must stop right after the end-of-text token"


@pytest.mark.problem("decoding")
def test_prompt_longer_than_the_context(student):
    # The stand-in model refuses more than 4 tokens: only the last `context_length` may be fed.
    logits = bigram_logits(12, seed=0)
    out = student.run(
        producers.generated_tokens, logits=logits, prompt=[1, 2, 3, 4, 5, 6], max_new_tokens=5, temperature=0.0,
        top_p=1.0, eos_id=None, context_length=4,
    )  # fmt: skip
    assert out == greedy_chain(logits, start=6, length=5)


@pytest.mark.problem("decoding")
def test_temperature_sampling(student):
    logits = torch.zeros(4, 4)
    logits[0] = torch.tensor([1.0, 0.5, 0.0, -1.0])
    samples = 3000
    out = student.run(
        producers.sampled_first_tokens, logits=logits, prompt=[0], temperature=0.5, top_p=1.0, samples=samples, seed=0
    )
    expected = torch.softmax(logits[0].double() / 0.5, dim=-1)
    slack = 5 * (expected * (1 - expected) / samples).sqrt() + 1e-3
    assert ((frequencies(out, 4) - expected).abs() <= slack).all(), frequencies(out, 4)


@pytest.mark.problem("decoding")
def test_nucleus_sampling(student):
    probs = torch.tensor([0.45, 0.30, 0.15, 0.10])
    logits = torch.zeros(4, 4)
    logits[0] = probs.log()
    samples = 2000
    out = student.run(
        producers.sampled_first_tokens, logits=logits, prompt=[0], temperature=1.0, top_p=0.7, samples=samples, seed=0
    )
    # The smallest set of most likely tokens with mass >= 0.7 is {0, 1}; renormalised 0.6 / 0.4.
    got = frequencies(out, 4)
    assert got[2] == got[3] == 0, f"tokens outside the nucleus were sampled: {got}"
    assert abs(got[0] - 0.6) <= 5 * (0.24 / samples) ** 0.5


@pytest.mark.problem("decoding")
def test_sampling_is_seeded_by_the_generator(student):
    logits = bigram_logits(50, seed=1) / 3
    kwargs = {"logits": logits, "prompt": [0], "max_new_tokens": 30, "temperature": 1.0, "top_p": 1.0, "eos_id": None}
    first = student.run(producers.generated_tokens, seed=7, **kwargs)
    again = student.run(producers.generated_tokens, seed=7, **kwargs)
    other = student.run(producers.generated_tokens, seed=8, **kwargs)
    assert len(first) == 30
    assert first == again
    assert first != other
