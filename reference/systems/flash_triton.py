"""FlashAttention-2 as Triton kernels: a fused forward and a two-kernel backward.

The algorithm is the one in ``flash_attention.py``; here each tile is a block of registers of one GPU
program, and the score matrix never exists in memory.

- Forward: one program per (query tile, batch row). It loads its tile of Q once, streams tiles of K
  and V past it with the online softmax, and writes O and the logsumexp L = m + log l.
- Backward: D = rowsum(dO ∘ O) first (a tiny kernel), then two kernels. ``_dkdv_kernel`` owns a
  tile of keys and streams query tiles past it, accumulating dK and dV; ``_dq_kernel`` owns a tile
  of queries and streams key tiles, accumulating dQ. Each program writes only its own rows, so no
  atomics are needed; the price is recomputing P and dP in both kernels (7 tile products per pair
  of tiles instead of 5), which is cheaper than funnelling dQ through atomic adds.

Tricks that make it fast, each explained where it happens: exponentials in base 2 with log2(e)
folded into the score scale (``exp2`` is one instruction); causal tiles that are fully masked are
never visited; masks are computed only on the few tiles that need them (the diagonal band and the
last, partial tile), so the loop over all other tiles is pure ``dot``/``exp2``; causal programs
with the most work start first; tile shapes are autotuned per sequence length and head dimension.

Inputs: Q (..., seq_q, d), K and V (..., seq_k, d) in float32, bfloat16 or float16, with d a power of
two from 16 to 128; any sequence lengths (leading dimensions are flattened into one batch). Accumulation
is always float32; float32 products use full IEEE precision, not TF32, so that path checks tightly.

Without a GPU the kernels run in Triton's CPU interpreter: slow (keep shapes small), and unable to
multiply bfloat16 tiles, so bfloat16 needs a GPU.
"""

from __future__ import annotations

import math
import os
from typing import Any

import torch
from torch import Tensor

if not torch.cuda.is_available():
    # Must be set before the kernels below are decorated: @triton.jit reads it then.
    os.environ.setdefault("TRITON_INTERPRET", "1")

import triton  # noqa: E402
import triton.language as tl  # noqa: E402

from .flash_attention import check_shapes  # noqa: E402

INTERPRET = os.environ.get("TRITON_INTERPRET") == "1"
HEAD_DIMS = (16, 32, 64, 128)
# Kernels may read only globals that are compile-time constants (tl.constexpr).
LOG2E = tl.constexpr(1.4426950408889634)  # exp(x) = exp2(x * log2(e))
LN2 = tl.constexpr(0.6931471805599453)  # log(x) = log2(x) * ln(2)
MASKED_SCORE_LOG2 = tl.constexpr(-1.0e6 * 1.4426950408889634)  # the course's masked score, -1e6, in base 2


def _config(block_q: int, block_k: int, num_warps: int, num_stages: int) -> triton.Config:
    return triton.Config({"BLOCK_Q": block_q, "BLOCK_K": block_k}, num_warps=num_warps, num_stages=num_stages)


# Tile shapes. Under the interpreter one small config: tiling is what is being tested, and every
# extra config would cost a slow run. On a GPU the shapes that won somewhere on an H200 (bf16,
# causal, head dims 64 and 128, sequences of 4k and 16k); the first of each list is the default for
# short sequences (never far from the best), and float32 uses a smaller one because its tiles take
# twice the shared memory. BLOCK_Q and BLOCK_K divide each other, so the causal diagonal band is a
# whole number of steps.
if INTERPRET:
    FWD_CONFIGS = [_config(32, 16, 4, 1)]
    DKDV_CONFIGS = [_config(16, 32, 4, 1)]
    DQ_CONFIGS = [_config(32, 16, 4, 1)]
else:
    FWD_CONFIGS = [_config(128, 64, 8, 3), _config(128, 128, 8, 3), _config(128, 64, 4, 4), _config(128, 64, 4, 3)]
    DKDV_CONFIGS = [_config(32, 64, 4, 3), _config(64, 128, 8, 3), _config(64, 128, 4, 3)]
    DQ_CONFIGS = [_config(128, 64, 8, 3), _config(128, 64, 4, 3), _config(64, 64, 4, 3)]
