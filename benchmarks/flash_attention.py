"""FlashAttention-2 in Triton (the systems reference) against PyTorch's SDPA with its flash backend.

    python benchmarks/flash_attention.py

Same inputs, same process, ``triton.testing.do_bench`` (warm-up, L2 flushed between runs, median).
Each case is (batch, heads, seq, head dim), causal, bfloat16. Our kernels take (batch·heads, seq, d),
SDPA takes (batch, heads, seq, d): both views of one tensor. Forward+backward is timed with
``torch.autograd.grad``, which returns fresh gradients instead of accumulating into ``.grad``.
FLOPs: a forward is 4·b·h·s²·d multiply-adds counted twice, halved when causal; a backward 2.5 times
that. The ceiling quoted is a plain bf16 matrix product measured on this H200 (~790 TFLOP/s).
Needs a CUDA GPU; without one it says so and exits 0.
"""

from __future__ import annotations

import importlib
import sys
import tempfile
from pathlib import Path
from types import ModuleType

import torch

REPO = Path(__file__).resolve().parents[1]
CASES = [(1, 16, 16384, 64), (1, 16, 16384, 128), (1, 16, 4096, 64), (1, 16, 4096, 128)]
BF16_CEILING_TFLOPS = 790.0


def import_flash_triton() -> ModuleType:
    """``reference/systems/flash_triton.py`` as ``lmc_systems.flash_triton`` (it imports a sibling relatively)."""
    root = Path(tempfile.mkdtemp(prefix="lmc-bench-"))
    (root / "lmc_systems").symlink_to(REPO / "reference" / "systems", target_is_directory=True)
    sys.path.insert(0, str(root))
    return importlib.import_module("lmc_systems.flash_triton")


def attention_flops(batch: int, heads: int, seq: int, d: int, causal: bool) -> float:
    """FLOPs of one forward: two (seq × seq × d) products per head, half of them when causal."""
    return 4.0 * batch * heads * seq * seq * d * (0.5 if causal else 1.0)


def relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    """‖actual − expected‖ / ‖expected‖, in float32."""
    return ((actual.float() - expected.float()).norm() / expected.float().norm()).item()


def time_case(flash: ModuleType, batch: int, heads: int, seq: int, d: int) -> list[str]:
    """Check, then time, the forward and forward+backward of ours and SDPA's flash kernel; table rows."""
    import torch.nn.functional as F
    import triton
    from torch.nn.attention import SDPBackend, sdpa_kernel

    generator = torch.Generator(device="cuda").manual_seed(0)
    q, k, v, d_out = (
        torch.randn(batch, heads, seq, d, device="cuda", dtype=torch.bfloat16, generator=generator) for _ in range(4)
    )
    for t in (q, k, v):
        t.requires_grad_()
    flat = [t.view(batch * heads, seq, d) for t in (q, k, v)]  # heads folded into the batch

    def ours_forward() -> torch.Tensor:
        return flash.FlashAttention2Triton.apply(*flat, True)

    def sdpa_forward() -> torch.Tensor:
        with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
            return F.scaled_dot_product_attention(q, k, v, is_causal=True)

    def default_forward() -> torch.Tensor:  # whatever PyTorch picks (cuDNN on Hopper, when built with it)
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)

    def default_both() -> tuple[torch.Tensor, ...]:
        return torch.autograd.grad(default_forward(), (q, k, v), d_out)

    def ours_both() -> tuple[torch.Tensor, ...]:
        return torch.autograd.grad(ours_forward(), flat, d_out.view(batch * heads, seq, d))

    def sdpa_both() -> tuple[torch.Tensor, ...]:
        return torch.autograd.grad(sdpa_forward(), (q, k, v), d_out)

    # Correctness first, in the same run: the two must agree to bf16 rounding (~1e-3 to 1e-2).
    out_error = relative_error(ours_forward().view_as(q), sdpa_forward())
    grad_error = max(relative_error(a.view_as(b), b) for a, b in zip(ours_both(), sdpa_both()))
    flops = attention_flops(batch, heads, seq, d, causal=True)
    rows = []
    for name, f_ours, f_sdpa, f_default, work in (
        ("fwd", ours_forward, sdpa_forward, default_forward, flops),
        ("fwd+bwd", ours_both, sdpa_both, default_both, 3.5 * flops),
    ):
        t_ours, t_sdpa, t_default = (
            triton.testing.do_bench(f, warmup=100, rep=500, return_mode="median") for f in (f_ours, f_sdpa, f_default)
        )
        tf_ours, tf_sdpa = work / t_ours / 1e9, work / t_sdpa / 1e9
        rows.append(
            f"{f'{batch} {heads} {seq} {d}':>16} {name:>8} {t_ours:8.3f} {t_sdpa:8.3f} {t_ours / t_sdpa:9.2f} "
            f"{tf_ours:9.0f} {tf_sdpa:9.0f} {tf_ours / BF16_CEILING_TFLOPS:9.0%} {t_default:9.3f} {t_ours / t_default:9.2f}"
        )
    tiles = {name: str(getattr(flash, name).best_config) for name in ("_fwd_kernel", "_dkdv_kernel", "_dq_kernel")}
    print(f"b{batch} h{heads} s{seq} d{d}: ‖ours − SDPA‖/‖SDPA‖ O {out_error:.1e}, grads {grad_error:.1e}; tiles {tiles}")
    return rows


def main() -> int:
    if not torch.cuda.is_available():
        print("benchmarks/flash_attention.py times GPU kernels and needs a CUDA GPU; none is available, nothing measured.")
        return 0
    import triton

    flash = import_flash_triton()
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}, triton {triton.__version__}")
    rows = [row for case in CASES for row in time_case(flash, *case)]
    print(f"{'b h seq d':>16} {'pass':>8} {'ours ms':>8} {'SDPA ms':>8} {'ours/SDPA':>9} {'ours TF/s':>9} "
          f"{'SDPA TF/s':>9} {'ours/peak':>9} {'dflt ms':>9} {'ours/dflt':>9}")
    print("SDPA = the flash backend forced; dflt = PyTorch's own choice of backend (cuDNN where available).")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
