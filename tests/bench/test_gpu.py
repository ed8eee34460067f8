"""The benchmark harness on a real GPU: the staff FlashAttention-2 and the submissions of ``submissions/``.

Runs only where CUDA is available (skipped elsewhere), from the repository root::

    python -m pytest -p no:cacheprovider -s tests/bench/test_gpu.py

Each benchmark is two real probe processes on the GPU, unsandboxed by default (a GPU machine
for development seldom has Docker with the NVIDIA runtime, or bubblewrap);
``LMCOURSE_BENCH_SANDBOX=docker`` or ``=local`` runs them in that sandbox instead. With ``-s`` every
benchmark prints its times, for the record.

The submissions are timed at batch 1, 16 heads, sequence 8192, head dim 64, causal, bf16, forward
and backward: long enough that work left on another stream cannot hide in launch overhead, short
enough that the naive one (scores materialised in fp32) runs in seconds. The bands are wide
(full at 1.25x, nothing at 1000x) so that "slow but correct" lands in partial credit on any GPU.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lmcourse.grader.bench.harness import benchmark, cuda_available, prepare_submission, run_benchmarks, staff_code
from lmcourse.grader.bench.spec import BenchmarkSpec, unit_benchmarks
from lmcourse.grader.bench.verdict import BenchResult
from lmcourse.grader.course import Course

from ..helpers import REPO
from .scripts import run_script

pytestmark = pytest.mark.skipif(not cuda_available(), reason="needs a CUDA GPU")

SUBMISSIONS = Path(__file__).resolve().parent / "submissions"
SANDBOX = os.environ.get("LMCOURSE_BENCH_SANDBOX", "none")
SPEC = BenchmarkSpec.model_validate({
    "problem": "flash_speed",
    "adapter": "get_flashattention_autograd_function_triton",
    "bands": {"full_at": 1.25, "zero_at": 1000},
    "iters": 20,
    "warmup": 5,
    "cases": [{"name": "s8192_d64", "heads": 16, "seq": 8192, "head_dim": 64, "causal": True, "dtype": "bfloat16"}],
})


@pytest.fixture(scope="module")
def unit():  # type: ignore[no-untyped-def]
    return Course.load(REPO).unit("systems", enabled_only=False)


@pytest.fixture(scope="module")
def staff(unit, tmp_path_factory: pytest.TempPathFactory) -> Path:  # type: ignore[no-untyped-def]
    """The staff code (reference package, shipped basics, staff adapters): the reference's side."""
    return staff_code(unit, tmp_path_factory.mktemp("staff") / "code")


# Forward only: in a backward pass autograd makes the caller's stream wait for the streams the
# forward ran on, so a side stream hides nothing there (measured on an H200: the side-stream
# submission's fwd+bwd time was its honest time).
FORWARD = SPEC.model_copy(update={"cases": [c.model_copy(update={"passes": "forward"}) for c in SPEC.cases]})


def run(unit, name: str, code: Path, staff: Path, spec: BenchmarkSpec = SPEC) -> BenchResult:  # type: ignore[no-untyped-def]
    """Benchmark ``code`` against the staff code with ``spec``, printing what was measured."""
    result = benchmark(spec, 10.0, code=code, staff=staff, sandbox=SANDBOX, limits=unit.limits)
    for case in result.cases:
        times = ", ".join(f"{name} {s.median_ms:.3f} ms (IQR {s.iqr_ms:.3f})" for name, s in case.times.items())
        ratio = f"{case.ratio:.2f}" if case.ratio is not None else "-"
        print(f"\n[{name}] {case.label} on {result.device}: {times}; ratio {ratio}; "
              f"floor {case.floor_ms or 0:.3f} ms; {case.verdict} {case.fraction:.2f}; {case.reasons + case.anomalies}")
    return result


