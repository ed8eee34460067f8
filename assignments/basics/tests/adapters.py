"""Adapters: the glue between the basics tests and your package.

Each function takes primitive arguments and tensors, calls into ``lmc_basics`` and returns
plain results. Fill in the bodies marked below; the logic belongs in your package.
"""

from __future__ import annotations

# ---- tokenizer adapters ----

from pathlib import Path  # noqa: E402  (each section of this file keeps its own imports)
from typing import Any  # noqa: E402

from lmc_basics.bpe import train_bpe  # noqa: E402
from lmc_basics.tokenizer import Tokenizer  # noqa: E402


def get_tokenizer(
    vocab: dict[int, bytes], merges: list[tuple[bytes, bytes]], special_tokens: list[str] | None = None
) -> Tokenizer:
    """A tokenizer with ``encode``, ``decode`` and ``encode_iterable``.

    vocab: id -> token bytes; merges: merged pairs in creation order; special_tokens: strings
    that always encode to one id (added to the vocabulary if missing).
    """
    # BEGIN SOLUTION problem=tokenizer
    return Tokenizer(vocab, merges, special_tokens)
    # END SOLUTION


def get_tokenizer_from_files(
    vocab_path: str | Path, merges_path: str | Path, special_tokens: list[str] | None = None
) -> Tokenizer:
    """A tokenizer loaded from GPT-2's file formats: ``encoder.json`` and ``vocab.bpe``."""
    # BEGIN SOLUTION problem=tokenizer
    return Tokenizer.from_files(vocab_path, merges_path, special_tokens)
    # END SOLUTION


def run_train_bpe(
    input_path: str | Path, vocab_size: int, special_tokens: list[str], **kwargs: Any
) -> tuple[dict[int, bytes], list[tuple[bytes, bytes]]]:
    """Train byte-level BPE on a text file; returns ``(vocab, merges)``.

    vocab: id -> token bytes, ``vocab_size`` entries counting the special tokens, the 256
    bytes and the merges; merges: the merged pairs of bytes, in creation order.
    """
    # BEGIN SOLUTION problem=train_bpe
    return train_bpe(input_path, vocab_size, special_tokens, **kwargs)
    # END SOLUTION


# ---- model and training adapters ----

import os  # noqa: E402  (each section of this file keeps its own imports)
from collections.abc import Iterable  # noqa: E402
from typing import IO  # noqa: E402

import numpy as np  # noqa: E402
import numpy.typing as npt  # noqa: E402
import torch  # noqa: E402
from torch import Tensor  # noqa: E402

from lmc_basics.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from lmc_basics.data import get_batch  # noqa: E402
from lmc_basics.decoding import generate  # noqa: E402
from lmc_basics.model import (  # noqa: E402
    CausalMultiHeadSelfAttention,
    Embedding,
    Linear,
    RMSNorm,
    RotaryEmbedding,
    SwiGLU,
    TransformerBlock,
    TransformerLM,
    scaled_dot_product_attention,
    softmax,
)
from lmc_basics.nn_utils import cross_entropy, gradient_clipping, silu  # noqa: E402
from lmc_basics.optimizer import AdamW, get_lr_cosine_schedule  # noqa: E402


def run_linear(d_in: int, d_out: int, weights: Tensor, in_features: Tensor) -> Tensor:
    """weights: (d_out, d_in); in_features: (..., d_in) -> (..., d_out)."""
    # BEGIN SOLUTION problem=linear
    linear = Linear(d_in, d_out)
    linear.load_state_dict({"weight": weights})
    return linear(in_features)
    # END SOLUTION


def run_embedding(vocab_size: int, d_model: int, weights: Tensor, token_ids: Tensor) -> Tensor:
    """weights: (vocab_size, d_model); token_ids: (...) -> (..., d_model)."""
    # BEGIN SOLUTION problem=embedding
    embedding = Embedding(vocab_size, d_model)
    embedding.load_state_dict({"weight": weights})
    return embedding(token_ids)
    # END SOLUTION