FP32_CONFIG = {"fwd": _config(64, 32, 4, 2), "dkdv": _config(32, 64, 4, 2), "dq": _config(64, 32, 4, 2)}
TUNE_FROM_SEQ = 2048  # shorter sequences run the default config: tuning would cost more than it saves
TUNE_KEY = ["seq_q", "seq_k", "HEAD_DIM", "IS_CAUSAL"]  # the autotuner adds the tensors' dtypes


def _prune(kernel: str) -> Any:
    """An ``early_config_prune`` hook for ``kernel``: the configs worth timing for these arguments."""

    def prune(configs: list[triton.Config], named_args: dict[str, Any], **kwargs: Any) -> list[triton.Config]:
        if named_args["Q"].dtype == torch.float32:
            return [FP32_CONFIG[kernel]]
        if max(named_args["seq_q"], named_args["seq_k"]) < TUNE_FROM_SEQ:
            return configs[:1]
        return configs

    return {"early_config_prune": prune}


# ---------------------------------------------------------------------------------------- forward


@triton.jit
def _key_range(q0, seq_k, BLOCK_Q: tl.constexpr, BLOCK_K: tl.constexpr, IS_CAUSAL: tl.constexpr):
    """For the query tile starting at ``q0``: ``(full_end, end)``.

    Key tiles in ``[0, full_end)`` are visible to every query of the tile and need no mask; tiles in
    ``[full_end, end)`` need one (the causal diagonal band, or the last, partial tile); keys from
    ``end`` on are invisible to the whole tile (causal) or do not exist, and are skipped.
    """
    # BEGIN SOLUTION problem=flash_triton
    if IS_CAUSAL:
        end = tl.minimum(q0 + BLOCK_Q, seq_k)  # query i sees keys j <= i
        full_end = tl.minimum(q0, seq_k) // BLOCK_K * BLOCK_K  # keys < q0 are seen by every query here
    else:
        end = seq_k
        full_end = seq_k // BLOCK_K * BLOCK_K
    return full_end, end
    # END SOLUTION


@triton.jit
def _fwd_tiles(
    acc, l_i, m_i, q, K, V, rows, seq_k, qk_scale, start, end,
    HEAD_DIM: tl.constexpr, BLOCK_K: tl.constexpr, MASKED: tl.constexpr, IS_CAUSAL: tl.constexpr,
    DOT_PRECISION: tl.constexpr,
):
    """Online softmax over the key tiles in ``[start, end)``; returns the updated ``(acc, l_i, m_i)``.

    acc (BLOCK_Q, HEAD_DIM) float32: sum of exp2(s - m) v; l_i, m_i (BLOCK_Q,): running sum and max of
    the scores s in base-2 units; q (BLOCK_Q, HEAD_DIM); K, V point at this batch row; rows (BLOCK_Q,)
    the query positions. MASKED tiles check bounds and causality; the others are known to be whole.
    """
    # BEGIN SOLUTION problem=flash_triton
    dims = tl.arange(0, HEAD_DIM)
    for k0 in range(start, end, BLOCK_K):
        k0 = tl.multiple_of(k0, BLOCK_K)  # lets the compiler vectorize the loads
        cols = k0 + tl.arange(0, BLOCK_K)  # (BLOCK_K,) key positions
        offsets = cols[:, None] * HEAD_DIM + dims[None, :]  # (BLOCK_K, HEAD_DIM)
        if MASKED:
            k = tl.load(K + offsets, mask=cols[:, None] < seq_k, other=0.0)
            v = tl.load(V + offsets, mask=cols[:, None] < seq_k, other=0.0)
        else:
            k = tl.load(K + offsets)
            v = tl.load(V + offsets)
        s = tl.dot(q, tl.trans(k), input_precision=DOT_PRECISION) * qk_scale  # (BLOCK_Q, BLOCK_K), base 2
        if MASKED:
            visible = cols[None, :] < seq_k
            if IS_CAUSAL:
                visible = visible & (rows[:, None] >= cols[None, :])
            s = tl.where(visible, s, MASKED_SCORE_LOG2)
        m_new = tl.maximum(m_i, tl.max(s, 1))
        p = tl.math.exp2(s - m_new[:, None])  # <= 1: cannot overflow
        rescale = tl.math.exp2(m_i - m_new)  # what was summed so far was relative to the old max
        l_i = l_i * rescale + tl.sum(p, 1)
        acc = tl.dot(p.to(v.dtype), v, acc * rescale[:, None], input_precision=DOT_PRECISION)
        m_i = m_new
    return acc, l_i, m_i
    # END SOLUTION


