"""FlashAttention-2 in plain PyTorch: the algorithm, one tile at a time, before it becomes a kernel.

Attention ``O = softmax(Q Kᵀ / sqrt(d)) V`` written naively materialises the (seq_q, seq_k) score
matrix: at 16k tokens that is 1 GiB per head in fp32, written to and read back from memory. FlashAttention
never holds it. The forward walks over tiles of keys and keeps, per query row, only a running maximum
``m``, a running sum of exponentials ``l`` and an unnormalised output: the *online softmax*. Each new
tile of scores may raise the maximum, and everything accumulated so far is then rescaled by
``exp(m_old - m_new)``. At the end ``O = acc / l`` and the row's logsumexp ``L = m + log l`` is saved.

The backward recomputes the probabilities from Q, K and L instead of storing them:
``P = exp(S - L)``. With ``D = rowsum(dO ∘ O)`` (which equals ``rowsum(P ∘ dP)``) the softmax
gradient is ``dS = P ∘ (dP - D)``, so no row of P has to be summed again (Dao, 2023, Algorithm 2).

Shapes: Q (..., seq_q, d); K, V (..., seq_k, d), where ``...`` is the batch (and heads, if any).
Causal attention (``is_causal=True``) lets query ``i`` see keys ``j <= i``; masked scores are set to
``-1e6`` (the course's convention) rather than ``-inf``, which keeps every row finite. Loop bounds
depend only on shapes, never on values, so ``torch.compile(fullgraph=True)`` traces a whole call.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

MASKED_SCORE = -1.0e6
"""The score of a (query, key) pair that causal attention hides: exp(-1e6 - m) is exactly 0."""
Q_TILE = 32
"""B_q: query rows per tile, the work of one kernel program."""
K_TILE = 32
"""B_k: key rows per step of the online softmax."""


class FlashAttention2(torch.autograd.Function):
    """FlashAttention-2, tiled forward and recomputing backward, in PyTorch.

    ``FlashAttention2.apply(Q, K, V, is_causal=False)``: Q (..., seq_q, d), K and V (..., seq_k, d);
    returns O (..., seq_q, d) in Q's dtype. Saves Q, K, V, O and one extra tensor, the logsumexp
    L (..., seq_q) in float32, for the backward.
    """

    @staticmethod
    def forward(ctx: Any, Q: Tensor, K: Tensor, V: Tensor, is_causal: bool = False) -> Tensor:
        # BEGIN SOLUTION problem=flash_pytorch
        check_shapes(Q, K, V)
        out, L = tiled_forward(Q, K, V, is_causal, Q_TILE, K_TILE)
        ctx.save_for_backward(Q, K, V, out, L)
        ctx.is_causal = is_causal
        return out
        # END SOLUTION

    @staticmethod
    def backward(ctx: Any, dO: Tensor) -> tuple[Tensor, Tensor, Tensor, None]:
        # BEGIN SOLUTION problem=flash_pytorch
        Q, K, V, out, L = ctx.saved_tensors
        dQ, dK, dV = recompute_backward(Q, K, V, out, L, dO, ctx.is_causal)
        return dQ, dK, dV, None  # no gradient for is_causal
        # END SOLUTION


def check_shapes(Q: Tensor, K: Tensor, V: Tensor) -> None:
    """Raise ValueError unless Q (..., seq_q, d), K and V (..., seq_k, d) fit together, with seq_k >= 1."""
    if Q.dim() < 2 or K.shape != V.shape or Q.shape[:-2] != K.shape[:-2] or Q.shape[-1] != K.shape[-1] or not K.shape[-2]:
        raise ValueError(
            "attention needs Q (..., seq_q, d) and K, V (..., seq_k, d) with the same leading dimensions and d, "
            f"and at least one key; got Q {tuple(Q.shape)}, K {tuple(K.shape)}, V {tuple(V.shape)}"
        )


def tiled_forward(Q: Tensor, K: Tensor, V: Tensor, is_causal: bool, q_tile: int, k_tile: int) -> tuple[Tensor, Tensor]:
    """The FlashAttention-2 forward (Algorithm 1), tile by tile.

    Q (..., seq_q, d); K, V (..., seq_k, d). Returns O (..., seq_q, d) in Q's dtype and the
    logsumexp of every score row, L (..., seq_q) in float32. Work is in float32 whatever the
    input dtype, as a kernel accumulates in fp32 registers.
    """
    # BEGIN SOLUTION problem=flash_pytorch
    seq_q, seq_k, d = Q.shape[-2], K.shape[-2], Q.shape[-1]
    scale = 1.0 / math.sqrt(d)
    out = torch.empty(Q.shape, dtype=Q.dtype, device=Q.device)
    L = torch.empty(Q.shape[:-1], dtype=torch.float32, device=Q.device)
    for q0 in range(0, seq_q, q_tile):  # on a GPU, one program per query tile, all in parallel
        q = Q[..., q0 : q0 + q_tile, :].float()  # (..., B_q, d)
        rows = torch.arange(q0, q0 + q.shape[-2], device=Q.device)  # (B_q,) query positions
        m = torch.full(q.shape[:-1], float("-inf"), device=Q.device)  # (..., B_q) running max
        row_sum = torch.zeros(q.shape[:-1], device=Q.device)  # (..., B_q) running sum of exp(s - m)
        acc = torch.zeros(q.shape, device=Q.device)  # (..., B_q, d) running sum of exp(s - m) v
        # Causal: key tiles that start after the tile's last query are fully masked; skip them.
        k_end = min(seq_k, q0 + q.shape[-2]) if is_causal else seq_k
        for k0 in range(0, k_end, k_tile):
            k = K[..., k0 : k0 + k_tile, :].float()  # (..., B_k, d)
            v = V[..., k0 : k0 + k_tile, :].float()
            s = (q @ k.transpose(-2, -1)) * scale  # (..., B_q, B_k)
            if is_causal:
                cols = torch.arange(k0, k0 + k.shape[-2], device=Q.device)  # (B_k,) key positions
                s = torch.where(rows[:, None] >= cols[None, :], s, MASKED_SCORE)
            m_new = torch.maximum(m, s.amax(dim=-1))  # (..., B_q)
            p = torch.exp(s - m_new[..., None])  # (..., B_q, B_k), each <= 1: cannot overflow
            rescale = torch.exp(m - m_new)  # (..., B_q): earlier terms were relative to the old max
            row_sum = rescale * row_sum + p.sum(dim=-1)
            acc = rescale[..., None] * acc + p @ v
            m = m_new
        out[..., q0 : q0 + q_tile, :] = (acc / row_sum[..., None]).to(Q.dtype)
        L[..., q0 : q0 + q_tile] = m + torch.log(row_sum)
    return out, L
    # END SOLUTION


def recompute_backward(
    Q: Tensor, K: Tensor, V: Tensor, out: Tensor, L: Tensor, dO: Tensor, is_causal: bool
) -> tuple[Tensor, Tensor, Tensor]:
    """Gradients of attention by recomputation (Algorithm 2), for all tiles at once.

    Q, out (the forward's O), dO (..., seq_q, d); K, V (..., seq_k, d); L (..., seq_q). Returns dQ,
    dK, dV in the dtypes of Q, K, V. This version holds the whole (seq_q, seq_k) matrix P at once,
    for clarity: it runs the equations the Triton kernels run one tile at a time, and needs nothing
    the forward did not save: P comes back from S and L, and the softmax's row sums from D.
    """
    # BEGIN SOLUTION problem=flash_pytorch
    q, k, v, o, do = (t.float() for t in (Q, K, V, out, dO))
    scale = 1.0 / math.sqrt(Q.shape[-1])
    s = (q @ k.transpose(-2, -1)) * scale  # (..., seq_q, seq_k)
    if is_causal:
        rows = torch.arange(Q.shape[-2], device=Q.device)
        cols = torch.arange(K.shape[-2], device=Q.device)
        s = torch.where(rows[:, None] >= cols[None, :], s, MASKED_SCORE)
    p = torch.exp(s - L[..., None])  # the forward's probabilities, without storing them
    D = (do * o).sum(dim=-1)  # (..., seq_q) = rowsum(P ∘ dP), one dot product per row
    dv = p.transpose(-2, -1) @ do  # (..., seq_k, d)
    dp = do @ v.transpose(-2, -1)  # (..., seq_q, seq_k)
    ds = p * (dp - D[..., None])  # softmax backward: P ∘ (dP - rowsum(P ∘ dP))
    dq = (ds @ k) * scale
    dk = (ds.transpose(-2, -1) @ q) * scale
    return dq.to(Q.dtype), dk.to(K.dtype), dv.to(V.dtype)
    # END SOLUTION