def run_swiglu(
    d_model: int, d_ff: int, w1_weight: Tensor, w2_weight: Tensor, w3_weight: Tensor, in_features: Tensor
) -> Tensor:
    """w1, w3: (d_ff, d_model); w2: (d_model, d_ff); in_features: (..., d_model) -> (..., d_model)."""
    # BEGIN SOLUTION problem=swiglu
    ffn = SwiGLU(d_model, d_ff)
    ffn.load_state_dict({"w1.weight": w1_weight, "w2.weight": w2_weight, "w3.weight": w3_weight})
    return ffn(in_features)
    # END SOLUTION


def run_scaled_dot_product_attention(Q: Tensor, K: Tensor, V: Tensor, mask: Tensor | None = None) -> Tensor:
    """Q: (..., queries, d_k); K: (..., keys, d_k); V: (..., keys, d_v); mask: (..., queries, keys) bool."""
    # BEGIN SOLUTION problem=scaled_dot_product_attention
    return scaled_dot_product_attention(Q, K, V, mask)
    # END SOLUTION


def run_multihead_self_attention(
    d_model: int,
    num_heads: int,
    q_proj_weight: Tensor,
    k_proj_weight: Tensor,
    v_proj_weight: Tensor,
    o_proj_weight: Tensor,
    in_features: Tensor,
) -> Tensor:
    """Causal MHA without RoPE; each weight (d_model, d_model); in_features: (..., seq, d_model)."""
    # BEGIN SOLUTION problem=multihead_self_attention
    attn = CausalMultiHeadSelfAttention(d_model, num_heads)
    attn.load_state_dict({
        "q_proj.weight": q_proj_weight,
        "k_proj.weight": k_proj_weight,
        "v_proj.weight": v_proj_weight,
        "output_proj.weight": o_proj_weight,
    })
    return attn(in_features)
    # END SOLUTION