@triton.autotune(configs=FWD_CONFIGS, key=TUNE_KEY, prune_configs_by=_prune("fwd"))
@triton.jit
def _fwd_kernel(
    Q, K, V, Out, L, seq_q, seq_k, qk_scale,
    HEAD_DIM: tl.constexpr, IS_CAUSAL: tl.constexpr, DOT_PRECISION: tl.constexpr,
    BLOCK_Q: tl.constexpr, BLOCK_K: tl.constexpr,
):
    """One program: one tile of BLOCK_Q queries of one batch row. Grid (cdiv(seq_q, BLOCK_Q), batch).

    Q, Out (batch, seq_q, HEAD_DIM) and K, V (batch, seq_k, HEAD_DIM) contiguous; writes O into Out and
    L (batch, seq_q) float32, the natural-log logsumexp of each score row.
    """
    # BEGIN SOLUTION problem=flash_triton
    # Causal tiles near the end of the sequence have the most keys to visit: start them first, so
    # the last wave of programs on the GPU is made of short ones.
    tile = tl.program_id(0)
    if IS_CAUSAL:
        tile = tl.num_programs(0) - 1 - tile
    b = tl.program_id(1).to(tl.int64)  # int64: batch * seq * dim can pass 2**31
    Q += b * seq_q * HEAD_DIM
    K += b * seq_k * HEAD_DIM
    V += b * seq_k * HEAD_DIM
    q0 = tile * BLOCK_Q
    rows = q0 + tl.arange(0, BLOCK_Q)  # (BLOCK_Q,) query positions
    dims = tl.arange(0, HEAD_DIM)
    q_offsets = rows[:, None] * HEAD_DIM + dims[None, :]
    q = tl.load(Q + q_offsets, mask=rows[:, None] < seq_q, other=0.0)  # stays in registers throughout

    m_i = tl.full([BLOCK_Q], float("-inf"), tl.float32)
    l_i = tl.zeros([BLOCK_Q], tl.float32)
    acc = tl.zeros([BLOCK_Q, HEAD_DIM], tl.float32)
    full_end, end = _key_range(q0, seq_k, BLOCK_Q, BLOCK_K, IS_CAUSAL)
    # Two stages: the whole tiles without any mask arithmetic, then the few that need masks. The
    # first tile always holds key 0, which every query sees, so m_i is finite after it.
    acc, l_i, m_i = _fwd_tiles(
        acc, l_i, m_i, q, K, V, rows, seq_k, qk_scale, 0, full_end,
        HEAD_DIM, BLOCK_K, False, IS_CAUSAL, DOT_PRECISION,
    )
    acc, l_i, m_i = _fwd_tiles(
        acc, l_i, m_i, q, K, V, rows, seq_k, qk_scale, full_end, end,
        HEAD_DIM, BLOCK_K, True, IS_CAUSAL, DOT_PRECISION,
    )

    in_bounds = rows < seq_q
    out = acc / l_i[:, None]
    tl.store(Out + b * seq_q * HEAD_DIM + q_offsets, out.to(Out.dtype.element_ty), mask=in_bounds[:, None])
    tl.store(L + b * seq_q + rows, (m_i + tl.math.log2(l_i)) * LN2, mask=in_bounds)
    # END SOLUTION


# --------------------------------------------------------------------------------------- backward


