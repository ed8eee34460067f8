"""The basics unit: a byte-level BPE tokenizer and a Transformer language model trained from scratch."""

from .bpe import train_bpe
from .checkpoint import load_checkpoint, save_checkpoint
from .data import get_batch, load_tokens
from .decoding import generate
from .model import (
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
from .nn_utils import cross_entropy, gradient_clipping, silu
from .optimizer import AdamW, get_lr_cosine_schedule
from .tokenizer import Tokenizer

__all__ = [
    "AdamW",
    "CausalMultiHeadSelfAttention",
    "Embedding",
    "Linear",
    "RMSNorm",
    "RotaryEmbedding",
    "SwiGLU",
    "Tokenizer",
    "TransformerBlock",
    "TransformerLM",
    "cross_entropy",
    "generate",
    "get_batch",
    "get_lr_cosine_schedule",
    "gradient_clipping",
    "load_checkpoint",
    "load_tokens",
    "save_checkpoint",
    "scaled_dot_product_attention",
    "silu",
    "softmax",
    "train_bpe",
]