def run_multihead_self_attention_with_rope(
    d_model: int,
    num_heads: int,
    max_seq_len: int,
    theta: float,
    q_proj_weight: Tensor,
    k_proj_weight: Tensor,
    v_proj_weight: Tensor,
    o_proj_weight: Tensor,
    in_features: Tensor,
    token_positions: Tensor | None = None,
) -> Tensor:
    """Causal MHA with RoPE on queries and keys; token_positions: (..., seq) or None for 0..seq-1."""
    # BEGIN SOLUTION problem=multihead_self_attention
    rope = RotaryEmbedding(theta, d_model // num_heads, max_seq_len)
    attn = CausalMultiHeadSelfAttention(d_model, num_heads, rope)
    attn.load_state_dict({
        "q_proj.weight": q_proj_weight,
        "k_proj.weight": k_proj_weight,
        "v_proj.weight": v_proj_weight,
        "output_proj.weight": o_proj_weight,
    })
    return attn(in_features, token_positions)
    # END SOLUTION


def run_rope(d_k: int, theta: float, max_seq_len: int, in_query_or_key: Tensor, token_positions: Tensor) -> Tensor:
    """in_query_or_key: (..., seq, d_k); token_positions: (..., seq) -> (..., seq, d_k)."""
    # BEGIN SOLUTION problem=rope
    rope = RotaryEmbedding(theta, d_k, max_seq_len)
    return rope(in_query_or_key, token_positions)
    # END SOLUTION


def run_transformer_block(
    d_model: int,
    num_heads: int,
    d_ff: int,
    max_seq_len: int,
    theta: float,
    weights: dict[str, Tensor],
    in_features: Tensor,
) -> Tensor:
    """weights: keys ``attn.q_proj.weight`` ... ``ln2.weight``; in_features: (batch, seq, d_model)."""
    # BEGIN SOLUTION problem=transformer_block
    block = TransformerBlock(d_model, num_heads, d_ff, max_seq_len, theta)
    block.load_state_dict(weights)
    return block(in_features)
    # END SOLUTION


def run_transformer_lm(
    vocab_size: int,
    context_length: int,
    d_model: int,
    num_layers: int,
    num_heads: int,
    d_ff: int,
    rope_theta: float,
    weights: dict[str, Tensor],
    in_indices: Tensor,
) -> Tensor:
    """weights: keys ``token_embeddings.weight``, ``layers.{i}.*``, ``ln_final.weight``, ``lm_head.weight``.

    in_indices: (batch, seq) with seq <= context_length -> logits (batch, seq, vocab_size).
    """
    # BEGIN SOLUTION problem=transformer_lm
    lm = TransformerLM(vocab_size, context_length, d_model, num_layers, num_heads, d_ff, rope_theta)
    lm.load_state_dict(weights)
    return lm(in_indices)
    # END SOLUTION


def run_rmsnorm(d_model: int, eps: float, weights: Tensor, in_features: Tensor) -> Tensor:
    """weights: (d_model,); in_features: (..., d_model) -> same shape and dtype."""
    # BEGIN SOLUTION problem=rmsnorm
    norm = RMSNorm(d_model, eps)
    norm.load_state_dict({"weight": weights})
    return norm(in_features)
    # END SOLUTION


def run_silu(in_features: Tensor) -> Tensor:
    # BEGIN SOLUTION problem=silu
    return silu(in_features)
    # END SOLUTION


def run_get_batch(
    dataset: npt.NDArray[np.integer], batch_size: int, context_length: int, device: str
) -> tuple[Tensor, Tensor]:
    """dataset: (n,) token ids -> (x, y), each (batch_size, context_length) int64 on ``device``."""
    # BEGIN SOLUTION problem=get_batch
    return get_batch(dataset, batch_size, context_length, device)
    # END SOLUTION


def run_softmax(in_features: Tensor, dim: int) -> Tensor:
    # BEGIN SOLUTION problem=softmax
    return softmax(in_features, dim)
    # END SOLUTION


def run_cross_entropy(inputs: Tensor, targets: Tensor) -> Tensor:
    """inputs: (batch, vocab) logits; targets: (batch,) ids -> scalar mean loss."""
    # BEGIN SOLUTION problem=cross_entropy
    return cross_entropy(inputs, targets)
    # END SOLUTION


def run_gradient_clipping(parameters: Iterable[torch.nn.Parameter], max_l2_norm: float) -> None:
    """Clip the gradients of ``parameters`` in place to a joint L2 norm of at most ``max_l2_norm``."""
    # BEGIN SOLUTION problem=gradient_clipping
    gradient_clipping(parameters, max_l2_norm)
    # END SOLUTION


def get_adamw_cls() -> type[torch.optim.Optimizer]:
    # BEGIN SOLUTION problem=adamw
    return AdamW
    # END SOLUTION


def run_get_lr_cosine_schedule(
    it: int, max_learning_rate: float, min_learning_rate: float, warmup_iters: int, cosine_cycle_iters: int
) -> float:
    # BEGIN SOLUTION problem=lr_schedule
    return get_lr_cosine_schedule(it, max_learning_rate, min_learning_rate, warmup_iters, cosine_cycle_iters)
    # END SOLUTION


def run_save_checkpoint(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    iteration: int,
    out: str | os.PathLike[str] | IO[bytes],
) -> None:
    # BEGIN SOLUTION problem=checkpointing
    save_checkpoint(model, optimizer, iteration, out)
    # END SOLUTION


def run_load_checkpoint(
    src: str | os.PathLike[str] | IO[bytes], model: torch.nn.Module, optimizer: torch.optim.Optimizer
) -> int:
    """Restore ``model`` and ``optimizer`` from ``src``; returns the saved iteration."""
    # BEGIN SOLUTION problem=checkpointing
    return load_checkpoint(src, model, optimizer)
    # END SOLUTION


def run_generate(
    model: torch.nn.Module,
    prompt_ids: list[int],
    max_new_tokens: int,
    temperature: float,
    top_p: float,
    eos_id: int | None,
    generator: torch.Generator | None = None,
) -> list[int]:
    """The new token ids (end-of-text included when reached); temperature 0 means greedy."""
    # BEGIN SOLUTION problem=decoding
    return generate(model, prompt_ids, max_new_tokens, temperature, top_p, eos_id, generator)
    # END SOLUTION
