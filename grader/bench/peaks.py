"""Peak FLOP/s and memory bandwidth of GPUs, and the physical floor they put under a time.

No kernel can finish faster than its FLOPs at the GPU's peak FLOP/s, nor faster than its
unavoidable bytes at peak bandwidth. A reported time below that floor is impossible: the
harness's clock was tampered with, or the work was not done. Peaks are dense (no sparsity)
datasheet figures, the highest of each family's variants (SXM, NVL, PCIe), so the floor errs low:
it may miss a small cheat, never rejects an honest time. An unknown GPU gets peaks above any
listed here, for the same reason.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Peaks:
    name: str
    tensor_tflops: float  # bf16 / fp16 matmul on tensor cores, dense
    tf32_tflops: float  # fp32 inputs: a kernel may use TF32 tensor cores, so that is their ceiling
    bandwidth_tbs: float  # HBM, TB/s (10^12 bytes per second)

    def tflops_for(self, dtype: str) -> float:
        return self.tf32_tflops if dtype == "float32" else self.tensor_tflops


#: Matched in order against ``torch.cuda.get_device_name()`` (e.g. "NVIDIA H200", "NVIDIA A100-SXM4-80GB").
TABLE: tuple[tuple[str, Peaks], ...] = (
    ("B200", Peaks("B200", 2500.0, 1250.0, 8.0)),
    ("H200", Peaks("H200", 989.0, 495.0, 4.9)),
    ("H100", Peaks("H100", 989.0, 495.0, 3.9)),
    ("H800", Peaks("H800", 989.0, 495.0, 3.35)),
    ("A100", Peaks("A100", 312.0, 156.0, 2.04)),
    ("A800", Peaks("A800", 312.0, 156.0, 2.04)),
    ("L40S", Peaks("L40S", 362.0, 183.0, 0.87)),
)
#: Above every GPU listed: an unknown one can only make the floor lower, never reject an honest time.
UNKNOWN = Peaks("unknown GPU (generous peaks)", 2500.0, 1250.0, 8.0)


def peaks_for(device_name: str) -> Peaks:
    """The peaks of the GPU called ``device_name``; :data:`UNKNOWN` when it is not in the table."""
    upper = device_name.upper()
    return next((peaks for key, peaks in TABLE if key in upper), UNKNOWN)


def floor_ms(flops: float, nbytes: float, dtype: str, peaks: Peaks) -> float:
    """The least time, in ms, that ``flops`` and ``nbytes`` can take on a GPU with these peaks."""
    compute_s = flops / (peaks.tflops_for(dtype) * 1e12)
    memory_s = nbytes / (peaks.bandwidth_tbs * 1e12)
    return max(compute_s, memory_s) * 1e3
