"""Per-token log-probabilities and entropies of a causal LM, computed in chunks.

A vocabulary of 150k entries makes ``(batch, seq, vocab)`` float32 tensors of gigabytes; the
logits themselves are unavoidable, but the temporaries of ``log_softmax`` (another tensor that
size, and its ``exp``) are not. Both functions below walk over rows in chunks, so the extra memory
is ``chunk_rows × vocab`` instead of ``batch × seq × vocab``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

#: Rows (token positions) processed at once: 1024 rows of a 150k vocabulary are ~600 MB in fp32.
CHUNK_ROWS = 1024


def compute_entropy(logits: Tensor, chunk_rows: int = CHUNK_ROWS) -> Tensor:
    """Entropy of the softmax over the last dimension.

    logits: (..., vocab) -> (...). Uses H = logsumexp(z) − Σ softmax(z)·z, which never takes the
    log of a probability that underflowed to zero.
    """
    # BEGIN SOLUTION problem=response_log_probs
    flat = logits.reshape(-1, logits.shape[-1])
    pieces = []
    for rows in flat.split(chunk_rows):
        rows = rows.float()
        log_z = torch.logsumexp(rows, dim=-1)
        pieces.append(log_z - (torch.softmax(rows, dim=-1) * rows).sum(dim=-1))
    entropy = torch.cat(pieces) if pieces else flat.new_zeros(0)
    return entropy.reshape(logits.shape[:-1])
    # END SOLUTION


def log_probs_of_labels(logits: Tensor, labels: Tensor, chunk_rows: int = CHUNK_ROWS) -> Tensor:
    """log softmax(logits)[label] for each position.

    logits: (..., vocab); labels: (...) int -> (...) float32. log p(y) = z_y − logsumexp(z): one
    gather and one reduction per row, no full log-softmax tensor.
    """
    # BEGIN SOLUTION problem=response_log_probs
    flat_logits = logits.reshape(-1, logits.shape[-1])
    flat_labels = labels.reshape(-1, 1)
    pieces = []
    for rows, targets in zip(flat_logits.split(chunk_rows), flat_labels.split(chunk_rows)):
        rows = rows.float()
        pieces.append(rows.gather(-1, targets).squeeze(-1) - torch.logsumexp(rows, dim=-1))
    log_probs = torch.cat(pieces) if pieces else flat_logits.new_zeros(0)
    return log_probs.reshape(labels.shape)
    # END SOLUTION


def get_response_log_probs(
    model: nn.Module, input_ids: Tensor, labels: Tensor, return_token_entropy: bool = False
) -> dict[str, Tensor]:
    """Log-probabilities of ``labels`` under ``model`` (a Hugging Face causal LM), and optionally
    the entropy of each next-token distribution.

    input_ids, labels: (batch, seq) -> ``{"log_probs": (batch, seq)}`` plus
    ``"token_entropy": (batch, seq)`` when asked. Gradients flow through ``log_probs``; the
    entropy is a diagnostic and is computed without them. A sequence longer than the model's
    context is an error rather than silent garbage from positions it never learned.
    """
    max_positions = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    if max_positions is not None and input_ids.shape[-1] > max_positions:
        raise ValueError(
            f"sequences of {input_ids.shape[-1]} tokens exceed the model's context of {max_positions} tokens"
        )
    # BEGIN SOLUTION problem=response_log_probs
    logits = model(input_ids).logits
    result = {"log_probs": log_probs_of_labels(logits, labels)}
    if return_token_entropy:
        with torch.no_grad():
            result["token_entropy"] = compute_entropy(logits)
    return result
    # END SOLUTION
