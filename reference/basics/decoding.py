"""Text generation from a trained language model: greedy, temperature and nucleus sampling."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .model import softmax


@torch.no_grad()
def generate(
    model: nn.Module,
    prompt_ids: Sequence[int],
    max_new_tokens: int,
    temperature: float = 1.0,
    top_p: float = 1.0,
    eos_id: int | None = None,
    generator: torch.Generator | None = None,
) -> list[int]:
    """Extend ``prompt_ids`` by up to ``max_new_tokens`` tokens; returns only the new ones.

    model: maps token ids (1, seq) to logits (1, seq, vocab) and has a ``context_length``;
    longer inputs are cut to their last ``context_length`` tokens. ``temperature`` 0 picks
    the most likely token (greedy); otherwise tokens are sampled from
    ``softmax(logits / temperature)`` restricted to the nucleus of mass ``top_p``.
    Generation stops after ``eos_id`` (which is included in the result).
    ``generator`` (a CPU generator) makes sampling reproducible.
    """
    # BEGIN SOLUTION problem=decoding
    device = next(model.parameters()).device
    ids = torch.tensor(list(prompt_ids), dtype=torch.long, device=device)  # (seq,)
    new_ids: list[int] = []
    for _ in range(max_new_tokens):
        context = ids[-model.context_length :]
        logits = model(context.unsqueeze(0))[0, -1]  # (vocab,): the next-token scores
        next_id = sample_next_token(logits, temperature, top_p, generator)
        new_ids.append(next_id)
        if next_id == eos_id:
            break
        ids = torch.cat((ids, ids.new_tensor([next_id])))
    return new_ids
    # END SOLUTION


def sample_next_token(
    logits: Tensor, temperature: float, top_p: float, generator: torch.Generator | None = None
) -> int:
    """Pick one token id from logits (vocab,); see :func:`generate` for the parameters."""
    # BEGIN SOLUTION problem=decoding
    if temperature == 0:
        return int(logits.argmax())
    # Sample on the CPU so that a CPU generator seeds it whatever device the model is on.
    probs = softmax(logits.float().cpu() / temperature, dim=-1)
    if top_p < 1.0:
        probs = nucleus(probs, top_p)
    return int(torch.multinomial(probs, 1, generator=generator))
    # END SOLUTION


def nucleus(probs: Tensor, top_p: float) -> Tensor:
    """Keep the fewest most likely tokens whose mass reaches ``top_p``; renormalise.

    probs: (vocab,) summing to 1 -> (vocab,), zero outside the nucleus.
    """
    # BEGIN SOLUTION problem=decoding
    sorted_probs, order = probs.sort(descending=True)
    mass_before = sorted_probs.cumsum(-1) - sorted_probs  # mass of the strictly likelier tokens
    sorted_probs = sorted_probs.masked_fill(mass_before >= top_p, 0.0)  # the top token always stays
    kept = torch.zeros_like(probs).scatter(-1, order, sorted_probs)
    return kept / kept.sum()
    # END SOLUTION
