"""What a unit benchmarks: the ``benchmarks:`` list of ``unit.yaml``, as pydantic models.

One entry times one problem (of kind ``benchmark``): the adapter that returns the student's
implementation, the cases (shapes, dtype, which passes), what the time is compared with, the
correctness tolerance and the bands that turn a time ratio into a share of the points::

    benchmarks:
      - problem: flash_speed
        adapter: get_flashattention_autograd_function_triton
        compare_to: reference          # the staff implementation, timed in the same run
        baselines: [sdpa]              # also timed and shown, never scored
        bands: {full_at: 1.1, zero_at: 4.0}
        cases:
          - {name: fwd_bwd_s16k_d64, heads: 16, seq: 16384, head_dim: 64, weight: 2}
          - {name: fwd_s16k_d64, heads: 16, seq: 16384, head_dim: 64, passes: forward}

The FLOP and byte counts of a case live here too: the grader derives the physical floor from them
(:mod:`.peaks`), on the trusted side, from nothing the student's process reports.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..errors import ConfigError

IDENTIFIER = r"^[a-z][a-z0-9_]*$"
DType = Literal["bfloat16", "float16", "float32"]
Passes = Literal["forward", "forward_backward"]
ELEMENT_BYTES = {"bfloat16": 2, "float16": 2, "float32": 4}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Bands(_Strict):
    """Ratio (submission time / compared time) to a share of the points: full, then linear to nothing."""

    full_at: float = Field(1.1, gt=0, description="At or below this ratio a case earns all its points.")
    zero_at: float = Field(4.0, gt=0, description="At or above this ratio a case earns nothing; linear in between.")

    @model_validator(mode="after")
    def _ordered(self) -> Bands:
        if self.zero_at <= self.full_at:
            raise ValueError(f"zero_at ({self.zero_at:g}) must be larger than full_at ({self.full_at:g})")
        return self

    def fraction(self, ratio: float) -> float:
        """The share of a case's points a time ``ratio`` earns, in [0, 1]."""
        if ratio <= self.full_at:
            return 1.0
        if ratio >= self.zero_at:
            return 0.0
        return (self.zero_at - ratio) / (self.zero_at - self.full_at)


class Tolerance(_Strict):
    """How far an output may be from the fp32 truth, per tensor (relative, so any scale works)."""

    rel_l2: float = Field(gt=0, description="Most ||got - want|| / ||want|| allowed.")
    rel_max: float = Field(gt=0, description="Most max|got - want| / max|want| allowed (catches a few wrong rows).")


#: Defaults per dtype. bf16 keeps 8 bits of mantissa (relative error 2^-8 per element); fp32 kernels
#: may run their matmuls in TF32 (10 bits).
DEFAULT_TOLERANCES: dict[str, Tolerance] = {
    "bfloat16": Tolerance(rel_l2=2e-2, rel_max=1e-1),
    "float16": Tolerance(rel_l2=1e-2, rel_max=5e-2),
    "float32": Tolerance(rel_l2=5e-3, rel_max=5e-2),
}


class AttentionCase(_Strict):
    """Attention on Q, K, V of shape (batch * heads, seq, head_dim), as the adapter contract has it."""

    name: str = Field(pattern=IDENTIFIER, description="Shown in tables and in results.json.")
    batch: int = Field(1, ge=1)
    heads: int = Field(16, ge=1)
    seq: int = Field(ge=1, description="Sequence length of queries and keys.")
    head_dim: int = Field(ge=1)
    causal: bool = True
    dtype: DType = "bfloat16"
    passes: Passes = Field("forward_backward", description="What one timed iteration runs.")
    weight: float = Field(1.0, gt=0, description="Share of the problem's points, relative to the other cases.")

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.batch * self.heads, self.seq, self.head_dim)

    @property
    def backward(self) -> bool:
        return self.passes == "forward_backward"

    def label(self) -> str:
        """``b1 h16 s16384 d64 causal bf16 fwd+bwd``: the case in one line."""
        dtype = {"bfloat16": "bf16", "float16": "fp16", "float32": "fp32"}[self.dtype]
        causal = "causal" if self.causal else "full"
        passes = "fwd+bwd" if self.backward else "fwd"
        return f"b{self.batch} h{self.heads} s{self.seq} d{self.head_dim} {causal} {dtype} {passes}"

    def _matmul_flops(self) -> float:
        """One (seq x head_dim) @ (head_dim x seq) product over every head: 2 FLOPs per multiply-add.

        Causal attention needs only the lower triangle: half of it (a little less than the
        (seq + 1) / (2 seq) exactly needed, which keeps the floor on the safe side)."""
        flops = 2.0 * self.batch * self.heads * self.seq * self.seq * self.head_dim
        return flops / 2 if self.causal else flops

    def flops(self) -> float:
        """FLOPs as FlashAttention-2 counts them for TFLOP/s: forward 2 products, backward 5 (P recomputed)."""
        return self._matmul_flops() * (7 if self.backward else 2)

    def floor_flops(self) -> float:
        """The fewest FLOPs any exact algorithm needs: forward 2 products, backward 4 (none recomputed)."""
        return self._matmul_flops() * (6 if self.backward else 2)

    def floor_bytes(self) -> float:
        """The fewest bytes any algorithm moves: read Q, K, V (and dO), write O (and dQ, dK, dV)."""
        tensors = 8 if self.backward else 4
        batch_heads, seq, head_dim = self.shape
        return float(tensors * batch_heads * seq * head_dim * ELEMENT_BYTES[self.dtype])