@triton.jit
def _delta_kernel(Out, dO, D, seq_q, HEAD_DIM: tl.constexpr, BLOCK_Q: tl.constexpr):
    """D = rowsum(dO ∘ O), float32 (batch, seq_q). Grid (cdiv(seq_q, BLOCK_Q), batch)."""
    # BEGIN SOLUTION problem=flash_triton
    b = tl.program_id(1).to(tl.int64)
    rows = tl.program_id(0) * BLOCK_Q + tl.arange(0, BLOCK_Q)
    offsets = b * seq_q * HEAD_DIM + rows[:, None] * HEAD_DIM + tl.arange(0, HEAD_DIM)[None, :]
    in_bounds = rows < seq_q
    o = tl.load(Out + offsets, mask=in_bounds[:, None], other=0.0).to(tl.float32)
    do = tl.load(dO + offsets, mask=in_bounds[:, None], other=0.0).to(tl.float32)
    tl.store(D + b * seq_q + rows, tl.sum(o * do, 1), mask=in_bounds)
    # END SOLUTION


@triton.jit
def _dkdv_tiles(
    dk, dv, k, v, Q, dO, L, D, cols, seq_q, qk_scale, start, end,
    HEAD_DIM: tl.constexpr, BLOCK_Q: tl.constexpr, MASKED: tl.constexpr, DOT_PRECISION: tl.constexpr,
):
    """Accumulate dK and dV of one key tile over the query tiles in ``[start, end)``.

    Works on transposed scores sᵀ (BLOCK_K, BLOCK_Q) so that each product lands in this tile's rows:
    dV += Pᵀ dO and dK += dSᵀ Q (scaled by the caller). MASKED applies the causal mask; rows past the
    sequence end are loaded as zeros and then add exactly zero (their dO and D are 0).
    """
    # BEGIN SOLUTION problem=flash_triton
    dims = tl.arange(0, HEAD_DIM)
    for q0 in range(start, end, BLOCK_Q):
        q0 = tl.multiple_of(q0, BLOCK_Q)
        rows = q0 + tl.arange(0, BLOCK_Q)  # (BLOCK_Q,) query positions
        in_bounds = rows < seq_q
        offsets = rows[:, None] * HEAD_DIM + dims[None, :]
        q = tl.load(Q + offsets, mask=in_bounds[:, None], other=0.0)
        do = tl.load(dO + offsets, mask=in_bounds[:, None], other=0.0)
        lse = tl.load(L + rows, mask=in_bounds, other=0.0) * LOG2E  # base 2, like the scores
        delta = tl.load(D + rows, mask=in_bounds, other=0.0)
        s_t = tl.dot(k, tl.trans(q), input_precision=DOT_PRECISION) * qk_scale  # (BLOCK_K, BLOCK_Q)
        if MASKED:
            s_t = tl.where(rows[None, :] >= cols[:, None], s_t, MASKED_SCORE_LOG2)
        p_t = tl.math.exp2(s_t - lse[None, :])  # the forward's probabilities, recomputed
        dv = tl.dot(p_t.to(do.dtype), do, dv, input_precision=DOT_PRECISION)
        dp_t = tl.dot(v, tl.trans(do), input_precision=DOT_PRECISION)  # (BLOCK_K, BLOCK_Q) = (dO Vᵀ)ᵀ
        ds_t = p_t * (dp_t - delta[None, :])
        dk = tl.dot(ds_t.to(q.dtype), q, dk, input_precision=DOT_PRECISION)
    return dk, dv
    # END SOLUTION


