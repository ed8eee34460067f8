"""The two runs of one benchmark case, each in its own process.

- :func:`measure_submission` (the student's process): outputs on fresh inputs *before* timing,
  warm-up, the timed iterations (the outputs of a few, chosen by the grader, kept), outputs on
  fresh inputs *after* timing. Every kept output is written to a file; nothing is judged here.
- :func:`measure_reference` (a process that never imports student code): times the staff
  implementation and the baselines the same way, then computes the fp32 truth for each input the
  student's outputs were kept for and measures how far they are from it. The grader turns those
  errors into verdicts with the tolerance of the spec.

Seeds come from the grader's plan, fresh for every run; both processes draw identical inputs
from them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .attention import Attend, Attention, Tensors, WrongOutput, compare
from .guards import Primitives
from .timing import Timer, time_iterations

SUFFIX = ".safetensors"
ERROR_CHARS = 500


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:ERROR_CHARS]


def run_case(
    plan: dict[str, Any],
    case: dict[str, Any],
    implementations: dict[str, Attend],
    prims: Primitives,
    timer: Timer,
    flush: Any,
    out: Path,
    peer: Path | None,
) -> dict[str, Any]:
    """One case of the plan, in this process's role; whatever the code under test raises becomes the
    case's error (``SystemExit`` and ``KeyboardInterrupt`` included: student code can raise them)."""
    try:
        workload = Attention(case["params"], prims)
        if plan["role"] == "submission":
            attend = implementations["submission"]
            return measure_submission(workload, attend, case, timer, flush, out / case["name"])
        trusted = implementations | {name: workload.sdpa() for name in plan["baselines"]}
        return measure_reference(workload, trusted, case, timer, flush, peer / case["name"] if peer else None)
    except BaseException as exc:
        return {"error": describe(exc)}


def check_seeds(case: dict[str, Any]) -> dict[str, int]:
    """Label -> seed of every input whose outputs are checked: before, the audited iterations, after."""
    seeds = {"before": case["checks"]["before"]}
    seeds |= {f"iter{i}": case["timed_seeds"][i] for i in case["audit"]}
    seeds["after"] = case["checks"]["after"]
    return seeds


def outputs_on(workload: Attention, attend: Attend, seed: int, timer: Timer) -> Tensors:
    """One untimed pass on the inputs of ``seed``; the device is synced before anything is read."""
    inputs = workload.inputs(seed)
    out = workload.step(attend, inputs)
    timer.sync()
    return workload.outputs(inputs, out)


def timed(workload: Attention, attend: Attend, case: dict[str, Any], timer: Timer, flush: Any, **keep: Any) -> Any:
    """Warm-up iterations (discarded), then the timed ones; fresh inputs for each."""
    step = lambda inputs: workload.step(attend, inputs)  # noqa: E731
    time_iterations(step, workload.inputs, seeds=case["warmup_seeds"], timer=timer, flush=flush, check=workload.check)
    return time_iterations(step, workload.inputs, seeds=case["timed_seeds"], timer=timer, flush=flush,
                           check=workload.check, **keep)


def measure_submission(
    workload: Attention, attend: Attend, case: dict[str, Any], timer: Timer, flush: Any, folder: Path
) -> dict[str, Any]:
    """Time the student's implementation; keep its outputs before, during and after timing."""
    import safetensors.torch

    folder.mkdir(parents=True, exist_ok=True)
    seeds = check_seeds(case)

    def save(label: str, outputs: Tensors) -> None:
        tensors = {name: t.contiguous().cpu() for name, t in outputs.items()}
        safetensors.torch.save_file(tensors, str(folder / f"{label}{SUFFIX}"))

    save("before", outputs_on(workload, attend, seeds["before"], timer))
    run = timed(workload, attend, case, timer, flush,
                keep=workload.outputs, keep_at=frozenset(case["audit"]))
    for index, outputs in run.kept.items():
        save(f"iter{index}", outputs)
    run.kept.clear()  # free the device memory they hold before the last check
    save("after", outputs_on(workload, attend, seeds["after"], timer))
    return {"samples": {"submission": [[s.stream_ms, s.wall_ms] for s in run.samples]}}


def measure_reference(
    workload: Attention,
    implementations: dict[str, Attend],
    case: dict[str, Any],
    timer: Timer,
    flush: Any,
    peer: Path | None,
) -> dict[str, Any]:
    """Time each trusted implementation; check it and the student's saved outputs against the truth."""
    seeds = check_seeds(case)
    truth_before = workload.truth(workload.inputs(seeds["before"]))
    samples, self_check = {}, {}
    for name, attend in implementations.items():
        self_check[name] = compare(outputs_on(workload, attend, seeds["before"], timer), truth_before)
        run = timed(workload, attend, case, timer, flush)
        samples[name] = [[s.stream_ms, s.wall_ms] for s in run.samples]
    verified = {}
    if peer is not None:
        for label, seed in seeds.items():
            want = truth_before if label == "before" else workload.truth(workload.inputs(seed))
            verified[label] = verify_file(peer / f"{label}{SUFFIX}", want)
    return {"samples": samples, "self_check": self_check, "verified": verified}


def verify_file(path: Path, want: Tensors) -> dict[str, Any]:
    """The errors of the outputs the student's process saved at ``path``, or why there are none."""
    import safetensors.torch

    if not path.is_file():
        return {"error": "no outputs were saved for these inputs"}
    largest = sum(t.numel() * 4 for t in want.values()) * 2 + (1 << 20)
    if path.stat().st_size > largest:
        return {"error": f"the saved outputs are {path.stat().st_size} bytes, more than they can be"}
    try:
        got = safetensors.torch.load_file(str(path), device="cpu")
    except Exception as exc:  # a malformed file: safetensors raises its own error type
        return {"error": f"unreadable outputs: {exc}"[:300]}
    try:
        return {"errors": compare(got, want)}
    except WrongOutput as exc:
        return {"error": str(exc)}


def canary(prims: Primitives, timer: Timer, plan: dict[str, Any]) -> list[float]:
    """Times of a fixed matmul: the same kernel must take the same time in every process of a run."""
    import torch

    generator = prims.generator(device=prims.device)
    generator.manual_seed(0)
    dtype = getattr(torch, plan["dtype"])
    size = (plan["size"], plan["size"])
    a, b = (prims.randn(size, generator=generator, device=prims.device, dtype=dtype) for _ in range(2))
    seeds = [0] * (plan["warmup"] + plan["iters"])
    run = time_iterations(lambda ab: prims.mm(*ab), lambda _: (a, b), seeds=seeds, timer=timer, flush=lambda: None)
    return [s.stream_ms for s in run.samples[plan["warmup"]:]]
