"""Hidden tests of decoding from a stand-in bigram model: tiny top_p and temperature are greedy,
end-of-text at once, zero new tokens, a prompt filling the context, high temperature, a nucleus
of several tokens."""

from __future__ import annotations

import pytest
import torch

from tests import producers


def bigram_logits(vocab: int, seed: int, scale: float = 3.0) -> torch.Tensor:
    return scale * torch.randn(vocab, vocab, generator=torch.Generator().manual_seed(seed))


def greedy_chain(logits: torch.Tensor, start: int, length: int) -> list[int]:
    chain, token = [], start
    for _ in range(length):
        token = int(logits[token].argmax())
        chain.append(token)
    return chain


def frequencies(tokens: list[int], vocab: int) -> torch.Tensor:
    return torch.bincount(torch.tensor(tokens), minlength=vocab).double() / len(tokens)


@pytest.mark.problem("decoding")
@pytest.mark.parametrize("seed", [3, 4])
def test_tiny_top_p_is_greedy(student, seed):
    # The nucleus of mass 1e-6 is the single most likely token, however it is sampled.
    logits = bigram_logits(20, seed=seed, scale=1.0)
    out = student.run(
        producers.generated_tokens, logits=logits, prompt=[7], max_new_tokens=15, temperature=1.0, top_p=1e-6,
        eos_id=None, seed=seed,
    )  # fmt: skip
    assert out == greedy_chain(logits, start=7, length=15)


@pytest.mark.problem("decoding")
def test_tiny_temperature_is_greedy(student):
    # Logits divided by 1e-3: the softmax must stay stable and put all mass on the argmax.
    logits = bigram_logits(16, seed=5)
    chain = greedy_chain(logits, start=3, length=12)
    for token in [3, *chain[:-1]]:
        top2 = logits[token].topk(2).values
        assert top2[0] - top2[1] > 0.05  # a clear winner each time: exp(-50) of the mass for the runner-up
    out = student.run(
        producers.generated_tokens, logits=logits, prompt=[0, 3], max_new_tokens=12, temperature=1e-3, top_p=1.0,
        eos_id=None, seed=1,
    )  # fmt: skip
    assert out == chain


@pytest.mark.problem("decoding")
def test_greedy_end_of_text_first(student):
    logits = bigram_logits(12, seed=6)
    first = greedy_chain(logits, start=4, length=1)[0]
    out = student.run(
        producers.generated_tokens, logits=logits, prompt=[4], max_new_tokens=10, temperature=0.0, top_p=1.0, eos_id=first
    )
    assert out == [first], "generation stops right after the end-of-text token, which is kept"


@pytest.mark.problem("decoding")
def test_end_of_text_never_reached(student):
    # An end-of-text id that the greedy chain never visits: generation runs to max_new_tokens.
    logits = bigram_logits(12, seed=6)
    chain = greedy_chain(logits, start=4, length=20)
    eos = next(t for t in range(12) if t not in chain)
    out = student.run(
        producers.generated_tokens, logits=logits, prompt=[4], max_new_tokens=20, temperature=0.0, top_p=1.0, eos_id=eos
    )
    assert out == chain


@pytest.mark.problem("decoding")
def test_zero_new_tokens(student):
    out = student.run(
        producers.generated_tokens, logits=bigram_logits(5, seed=0), prompt=[1, 2], max_new_tokens=0, temperature=1.0,
        top_p=0.9, eos_id=0,
    )  # fmt: skip
    assert out == []


@pytest.mark.problem("decoding")
def test_prompt_exactly_fills_the_context(student):
    logits = bigram_logits(10, seed=7)
    out = student.run(
        producers.generated_tokens, logits=logits, prompt=[9, 8, 7, 6, 5], max_new_tokens=8, temperature=0.0, top_p=1.0,
        eos_id=None, context_length=5,
    )  # fmt: skip
    assert out == greedy_chain(logits, start=5, length=8)


@pytest.mark.problem("decoding")
def test_sampling_stops_at_end_of_text(student):
    # Sampled, not greedy: wherever the end-of-text token comes, it is the last one returned.
    logits = bigram_logits(6, seed=8, scale=0.5)
    for seed in range(5):
        out = student.run(
            producers.generated_tokens, logits=logits, prompt=[0], max_new_tokens=200, temperature=1.0, top_p=1.0,
            eos_id=5, seed=seed,
        )  # fmt: skip
        assert 5 not in out[:-1]
        assert out[-1] == 5 or len(out) == 200


@pytest.mark.problem("decoding")
def test_high_temperature_flattens(student):
    logits = torch.zeros(5, 5)
    logits[2] = torch.tensor([4.0, 0.0, -2.0, 1.0, 3.0])
    samples = 3000
    out = student.run(
        producers.sampled_first_tokens, logits=logits, prompt=[2], temperature=20.0, top_p=1.0, samples=samples, seed=3
    )
    expected = torch.softmax(logits[2].double() / 20.0, dim=-1)
    slack = 5 * (expected * (1 - expected) / samples).sqrt() + 1e-3
    got = frequencies(out, 5)
    assert ((got - expected).abs() <= slack).all(), got


@pytest.mark.problem("decoding")
def test_nucleus_of_several_tokens_with_temperature(student):
    # Temperature first, then the nucleus: softmax(l / 0.5) of these logits is
    # (0.4, 0.25, 0.15, 0.1, 0.06, 0.04); mass 0.85 needs the first four; renormalised by 0.9.
    probs = torch.tensor([0.4, 0.25, 0.15, 0.1, 0.06, 0.04], dtype=torch.float64)
    logits = torch.zeros(6, 6)
    logits[1] = (0.5 * probs.log()).float()
    samples = 3000
    out = student.run(
        producers.sampled_first_tokens, logits=logits, prompt=[1], temperature=0.5, top_p=0.85, samples=samples, seed=4
    )
    got = frequencies(out, 6)
    assert got[4] == got[5] == 0, f"tokens outside the nucleus were sampled: {got}"
    expected = probs[:4] / probs[:4].sum()
    assert ((got[:4] - expected).abs() <= 5 * (expected * (1 - expected) / samples).sqrt()).all(), got