@triton.autotune(configs=DKDV_CONFIGS, key=TUNE_KEY, prune_configs_by=_prune("dkdv"))
@triton.jit
def _dkdv_kernel(
    Q, K, V, dO, L, D, dK, dV, seq_q, seq_k, qk_scale, sm_scale,
    HEAD_DIM: tl.constexpr, IS_CAUSAL: tl.constexpr, DOT_PRECISION: tl.constexpr,
    BLOCK_Q: tl.constexpr, BLOCK_K: tl.constexpr,
):
    """One program: dK and dV of one tile of BLOCK_K keys. Grid (cdiv(seq_k, BLOCK_K), batch).

    Q, dO (batch, seq_q, HEAD_DIM), K, V, dK, dV (batch, seq_k, HEAD_DIM), L, D (batch, seq_q).
    """
    # BEGIN SOLUTION problem=flash_triton
    b = tl.program_id(1).to(tl.int64)
    k0 = tl.program_id(0) * BLOCK_K
    cols = k0 + tl.arange(0, BLOCK_K)  # (BLOCK_K,) key positions
    dims = tl.arange(0, HEAD_DIM)
    kv_offsets = b * seq_k * HEAD_DIM + cols[:, None] * HEAD_DIM + dims[None, :]
    k = tl.load(K + kv_offsets, mask=cols[:, None] < seq_k, other=0.0)
    v = tl.load(V + kv_offsets, mask=cols[:, None] < seq_k, other=0.0)
    Q += b * seq_q * HEAD_DIM
    dO += b * seq_q * HEAD_DIM
    L += b * seq_q
    D += b * seq_q

    dk = tl.zeros([BLOCK_K, HEAD_DIM], tl.float32)
    dv = tl.zeros([BLOCK_K, HEAD_DIM], tl.float32)
    if IS_CAUSAL:
        # Queries before k0 see none of these keys: skip them. Query tiles that start at or after
        # k0 + BLOCK_K see all of them: no mask. Only the band in between needs the causal mask.
        start = k0 // BLOCK_Q * BLOCK_Q
        full_start = tl.minimum(tl.cdiv(k0 + BLOCK_K, BLOCK_Q) * BLOCK_Q, seq_q)
        dk, dv = _dkdv_tiles(
            dk, dv, k, v, Q, dO, L, D, cols, seq_q, qk_scale, start, full_start,
            HEAD_DIM, BLOCK_Q, True, DOT_PRECISION,
        )
    else:
        full_start = 0
    dk, dv = _dkdv_tiles(
        dk, dv, k, v, Q, dO, L, D, cols, seq_q, qk_scale, full_start, seq_q,
        HEAD_DIM, BLOCK_Q, False, DOT_PRECISION,
    )
    # Keys past seq_k were loaded as zeros and computed on, harmlessly: their rows are not stored.
    tl.store(dK + kv_offsets, (dk * sm_scale).to(dK.dtype.element_ty), mask=cols[:, None] < seq_k)
    tl.store(dV + kv_offsets, dv.to(dV.dtype.element_ty), mask=cols[:, None] < seq_k)
    # END SOLUTION


@triton.jit
def _dq_tiles(
    dq, q, do, lse, delta, K, V, rows, seq_k, qk_scale, start, end,
    HEAD_DIM: tl.constexpr, BLOCK_K: tl.constexpr, MASKED: tl.constexpr, IS_CAUSAL: tl.constexpr,
    DOT_PRECISION: tl.constexpr,
):
    """Accumulate dQ = dS K (scaled by the caller) of one query tile over the key tiles in ``[start, end)``.

    lse: the tile's L in base 2; delta: its D. MASKED tiles check bounds and causality.
    """
    # BEGIN SOLUTION problem=flash_triton
    dims = tl.arange(0, HEAD_DIM)
    for k0 in range(start, end, BLOCK_K):
        k0 = tl.multiple_of(k0, BLOCK_K)
        cols = k0 + tl.arange(0, BLOCK_K)
        offsets = cols[:, None] * HEAD_DIM + dims[None, :]
        if MASKED:
            k = tl.load(K + offsets, mask=cols[:, None] < seq_k, other=0.0)
            v = tl.load(V + offsets, mask=cols[:, None] < seq_k, other=0.0)
        else:
            k = tl.load(K + offsets)
            v = tl.load(V + offsets)
        s = tl.dot(q, tl.trans(k), input_precision=DOT_PRECISION) * qk_scale  # (BLOCK_Q, BLOCK_K)
        if MASKED:
            visible = cols[None, :] < seq_k  # a missing key's P would be exp(-L), not 0
            if IS_CAUSAL:
                visible = visible & (rows[:, None] >= cols[None, :])
            s = tl.where(visible, s, MASKED_SCORE_LOG2)
        p = tl.math.exp2(s - lse[:, None])
        dp = tl.dot(do, tl.trans(v), input_precision=DOT_PRECISION)  # (BLOCK_Q, BLOCK_K)
        ds = p * (dp - delta[:, None])
        dq = tl.dot(ds.to(k.dtype), k, dq, input_precision=DOT_PRECISION)
    return dq
    # END SOLUTION