def submission(unit, name: str, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    """``submissions/<name>`` through intake and compose, as grading would see it."""
    return prepare_submission(unit, SUBMISSIONS / name, tmp_path)


def test_the_staff_flash_attention_scores_full(unit, staff: Path) -> None:  # type: ignore[no-untyped-def]
    case = run(unit, "staff", staff, staff).cases[0]
    assert case.verdict == "full" and not case.anomalies, case.reasons
    assert 0.8 < case.ratio < 1.25  # the same kernel in two processes
    assert case.floor_ms is not None and case.times["submission"].min_ms > case.floor_ms
    assert set(case.times) == {"submission", "reference", "sdpa"}


def test_slow_but_correct_earns_partial_credit(unit, staff: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    case = run(unit, "naive", submission(unit, "naive", tmp_path), staff).cases[0]
    assert case.verdict == "partial" and not case.anomalies
    assert case.ratio > 1.25 and 0 < case.fraction < 1


def test_a_wrong_answer_scores_zero(unit, staff: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    case = run(unit, "wrong", submission(unit, "wrong", tmp_path), staff).cases[0]
    assert case.verdict == "wrong" and case.fraction == 0
    assert case.reasons[0].startswith("wrong answer on fresh inputs")


def test_a_cached_output_scores_zero(unit, staff: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    case = run(unit, "cached", submission(unit, "cached", tmp_path), staff).cases[0]
    assert case.verdict == "anomaly" and case.fraction == 0
    assert any("cached or precomputed" in a for a in case.anomalies)
    assert any("below the physical floor" in a for a in case.anomalies)  # a copy is no attention


def test_a_precomputed_answer_scores_zero(unit, staff: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    case = run(unit, "precomputed", submission(unit, "precomputed", tmp_path), staff).cases[0]
    assert case.verdict == "wrong" and case.fraction == 0
    assert case.reasons[0].startswith("wrong answer on fresh inputs")


def test_work_on_another_stream_scores_zero(unit, staff: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    case = run(unit, "side_stream", submission(unit, "side_stream", tmp_path), staff, FORWARD).cases[0]
    assert case.verdict == "anomaly" and case.fraction == 0
    assert any("another CUDA stream" in a for a in case.anomalies)
    ours = case.times["submission"]
    assert ours.wall_median_ms > 2 * ours.median_ms  # the device-wide sync saw the work the events missed


def test_the_units_own_benchmarks_give_the_reference_full_points(unit, staff: Path) -> None:  # type: ignore[no-untyped-def]
    """``benchmarks:`` of assignments/systems/unit.yaml, on the staff code: every case full."""
    if not unit_benchmarks(unit.config):
        pytest.skip("assignments/systems/unit.yaml declares no benchmarks yet")
    for result in run_benchmarks(unit, staff, sandbox=SANDBOX):
        for case in result.cases:
            times = {name: round(s.median_ms, 3) for name, s in case.times.items()}
            print(f"\n[unit.yaml] {case.label} on {result.device}: {times}, ratio {case.ratio:.2f}, "
                  f"{case.tflops:.0f} TFLOP/s, {case.verdict}")
            assert case.verdict == "full" and not case.anomalies, case.reasons


def test_lmcourse_bench_prints_json_on_a_gpu(unit, staff: Path) -> None:  # type: ignore[no-untyped-def]
    """The command line end to end: ``lmcourse bench STAFF --unit systems --json``."""
    if not unit_benchmarks(unit.config):
        pytest.skip("assignments/systems/unit.yaml declares no benchmarks yet")
    if "systems" not in unit.course.config.units:
        pytest.skip("the systems unit is not enabled in course.yaml")
    script = ("from lmcourse.grader.cli import cli; from lmcourse.grader.cli_bench import bench; "
              "cli.commands.setdefault('bench', bench); cli(prog_name='lmcourse')")
    argv = [sys.executable, "-c", script, "--course", str(REPO), "bench", str(staff), "--unit", "systems",
            "--sandbox", SANDBOX, "--json"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=1200, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(done.stdout)
    assert results and all(case["verdict"] == "full" for r in results for case in r["cases"])


def test_the_benchmarking_scripts_run_on_the_gpu(tmp_path: Path) -> None:
    """The scripts students run for the written problem: eager and compiled, bf16, and memory snapshots."""
    done = run_script("benchmark", ["--size", "small", "--context-length", "128", "--mode", "train", "--bf16",
                                    "--compile", "both", "--warmup", "3", "--steps", "5"], tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    print("\n" + done.stdout)
    rows = [line for line in done.stdout.splitlines() if line.startswith("| small | 128 |")]
    assert len(rows) == 2 and "| no | yes |" in rows[0] and "| yes | yes |" in rows[1]
    done = run_script("memory_profile", ["--size", "small", "--context-length", "128", "--snapshot-dir", "snaps"],
                      tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    print("\n" + done.stdout)
    assert sorted(p.name for p in (tmp_path / "snaps").iterdir()) == [
        "small-ctx128-forward.pickle", "small-ctx128-train.pickle"]
    assert "| small | 128 | train | no |" in done.stdout
