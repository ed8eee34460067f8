"""The plan both probe processes of one benchmark follow: cases, seeds, and the canary.

Seeds are drawn fresh for every run from the operating system's randomness, so no submission can
ship answers for them. Each warm-up and timed iteration has its own seed (fresh inputs); the
before and after checks have theirs; a few timed iterations, chosen at random, are *audited*:
their outputs are kept and checked like the others. The warm-up length varies from run to run,
so an implementation cannot count calls to tell the timed ones from the checked ones.
"""

from __future__ import annotations

import random
from typing import Any

from .spec import BenchmarkSpec

#: The flush buffer, when the GPU's L2 is smaller than half of it (H100: 50 MB, H200: 60 MB).
FLUSH_BYTES = 256 * 2**20
AUDITED = 2
#: A kernel whose time does not depend on anything the student controls: a bf16 8192^3 matmul
#: (~1.5 ms on an H100); 100 warm-up runs give an idle GPU time to raise its clocks. On the CPU, small.
CANARY = {
    "cuda": {"size": 8192, "dtype": "bfloat16", "warmup": 100, "iters": 20},
    "cpu": {"size": 128, "dtype": "float32", "warmup": 3, "iters": 10},
}


def make_plan(
    spec: BenchmarkSpec, *, device: str, iters: int | None = None, rng: random.Random | None = None
) -> dict[str, Any]:
    """The plan of one run, without its ``role`` (the harness sets it for each process)."""
    rng = rng or random.SystemRandom()
    n = iters or spec.iters

    def seeds(count: int) -> list[int]:
        return [rng.getrandbits(62) for _ in range(count)]

    cases = []
    for case in spec.cases:
        cases.append({
            "name": case.name,
            "params": case.model_dump(mode="json"),
            "warmup_seeds": seeds(spec.warmup + rng.randrange(spec.warmup + 1)),
            "timed_seeds": seeds(n),
            "checks": {"before": seeds(1)[0], "after": seeds(1)[0]},
            "audit": sorted(rng.sample(range(n), min(AUDITED, n))),
        })
    return {
        "device": device,
        "adapter": spec.adapter,
        "baselines": list(spec.baselines),
        "flush_bytes": FLUSH_BYTES if device == "cuda" else 0,
        "canary": CANARY[device],
        "cases": cases,
    }