@triton.autotune(configs=DQ_CONFIGS, key=TUNE_KEY, prune_configs_by=_prune("dq"))
@triton.jit
def _dq_kernel(
    Q, K, V, dO, L, D, dQ, seq_q, seq_k, qk_scale, sm_scale,
    HEAD_DIM: tl.constexpr, IS_CAUSAL: tl.constexpr, DOT_PRECISION: tl.constexpr,
    BLOCK_Q: tl.constexpr, BLOCK_K: tl.constexpr,
):
    """One program: dQ of one tile of BLOCK_Q queries. Grid (cdiv(seq_q, BLOCK_Q), batch)."""
    # BEGIN SOLUTION problem=flash_triton
    tile = tl.program_id(0)
    if IS_CAUSAL:
        tile = tl.num_programs(0) - 1 - tile  # long tiles first, as in the forward
    b = tl.program_id(1).to(tl.int64)
    q0 = tile * BLOCK_Q
    rows = q0 + tl.arange(0, BLOCK_Q)
    in_bounds = rows < seq_q
    q_offsets = b * seq_q * HEAD_DIM + rows[:, None] * HEAD_DIM + tl.arange(0, HEAD_DIM)[None, :]
    q = tl.load(Q + q_offsets, mask=in_bounds[:, None], other=0.0)
    do = tl.load(dO + q_offsets, mask=in_bounds[:, None], other=0.0)
    lse = tl.load(L + b * seq_q + rows, mask=in_bounds, other=0.0) * LOG2E
    delta = tl.load(D + b * seq_q + rows, mask=in_bounds, other=0.0)
    K += b * seq_k * HEAD_DIM
    V += b * seq_k * HEAD_DIM

    dq = tl.zeros([BLOCK_Q, HEAD_DIM], tl.float32)
    full_end, end = _key_range(q0, seq_k, BLOCK_Q, BLOCK_K, IS_CAUSAL)
    dq = _dq_tiles(
        dq, q, do, lse, delta, K, V, rows, seq_k, qk_scale, 0, full_end,
        HEAD_DIM, BLOCK_K, False, IS_CAUSAL, DOT_PRECISION,
    )
    dq = _dq_tiles(
        dq, q, do, lse, delta, K, V, rows, seq_k, qk_scale, full_end, end,
        HEAD_DIM, BLOCK_K, True, IS_CAUSAL, DOT_PRECISION,
    )
    tl.store(dQ + q_offsets, (dq * sm_scale).to(dQ.dtype.element_ty), mask=in_bounds[:, None])
    # END SOLUTION


# ------------------------------------------------------------------------------------------- host


def check_triton_inputs(Q: Tensor, K: Tensor, V: Tensor) -> None:
    """Raise ValueError for inputs the kernels do not handle (shapes, head size, dtype, device)."""
    check_shapes(Q, K, V)
    if Q.shape[-1] not in HEAD_DIMS:
        raise ValueError(f"the Triton kernels support head dimensions {HEAD_DIMS}, not {Q.shape[-1]}")
    if not Q.dtype == K.dtype == V.dtype or Q.dtype not in (torch.float32, torch.bfloat16, torch.float16):
        raise ValueError(f"Q, K, V must share one dtype among float32, bfloat16, float16; got {Q.dtype}, {K.dtype}, {V.dtype}")
    if not INTERPRET and not (Q.is_cuda and K.is_cuda and V.is_cuda):
        raise ValueError("compiled Triton kernels need CUDA tensors (set TRITON_INTERPRET=1 to run them on the CPU)")
    if INTERPRET and Q.dtype == torch.bfloat16:
        # Triton's interpreter (3.x) multiplies bfloat16 tiles as raw 16-bit integers: garbage, silently.
        raise ValueError("Triton's CPU interpreter cannot multiply bfloat16 tiles; use float32 or float16 on the CPU")


def _as_batch(x: Tensor) -> Tensor:
    """(..., seq, d) -> (batch, seq, d), contiguous: the layout the kernels index."""
    return x.reshape(-1, *x.shape[-2:]).contiguous()


def _precision(dtype: torch.dtype) -> str:
    """``tl.dot``'s input precision: full fp32 for float32 inputs (TF32 would round them to 10 bits)."""
    return "ieee" if dtype == torch.float32 else "tf32"


