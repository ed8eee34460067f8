"""A decoder-only Transformer language model, built from its parts.

Pre-norm blocks (RMSNorm), causal multi-head self-attention with rotary position
embeddings (RoPE) and a SwiGLU feed-forward network, as in LLaMA. Every module names its
parameters exactly as the keys of the state dicts the tests load, e.g. ``layers.0.attn.q_proj.weight``.

Shapes use ``batch``, ``seq`` (tokens), ``heads``, ``d_model``, ``d_k = d_model / heads``,
``d_ff`` and ``vocab``; ``...`` stands for any number of leading dimensions.

The code runs in fp32 or under bf16 autocast: normalisation and softmax upcast to fp32 on
their own. It avoids Python loops over heads or positions and data-dependent control flow,
so ``torch.compile`` captures a whole forward pass as one graph.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .nn_utils import at_least_fp32, silu


class Linear(nn.Module):
    """``y = x Wᵀ`` without bias. weight: (out_features, in_features)."""

    def __init__(
        self, in_features: int, out_features: int, device: torch.device | None = None, dtype: torch.dtype | None = None
    ) -> None:
        super().__init__()
        # BEGIN SOLUTION problem=linear
        self.weight = nn.Parameter(torch.empty(out_features, in_features, device=device, dtype=dtype))
        # Variance 2 / (fan_in + fan_out) keeps activations and gradients at a similar scale
        # through depth; truncating at 3 std removes rare huge initial weights.
        std = math.sqrt(2.0 / (in_features + out_features))
        nn.init.trunc_normal_(self.weight, mean=0.0, std=std, a=-3 * std, b=3 * std)
        # END SOLUTION

    def forward(self, x: Tensor) -> Tensor:
        """x: (..., in_features) -> (..., out_features)."""
        # BEGIN SOLUTION problem=linear
        return x @ self.weight.T
        # END SOLUTION


class Embedding(nn.Module):
    """A lookup table of one learned vector per token id. weight: (num_embeddings, embedding_dim)."""

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        device: torch.device | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        # BEGIN SOLUTION problem=embedding
        self.weight = nn.Parameter(torch.empty(num_embeddings, embedding_dim, device=device, dtype=dtype))
        nn.init.trunc_normal_(self.weight, mean=0.0, std=1.0, a=-3.0, b=3.0)
        # END SOLUTION

    def forward(self, token_ids: Tensor) -> Tensor:
        """token_ids: (...) integer -> (..., embedding_dim)."""
        # BEGIN SOLUTION problem=embedding
        return self.weight[token_ids]
        # END SOLUTION


class RMSNorm(nn.Module):
    """Root-mean-square normalisation with a learned gain: ``x / sqrt(mean(x²) + eps) * g``. weight: (d_model,)."""

    def __init__(
        self, d_model: int, eps: float = 1e-5, device: torch.device | None = None, dtype: torch.dtype | None = None
    ) -> None:
        super().__init__()
        # BEGIN SOLUTION problem=rmsnorm
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d_model, device=device, dtype=dtype))
        # END SOLUTION

    def forward(self, x: Tensor) -> Tensor:
        """x: (..., d_model) -> (..., d_model), in the dtype of ``x``."""
        # BEGIN SOLUTION problem=rmsnorm
        x32 = at_least_fp32(x)  # squares of fp16 values overflow, and bf16 means are imprecise
        inv_rms = torch.rsqrt(x32.pow(2).mean(dim=-1, keepdim=True) + self.eps)  # (..., 1)
        return (x32 * inv_rms * self.weight).to(x.dtype)
        # END SOLUTION


class SwiGLU(nn.Module):
    """The gated feed-forward network ``W2(SiLU(W1 x) ⊙ W3 x)``.

    w1, w3: (d_ff, d_model); w2: (d_model, d_ff). With d_ff ≈ 8/3 d_model it costs as
    much as a plain 4 d_model MLP.
    """

    def __init__(
        self, d_model: int, d_ff: int, device: torch.device | None = None, dtype: torch.dtype | None = None
    ) -> None:
        super().__init__()
        # BEGIN SOLUTION problem=swiglu
        self.w1 = Linear(d_model, d_ff, device=device, dtype=dtype)
        self.w2 = Linear(d_ff, d_model, device=device, dtype=dtype)
        self.w3 = Linear(d_model, d_ff, device=device, dtype=dtype)
        # END SOLUTION

    def forward(self, x: Tensor) -> Tensor:
        """x: (..., d_model) -> (..., d_model)."""
        # BEGIN SOLUTION problem=swiglu
        return self.w2(silu(self.w1(x)) * self.w3(x))
        # END SOLUTION


class RotaryEmbedding(nn.Module):
    """Rotary position embedding (RoPE) for vectors of size ``d_k``.

    Each adjacent pair ``(x[2i], x[2i+1])`` of a query or key at position ``p`` is rotated by
    the angle ``p · theta^(-2i/d_k)``: low ``i`` turn fast, high ``i`` slowly. Dot products of
    rotated queries and keys then depend only on their relative position. The cosines and
    sines for positions ``0 .. max_seq_len-1`` are computed once, as buffers that follow the
    module to its device but are not saved in the state dict.
    """

    def __init__(self, theta: float, d_k: int, max_seq_len: int, device: torch.device | None = None) -> None:
        super().__init__()
        # BEGIN SOLUTION problem=rope
        if d_k % 2:
            raise ValueError(f"RoPE rotates pairs of dimensions; d_k={d_k} must be even")
        # float64 for the table: in fp32, angles at position ~10^4 would be off by ~1e-3 rad.
        inv_freq = theta ** (-torch.arange(0, d_k, 2, dtype=torch.float64) / d_k)  # (d_k/2,)
        angles = torch.outer(torch.arange(max_seq_len, dtype=torch.float64), inv_freq)  # (max_seq_len, d_k/2)
        self.register_buffer("cos", angles.cos().to(device=device, dtype=torch.float32), persistent=False)
        self.register_buffer("sin", angles.sin().to(device=device, dtype=torch.float32), persistent=False)
        # END SOLUTION

    def forward(self, x: Tensor, token_positions: Tensor) -> Tensor:
        """x: (..., seq, d_k); token_positions: (..., seq) integers, broadcastable against x's leading dims.

        Returns (..., seq, d_k) in the dtype of ``x``.
        """
        # BEGIN SOLUTION problem=rope
        cos = self.cos[token_positions]  # (..., seq, d_k/2)
        sin = self.sin[token_positions]
        pairs = x.unflatten(-1, (-1, 2))  # (..., seq, d_k/2, 2): the pairs to rotate
        even, odd = pairs[..., 0], pairs[..., 1]  # (..., seq, d_k/2) each
        rotated = torch.stack((even * cos - odd * sin, even * sin + odd * cos), dim=-1)
        return rotated.flatten(-2).to(x.dtype)
        # END SOLUTION


def softmax(x: Tensor, dim: int) -> Tensor:
    """Softmax along ``dim``, in the dtype of ``x``; stable for huge values and ``-inf`` entries."""
    # BEGIN SOLUTION problem=softmax
    shifted = at_least_fp32(x) - x.amax(dim=dim, keepdim=True)  # exp(x - max) <= 1 cannot overflow
    exp = shifted.exp()
    return (exp / exp.sum(dim=dim, keepdim=True)).to(x.dtype)
    # END SOLUTION


def scaled_dot_product_attention(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None) -> Tensor:
    """``softmax(q kᵀ / sqrt(d_k)) v``.

    q: (..., queries, d_k); k: (..., keys, d_k); v: (..., keys, d_v);
    mask: (..., queries, keys) bool, True where a query may attend to a key, or None.
    Returns (..., queries, d_v).
    """
    # BEGIN SOLUTION problem=scaled_dot_product_attention
    # Scores in fp32 even under bf16 autocast: the softmax needs the precision, and
    # torch.compile (2.11) differentiates -inf-masked bf16 scores into NaN gradients.
    scores = at_least_fp32(q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])  # (..., queries, keys)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))  # exp(-inf) = 0: no weight at all
    return softmax(scores, dim=-1).to(v.dtype) @ v
    # END SOLUTION


class CausalMultiHeadSelfAttention(nn.Module):
    """Causal self-attention with ``num_heads`` heads of size ``d_k = d_model / num_heads``.

    Head ``h`` uses rows ``h·d_k .. (h+1)·d_k`` of each projection, so all heads are computed
    by one matrix product per projection. Queries and keys are rotated by ``rope`` when given.
    Parameters: q_proj, k_proj, v_proj, output_proj, each (d_model, d_model).
    """

    def __init__(
        self,
        d_model: int,
        num_heads: int,
        rope: RotaryEmbedding | None = None,
        device: torch.device | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        # BEGIN SOLUTION problem=multihead_self_attention
        if d_model % num_heads:
            raise ValueError(f"d_model={d_model} is not divisible by num_heads={num_heads}")
        self.num_heads = num_heads
        self.q_proj = Linear(d_model, d_model, device=device, dtype=dtype)
        self.k_proj = Linear(d_model, d_model, device=device, dtype=dtype)
        self.v_proj = Linear(d_model, d_model, device=device, dtype=dtype)
        self.output_proj = Linear(d_model, d_model, device=device, dtype=dtype)
        self.rope = rope
        # END SOLUTION

    def forward(self, x: Tensor, token_positions: Tensor | None = None) -> Tensor:
        """x: (..., seq, d_model); token_positions: (..., seq), default ``0 .. seq-1``.

        Returns (..., seq, d_model).
        """
        # BEGIN SOLUTION problem=multihead_self_attention
        seq = x.shape[-2]
        q = self._split_heads(self.q_proj(x))  # (..., heads, seq, d_k)
        k = self._split_heads(self.k_proj(x))
        v = self._split_heads(self.v_proj(x))
        if self.rope is not None:
            if token_positions is None:
                token_positions = torch.arange(seq, device=x.device)
            positions = token_positions.unsqueeze(-2)  # (..., 1, seq): every head sees the same positions
            q = self.rope(q, positions)
            k = self.rope(k, positions)
        causal = torch.ones(seq, seq, dtype=torch.bool, device=x.device).tril()  # (seq, seq): key <= query
        out = scaled_dot_product_attention(q, k, v, causal)  # (..., heads, seq, d_k)
        return self.output_proj(out.transpose(-3, -2).flatten(-2))  # heads back side by side
        # END SOLUTION

    def _split_heads(self, x: Tensor) -> Tensor:
        """(..., seq, d_model) -> (..., heads, seq, d_k)."""
        # BEGIN SOLUTION problem=multihead_self_attention
        return x.unflatten(-1, (self.num_heads, -1)).transpose(-3, -2)
        # END SOLUTION


class TransformerBlock(nn.Module):
    """A pre-norm block: ``x + attn(ln1(x))``, then ``+ ffn(ln2(·))``.

    Normalising only the input of each sub-layer leaves the residual stream an identity
    path from the embeddings to the output, which keeps deep stacks trainable.
    """

    def __init__(
        self,
        d_model: int,
        num_heads: int,
        d_ff: int,
        max_seq_len: int,
        theta: float,
        device: torch.device | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        # BEGIN SOLUTION problem=transformer_block
        rope = RotaryEmbedding(theta, d_model // num_heads, max_seq_len, device=device)
        self.ln1 = RMSNorm(d_model, device=device, dtype=dtype)
        self.attn = CausalMultiHeadSelfAttention(d_model, num_heads, rope, device=device, dtype=dtype)
        self.ln2 = RMSNorm(d_model, device=device, dtype=dtype)
        self.ffn = SwiGLU(d_model, d_ff, device=device, dtype=dtype)
        # END SOLUTION

    def forward(self, x: Tensor, token_positions: Tensor | None = None) -> Tensor:
        """x: (..., seq, d_model); token_positions: (..., seq) or None -> (..., seq, d_model)."""
        # BEGIN SOLUTION problem=transformer_block
        x = x + self.attn(self.ln1(x), token_positions)
        return x + self.ffn(self.ln2(x))
        # END SOLUTION


class TransformerLM(nn.Module):
    """Token embeddings, ``num_layers`` Transformer blocks, a final RMSNorm and an output projection.

    Parameters: token_embeddings (vocab, d_model); layers.{i}.*; ln_final (d_model,);
    lm_head (vocab, d_model). Inputs may be shorter than ``context_length``, never longer.
    """

    def __init__(
        self,
        vocab_size: int,
        context_length: int,
        d_model: int,
        num_layers: int,
        num_heads: int,
        d_ff: int,
        rope_theta: float,
        device: torch.device | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.context_length = context_length
        # BEGIN SOLUTION problem=transformer_lm
        self.token_embeddings = Embedding(vocab_size, d_model, device=device, dtype=dtype)
        self.layers = nn.ModuleList(
            TransformerBlock(d_model, num_heads, d_ff, context_length, rope_theta, device=device, dtype=dtype)
            for _ in range(num_layers)
        )
        self.ln_final = RMSNorm(d_model, device=device, dtype=dtype)
        self.lm_head = Linear(d_model, vocab_size, device=device, dtype=dtype)
        # END SOLUTION

    def forward(self, token_ids: Tensor) -> Tensor:
        """token_ids: (batch, seq) with seq <= context_length -> logits (batch, seq, vocab)."""
        # BEGIN SOLUTION problem=transformer_lm
        if token_ids.shape[-1] > self.context_length:
            raise ValueError(f"{token_ids.shape[-1]} tokens exceed the context length {self.context_length}")
        x = self.token_embeddings(token_ids)  # (batch, seq, d_model)
        for layer in self.layers:
            x = layer(x)
        return self.lm_head(self.ln_final(x))
        # END SOLUTION
