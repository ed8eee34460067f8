"""What a submission claims about its model, and how a board evaluates it: two pydantic models.

:class:`ModelConfig` is a submission's ``model_config.json``: the knobs of the reference
Transformer LM (``reference/basics/model.py``). It reads the file that
``reference/basics/train.py``'s ``export_weights`` writes as it is.

:class:`BoardRules` is the ``leaderboard:`` section of a ``unit.yaml``: the held-out text, the
fixed context and stride of the sliding window, and the limits. It imports nothing from the
grader, so ``grader/config.py`` can embed it without an import cycle.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

DATASET_NAME = r"^[a-z0-9][a-z0-9_.-]*$"  # as lmcourse.grader.data.catalog.Dataset.name


class _Strict(BaseModel):
    """Unknown keys are errors, types are not coerced ("12" is not 12), NaN and infinity are refused."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


class ModelConfig(_Strict):
    """The shape of a submitted model: ``model_config.json``."""

    vocab_size: int = Field(gt=0, le=1 << 20, description="Rows of the embedding table and of the output layer.")
    context_length: int = Field(gt=0, le=1 << 17, description="Longest input the model was trained on, in tokens.")
    d_model: int = Field(gt=0, le=1 << 16, description="Width of the residual stream.")
    num_layers: int = Field(gt=0, le=1024, description="Transformer blocks.")
    num_heads: int = Field(gt=0, le=1024, description="Attention heads per block; d_model / num_heads must be even.")
    d_ff: int = Field(gt=0, le=1 << 18, description="Inner width of the SwiGLU feed-forward network.")
    rope_theta: float = Field(gt=0, description="Base of the RoPE angles.")
    tie_embeddings: bool = Field(
        False, description="The output layer reuses token_embeddings.weight; the checkpoint has no lm_head.weight."
    )
    norm: Literal["pre", "post"] = Field(
        "pre", description="pre: x + f(norm(x)) as in the reference; post: norm(x + f(x)) as in the 2017 Transformer."
    )

    @model_validator(mode="after")
    def _head_size(self) -> ModelConfig:
        if self.d_model % self.num_heads:
            raise ValueError(f"d_model={self.d_model} is not divisible by num_heads={self.num_heads}")
        if (self.d_model // self.num_heads) % 2:
            head_size = self.d_model // self.num_heads
            raise ValueError(f"the head size d_model / num_heads = {head_size} must be even for RoPE")
        return self


class BoardRules(_Strict):
    """How a unit's leaderboard evaluates submissions, and what it accepts."""

    dataset: str = Field(
        "prose",
        pattern=DATASET_NAME,
        description="Dataset the held-out text comes from (`lmcourse data list`), read from DATA/<dataset>/<split>.txt "
        "as `lmcourse data prepare` writes it.",
    )
    split: Literal["valid", "train"] = Field("valid", description="The split evaluated.")
    tokenizer: str = Field(
        "gpt2-tokenizer",
        pattern=DATASET_NAME,
        description="Tokenizer used when a submission brings no vocab.json and merges.txt: "
        "DATA/<tokenizer>/encoder.json and vocab.bpe (`lmcourse data prepare gpt2-tokenizer`).",
    )
    context_length: int = Field(
        256, gt=0, le=1 << 17, description="Tokens in every evaluation window, the same for every entry."
    )
    stride: int = Field(
        128,
        gt=0,
        description="Tokens the sliding window advances by; each window scores only the tokens no earlier window "
        "scored, so every token is predicted once, from at least context_length - stride + 1 tokens after the first "
        "window.",
    )
    max_parameters: int = Field(100_000_000, gt=0, description="Most parameters a model may have (tied weights once).")
    max_checkpoint_mb: float = Field(400.0, gt=0, description="Largest model.safetensors accepted, in MiB.")
    max_eval_seconds: float = Field(900.0, gt=0, description="Wall-clock limit of one evaluation, tokenizing included.")
    max_eval_bytes: int = Field(
        500_000,
        gt=0,
        description="Cap on the evaluated text, in UTF-8 bytes: the split's documents in sha256 order (a fixed "
        "sample across its sources), as many as fit.",
    )
    daily_quota: int = Field(10, ge=0, description="Submissions a student may make per UTC day.")
    allow_custom_code: bool = Field(
        False, description="Accept model code of the student's own (run in the sandbox; entries stay unverified)."
    )

    @model_validator(mode="after")
    def _stride_fits(self) -> BoardRules:
        if self.stride > self.context_length:
            raise ValueError(f"stride={self.stride} is longer than context_length={self.context_length}")
        return self