def flash_forward(Q: Tensor, K: Tensor, V: Tensor, is_causal: bool) -> tuple[Tensor, Tensor]:
    """Q (batch, seq_q, d), K, V (batch, seq_k, d), contiguous -> O (batch, seq_q, d), L (batch, seq_q) float32."""
    # BEGIN SOLUTION problem=flash_triton
    batch, seq_q, d = Q.shape
    out = torch.empty_like(Q)
    L = torch.empty(batch, seq_q, device=Q.device, dtype=torch.float32)
    grid = lambda meta: (triton.cdiv(seq_q, meta["BLOCK_Q"]), batch)  # noqa: E731
    _fwd_kernel[grid](
        Q, K, V, out, L, seq_q, K.shape[1], LOG2E.value / math.sqrt(d),
        HEAD_DIM=d, IS_CAUSAL=is_causal, DOT_PRECISION=_precision(Q.dtype),
    )
    return out, L
    # END SOLUTION


def flash_backward(
    Q: Tensor, K: Tensor, V: Tensor, out: Tensor, L: Tensor, dO: Tensor, is_causal: bool
) -> tuple[Tensor, Tensor, Tensor]:
    """Gradients dQ, dK, dV (shapes and dtypes of Q, K, V) from the forward's output and L.

    Q, out, dO (batch, seq_q, d), K, V (batch, seq_k, d), L (batch, seq_q); all contiguous.
    """
    # BEGIN SOLUTION problem=flash_triton
    batch, seq_q, d = Q.shape
    seq_k = K.shape[1]
    D = torch.empty_like(L)
    _delta_kernel[(triton.cdiv(seq_q, 64), batch)](out, dO, D, seq_q, HEAD_DIM=d, BLOCK_Q=64)
    dQ, dK, dV = torch.empty_like(Q), torch.empty_like(K), torch.empty_like(V)
    scale = 1.0 / math.sqrt(d)
    common = dict(HEAD_DIM=d, IS_CAUSAL=is_causal, DOT_PRECISION=_precision(Q.dtype))
    dkdv_grid = lambda meta: (triton.cdiv(seq_k, meta["BLOCK_K"]), batch)  # noqa: E731
    _dkdv_kernel[dkdv_grid](Q, K, V, dO, L, D, dK, dV, seq_q, seq_k, scale * LOG2E.value, scale, **common)
    dq_grid = lambda meta: (triton.cdiv(seq_q, meta["BLOCK_Q"]), batch)  # noqa: E731
    _dq_kernel[dq_grid](Q, K, V, dO, L, D, dQ, seq_q, seq_k, scale * LOG2E.value, scale, **common)
    return dQ, dK, dV
    # END SOLUTION


class FlashAttention2Triton(torch.autograd.Function):
    """FlashAttention-2 with Triton kernels for the forward and the backward.

    ``FlashAttention2Triton.apply(Q, K, V, is_causal=False)``: Q (..., seq_q, d), K and V (..., seq_k, d);
    returns O (..., seq_q, d). Saves Q, K, V, O and one extra tensor, L (..., seq_q) float32.
    """

    @staticmethod
    def forward(ctx: Any, Q: Tensor, K: Tensor, V: Tensor, is_causal: bool = False) -> Tensor:
        # BEGIN SOLUTION problem=flash_triton
        check_triton_inputs(Q, K, V)
        out, L = flash_forward(_as_batch(Q), _as_batch(K), _as_batch(V), is_causal)
        out, L = out.view(Q.shape), L.view(Q.shape[:-1])
        ctx.save_for_backward(Q, K, V, out, L)
        ctx.is_causal = is_causal
        return out
        # END SOLUTION

    @staticmethod
    def backward(ctx: Any, dO: Tensor) -> tuple[Tensor, Tensor, Tensor, None]:
        # BEGIN SOLUTION problem=flash_triton
        Q, K, V, out, L = ctx.saved_tensors
        dQ, dK, dV = flash_backward(
            _as_batch(Q), _as_batch(K), _as_batch(V), _as_batch(out), L.reshape(-1, L.shape[-1]), _as_batch(dO),
            ctx.is_causal,
        )
        return dQ.view(Q.shape), dK.view(K.shape), dV.view(V.shape), None
        # END SOLUTION