class BenchmarkSpec(_Strict):
    """One entry of ``benchmarks:`` in ``unit.yaml``: how one problem of kind ``benchmark`` is timed."""

    problem: str = Field(pattern=IDENTIFIER, description="The problem of kind 'benchmark' this entry scores.")
    workload: Literal["attention"] = Field(
        "attention", description="What is timed; 'attention': apply(Q, K, V, is_causal) forward (and backward)."
    )
    adapter: str = Field(
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="Adapter of tests/adapters.py returning the implementation (an autograd Function class).",
    )
    compare_to: str = Field(
        "reference",
        description="What the time is divided by: 'reference' (the staff implementation) or a baseline name.",
    )
    baselines: list[Literal["sdpa"]] = Field(
        ["sdpa"],
        description="Library implementations timed beside it ('sdpa': torch's scaled_dot_product_attention).",
    )
    bands: Bands = Field(default_factory=Bands)
    tolerance: dict[DType, Tolerance] = Field(
        default_factory=dict, description="Per dtype, overriding the defaults (bf16 rel_l2 0.02, rel_max 0.1)."
    )
    iters: int = Field(50, ge=5, le=10_000, description="Timed iterations per case (median and IQR over them).")
    warmup: int = Field(10, ge=1, le=1000, description="Untimed iterations first (compilation, autotuning).")
    timeout_s: float = Field(600, gt=0, description="Wall-clock limit of each benchmark process, in seconds.")
    cases: list[AttentionCase] = Field(min_length=1)

    @field_validator("cases")
    @classmethod
    def _unique_cases(cls, cases: list[AttentionCase]) -> list[AttentionCase]:
        seen: set[str] = set()
        for case in cases:
            if case.name in seen:
                raise ValueError(f"case {case.name!r} is listed twice")
            seen.add(case.name)
        return cases

    @model_validator(mode="after")
    def _compare_to_known(self) -> BenchmarkSpec:
        if self.compare_to != "reference" and self.compare_to not in self.baselines:
            known = ", ".join(["reference", *self.baselines])
            raise ValueError(f"compare_to {self.compare_to!r} must be one of: {known}")
        return self

    def tolerance_for(self, dtype: str) -> Tolerance:
        return self.tolerance.get(dtype, DEFAULT_TOLERANCES[dtype])  # type: ignore[call-overload]

    @property
    def total_weight(self) -> float:
        return sum(c.weight for c in self.cases)


def parse_benchmarks(data: Any, source: str) -> list[BenchmarkSpec]:
    """Validate a ``benchmarks:`` list; any problem is one :class:`ConfigError` sentence naming ``source``."""
    from ..config import describe_validation_error

    if not isinstance(data, list):
        raise ConfigError(f"{source}: field 'benchmarks' must be a list, got {type(data).__name__}.")
    specs = []
    for index, entry in enumerate(data):
        try:
            specs.append(BenchmarkSpec.model_validate(entry))
        except ValidationError as exc:
            raise ConfigError(describe_validation_error(f"{source} (benchmarks.{index})", exc)) from None
    return specs


def unit_benchmarks(config: Any, problem: str | None = None) -> list[BenchmarkSpec]:
    """The benchmarks a unit's config declares (``UnitConfig.benchmarks``), optionally of one problem.

    Every entry must name a problem of kind ``benchmark``; ``problem`` must be one of them.
    """
    specs: list[BenchmarkSpec] = list(getattr(config, "benchmarks", None) or [])
    kinds = {p.name: getattr(p.kind, "value", p.kind) for p in config.problems}
    for spec in specs:
        if kinds.get(spec.problem) != "benchmark":
            raise ConfigError(f"unit '{config.name}': benchmark of '{spec.problem}' names no problem of kind 'benchmark'.")
    if problem is None:
        return specs
    chosen = [s for s in specs if s.problem == problem]
    if not chosen:
        known = ", ".join(s.problem for s in specs) or "none"
        raise ConfigError(f"unit '{config.name}' has no benchmark for problem '{problem}' (benchmarked: {known}).")
    return chosen
