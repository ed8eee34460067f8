"""The benchmark harness's logic, on the CPU: what a GPU run does, with CPU tensors and a fake clock.

The protocol code under test is the real one (the probe's roles and timing loop, the verdict, the
spec); only the device is a stand-in. ``FakeDevice`` is a clock that work advances, either on the
probe's stream or elsewhere (another CUDA stream, in the GPU's terms); ``FakeTimer`` reads it the
way the CUDA timer reads events and the host clock. Implementations are the submissions of
``tests/bench/submissions/`` with a declared cost per call.
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import subprocess
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from lmcourse.grader.bench import grading
from lmcourse.grader.bench.harness import benchmark, cuda_available
from lmcourse.grader.bench.measurements import ProbeReport, stats
from lmcourse.grader.bench.peaks import UNKNOWN, Peaks, floor_ms, peaks_for
from lmcourse.grader.bench.plan import make_plan
from lmcourse.grader.bench.probe import guards, roles
from lmcourse.grader.bench.probe.timing import Sample, time_iterations
from lmcourse.grader.bench.spec import AttentionCase, Bands, BenchmarkSpec, parse_benchmarks, unit_benchmarks
from lmcourse.grader.bench.verdict import judge
from lmcourse.grader.config import Limits, Problem
from lmcourse.grader.errors import ConfigError, LmcourseError
from lmcourse.grader.grading.results import Results
from lmcourse.grader.grading.score import Scored
from lmcourse.grader.report import ProblemSummary
from lmcourse.grader.sandbox.registry import get_sandbox

from ..helpers import LMCOURSE, MINICOURSE

SUBMISSIONS = Path(__file__).resolve().parent / "submissions"
CLASSES = {"naive": "NaiveAttention", "wrong": "WrongAttention", "cached": "CachedAttention",
           "precomputed": "PrecomputedAttention", "side_stream": "SideStreamAttention"}
NO_GPU = "no CUDA GPU is visible: lmcourse bench times kernels on a GPU and has nothing to do here"


def tiny_spec(**overrides: Any) -> BenchmarkSpec:
    """One small fp32 case, cheap on the CPU; the adapter is the one the submissions implement."""
    data = {
        "problem": "flash_speed", "adapter": "get_flashattention_autograd_function_triton",
        "bands": {"full_at": 1.1, "zero_at": 4.0}, "iters": 6, "warmup": 2,
        "cases": [{"name": "tiny", "heads": 2, "seq": 48, "head_dim": 16, "dtype": "float32"}],
    }
    return BenchmarkSpec.model_validate(data | overrides)


def load_submission(name: str) -> Any:
    """The autograd Function class of ``submissions/<name>``, from a fresh import (no shared caches)."""
    path = SUBMISSIONS / name / "lmc_systems" / "attention.py"
    spec = importlib.util.spec_from_file_location(f"bench_submission_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, CLASSES[name])


class FakeDevice:
    """A clock that work advances: on the probe's stream, or elsewhere (another stream)."""

    def __init__(self) -> None:
        self.stream_ms = 0.0
        self.elsewhere_ms = 0.0
        self.log: list[str] = []

    def costly(self, impl: Any, ms: float, *, elsewhere: bool = False) -> Callable[..., Any]:
        """``impl.apply`` that also spends ``ms`` of device time per call."""

        def attend(q: Any, k: Any, v: Any, causal: bool) -> Any:
            if elsewhere:
                self.elsewhere_ms += ms
            else:
                self.stream_ms += ms
            self.log.append("call")
            return impl.apply(q, k, v, causal)

        return attend


class FakeTimer:
    """Reads a :class:`FakeDevice` as the CUDA timer reads events (stream) and the host clock (all work)."""

    SYNC_MS = 0.01  # what a device-wide synchronize costs on the host clock

    def __init__(self, device: FakeDevice) -> None:
        self.device = device

    def sync(self) -> None:
        self.device.log.append("sync")

    def start(self) -> None:
        self.device.log.append("start")
        self.device.stream_ms = self.device.elsewhere_ms = 0.0

    def stop(self) -> Sample:
        self.device.log.append("stop")
        stream = self.device.stream_ms
        return Sample(stream, stream + self.device.elsewhere_ms + self.SYNC_MS)


@pytest.fixture(scope="module")
def prims() -> guards.Primitives:
    return guards.capture("cpu")


def run_protocol(
    spec: BenchmarkSpec, submission: Callable[..., Any], reference: Callable[..., Any], prims: guards.Primitives,
    folder: Path, timer: Any, peaks: Peaks | None = None,
) -> Any:
    """Both roles in this process, as the two probe processes run them, then the verdict."""
    plan = make_plan(spec, device="cpu", rng=random.Random(7))

    def measure(role: str, attend: Callable[..., Any], peer: Path | None) -> ProbeReport:
        cases = {c["name"]: roles.run_case(plan | {"role": role}, c, {role: attend}, prims, timer, lambda: None,
                                           folder / role, peer) for c in plan["cases"]}
        return ProbeReport(role=role, device={"kind": "cpu", "name": "cpu"}, canary={"before": [1.0], "after": [1.0]},
                           cases=cases)

    mine = measure("submission", submission, None)
    trusted = measure("reference", reference, folder / "submission")
    return judge(spec, 10.0, mine, None, trusted, peaks)


def slow_peaks(case: AttentionCase, floor: float) -> Peaks:
    """Peaks that put the case's physical floor at ``floor`` ms."""
    tflops = case.floor_flops() / (floor * 1e-3) / 1e12
    return Peaks("test GPU", tflops, tflops, 1e9)


# ---- statistics, bands, floor ----


def test_median_and_interquartile_range() -> None:
    s = stats([(float(t), float(t) + 0.5) for t in (5, 1, 4, 2, 3)])
    assert (s.median_ms, s.q1_ms, s.q3_ms, s.min_ms, s.n) == (3.0, 2.0, 4.0, 1.0, 5)
    assert s.iqr_ms == 2.0 and s.wall_median_ms == 3.5


def test_bands_turn_a_ratio_into_a_share_of_points() -> None:
    bands = Bands(full_at=1.0, zero_at=4.0)
    assert [bands.fraction(r) for r in (0.5, 1.0, 2.5, 4.0, 9.0)] == [1.0, 1.0, 0.5, 0.0, 0.0]


def test_floor_is_flops_at_peak_or_bytes_at_bandwidth() -> None:
    case = AttentionCase(name="big", batch=1, heads=16, seq=16384, head_dim=64, causal=True, dtype="bfloat16")
    h200 = peaks_for("NVIDIA H200")
    flops = 6 * 2 * 16 * 16384 * 16384 * 64 / 2  # six products, half of them masked
    assert case.floor_flops() == flops
    assert floor_ms(case.floor_flops(), case.floor_bytes(), "bfloat16", h200) == pytest.approx(flops / 989e12 * 1e3)
    assert floor_ms(1.0, 4.9e12, "bfloat16", h200) == pytest.approx(1e3)  # memory-bound: 4.9 TB at 4.9 TB/s
    assert peaks_for("NVIDIA A100-SXM4-80GB").name == "A100"
    assert peaks_for("Some Future Accelerator") is UNKNOWN


# ---- the timed loop ----


def test_every_iteration_gets_fresh_inputs_a_cold_cache_and_an_idle_device(prims: guards.Primitives) -> None:
    device, made, seen = FakeDevice(), [], []

    def make_inputs(seed: int) -> object:
        made.append(seed)
        return object()

    def call(inputs: object) -> None:
        seen.append(inputs)
        device.stream_ms += 1.0

    run = time_iterations(call, make_inputs, seeds=[11, 12, 13], timer=FakeTimer(device),
                          flush=lambda: device.log.append("flush"))
    assert made == [11, 12, 13] and len({id(i) for i in seen}) == 3
    assert device.log == ["flush", "sync", "start", "stop"] * 3
    assert run.samples == [Sample(1.0, 1.0 + FakeTimer.SYNC_MS)] * 3


def test_seeds_are_fresh_each_run_and_audits_fall_in_the_timed_loop() -> None:
    spec = tiny_spec(iters=20, warmup=5)
    first, second = make_plan(spec, device="cpu"), make_plan(spec, device="cpu")
    a, b = first["cases"][0], second["cases"][0]
    assert not set(a["timed_seeds"]) & set(b["timed_seeds"]) and a["checks"] != b["checks"]
    assert len(set(a["timed_seeds"] + a["warmup_seeds"])) == len(a["timed_seeds"]) + len(a["warmup_seeds"])
    assert 5 <= len(a["warmup_seeds"]) <= 10 and len(a["timed_seeds"]) == 20
    assert len(a["audit"]) == 2 and all(0 <= i < 20 for i in a["audit"])


# ---- verdicts on the CPU ----


def test_a_correct_submission_is_scored_by_its_time_ratio(prims: guards.Primitives, tmp_path: Path) -> None:
    device = FakeDevice()
    naive = load_submission("naive")
    result = run_protocol(tiny_spec(), device.costly(naive, 2.5), device.costly(naive, 1.0), prims, tmp_path,
                          FakeTimer(device), peaks=slow_peaks(tiny_spec().cases[0], 0.5))
    case = result.cases[0]
    assert case.verdict == "partial" and not case.anomalies
    assert case.ratio == pytest.approx(2.5) and case.fraction == pytest.approx((4 - 2.5) / (4 - 1.1))
    assert result.earned == pytest.approx(10 * case.fraction, abs=1e-4)
    assert set(case.times) == {"submission", "reference", "sdpa"}


def test_a_cached_output_is_caught_by_the_checks_during_and_after_timing(prims: guards.Primitives, tmp_path: Path) -> None:
    """Right on its first call, so the check before timing passes; fresh inputs expose it later."""
    device = FakeDevice()
    result = run_protocol(tiny_spec(), device.costly(load_submission("cached"), 1.0),
                          device.costly(load_submission("naive"), 1.0), prims, tmp_path, FakeTimer(device))
    case = result.cases[0]
    assert case.verdict == "anomaly" and case.fraction == 0 and result.earned == 0
    assert "right before timing but wrong" in case.anomalies[0] and "cached or precomputed" in case.anomalies[0]


def test_a_precomputed_answer_is_wrong_on_fresh_inputs(prims: guards.Primitives, tmp_path: Path) -> None:
    device = FakeDevice()
    result = run_protocol(tiny_spec(), device.costly(load_submission("precomputed"), 1.0),
                          device.costly(load_submission("naive"), 1.0), prims, tmp_path, FakeTimer(device))
    case = result.cases[0]
    assert case.verdict == "wrong" and case.fraction == 0
    assert case.reasons[0].startswith("wrong answer on fresh inputs: O off by rel L2")


def test_a_wrong_answer_scores_nothing_however_fast(prims: guards.Primitives, tmp_path: Path) -> None:
    device = FakeDevice()
    result = run_protocol(tiny_spec(), device.costly(load_submission("wrong"), 0.5),
                          device.costly(load_submission("naive"), 1.0), prims, tmp_path, FakeTimer(device))
    assert result.cases[0].verdict == "wrong" and result.earned == 0


def test_work_left_on_another_stream_is_caught(prims: guards.Primitives, tmp_path: Path) -> None:
    """The caller's stream sees almost nothing; the device-wide sync sees all of it."""
    device = FakeDevice()
    sneaky = device.costly(load_submission("side_stream"), 3.0, elsewhere=True)
    result = run_protocol(tiny_spec(), sneaky, device.costly(load_submission("naive"), 1.0), prims, tmp_path,
                          FakeTimer(device))
    case = result.cases[0]
    assert case.verdict == "anomaly" and case.fraction == 0
    assert "another CUDA stream" in case.anomalies[0]


def test_a_time_below_the_physical_floor_is_rejected(prims: guards.Primitives, tmp_path: Path) -> None:
    device = FakeDevice()
    naive = load_submission("naive")
    peaks = slow_peaks(tiny_spec().cases[0], 2.0)  # nothing can take less than 2 ms on this "GPU"
    result = run_protocol(tiny_spec(), device.costly(naive, 1.0), device.costly(naive, 3.0), prims, tmp_path,
                          FakeTimer(device), peaks=peaks)
    case = result.cases[0]
    assert case.verdict == "anomaly" and case.floor_ms == pytest.approx(2.0)
    assert "below the physical floor of 2.000 ms on test GPU" in case.anomalies[0]


def test_an_error_in_the_submission_is_its_reason(prims: guards.Primitives, tmp_path: Path) -> None:
    def broken(q: Any, k: Any, v: Any, causal: bool) -> Any:
        raise NotImplementedError("problem 'flash_triton': implement forward")

    result = run_protocol(tiny_spec(), broken, load_submission("naive").apply, prims, tmp_path, FakeTimer(FakeDevice()))
    case = result.cases[0]
    assert case.verdict == "error" and case.reasons == [
        "the implementation failed: NotImplementedError: problem 'flash_triton': implement forward"]


def test_a_canary_that_speeds_up_after_import_means_a_tampered_clock() -> None:
    spec = tiny_spec()
    samples = {"submission": [(1.0, 1.0)] * 6}
    reference_case = {"samples": {"reference": [(1.0, 1.0)] * 6},
                      "verified": {"before": {"errors": {"O": {"rel_l2": 0.0, "rel_max": 0.0}}}}}

    def verdict(after: float) -> Any:
        mine = ProbeReport(role="submission", device={"name": "NVIDIA H200"}, canary={"before": [1.5, 1.5], "after": [after] * 2},
                           cases={"tiny": {"samples": samples}})
        trusted = ProbeReport(role="reference", device={"name": "NVIDIA H200"}, canary={"before": [1.5], "after": [1.6]},
                              cases={"tiny": reference_case})
        return judge(spec, 10.0, mine, None, trusted, Peaks("test", 1e9, 1e9, 1e9))

    assert verdict(1.45).cases[0].verdict == "full"  # jitter
    tampered = verdict(0.75)  # the clock runs at half speed once the student's code is in
    assert tampered.cases[0].verdict == "anomaly" and "clock was tampered with" in tampered.anomalies[0]


def test_a_reference_that_fails_its_own_check_stops_the_run_in_one_sentence() -> None:
    """Staff code held to the same tolerance: a wrong reference must not silently set the bar."""
    off = {"O": {"rel_l2": 0.5, "rel_max": 0.9}}
    trusted = ProbeReport(role="reference", device={"name": "cpu"}, canary={},
                          cases={"tiny": {"samples": {"reference": [(1.0, 1.0)]}, "self_check": {"reference": off}}})
    with pytest.raises(LmcourseError) as info:
        judge(tiny_spec(), 10.0, None, "it crashed", trusted, None)
    assert str(info.value) == ("the reference implementation fails its own correctness check on case 'tiny' "
                               "(O: rel L2 0.5, rel max 0.9): fix it or the tolerance.")


# ---- tripwires ----


def test_the_probe_refuses_to_have_its_code_swapped() -> None:
    """Audit hooks last for the life of a process: this one runs in a child."""
    script = (
        "import types\n"
        "from lmcourse.grader.bench.probe import guards, timing\n"
        "wires = guards.Tripwires()\n"
        "guards.guard_code([timing], wires)\n"
        "try:\n"
        "    timing.time_iterations.__code__ = (lambda *a, **k: None).__code__\n"
        "except RuntimeError as exc:\n"
        "    print('refused:', exc)\n"
        "other = lambda: 1\n"
        "other.__code__ = (lambda: 2).__code__\n"  # code outside the probe is the student's own business
        "print(other(), wires.seen)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True).stdout
    assert "refused: the benchmark harness's functions cannot be changed" in out
    assert "2 ['student code tried to replace the code of the harness function time_iterations']" in out


def test_a_replaced_harness_function_is_found() -> None:
    module = types.ModuleType("_lmcourse_bench.fake")
    module.time_iterations = lambda: None  # type: ignore[attr-defined]
    namespaces = guards.Namespaces([module])
    assert namespaces.changes() == []
    module.time_iterations = lambda: "fast"  # type: ignore[attr-defined]
    assert namespaces.changes() == ["student code replaced fake.time_iterations in the harness"]


# ---- spec ----


@pytest.mark.parametrize(("entry", "message"), [
    ({"bands": {"full_at": 2, "zero_at": 1}}, "field 'bands': zero_at (1) must be larger than full_at (2)"),
    ({"compare_to": "cudnn"}, "compare_to 'cudnn' must be one of: reference, sdpa"),
    ({"iters": 2}, "field 'iters': input should be greater than or equal to 5"),
    ({"cases": [{"name": "a", "seq": 8, "head_dim": 16}] * 2}, "case 'a' is listed twice"),
    ({"colour": "red"}, "unknown field 'colour'"),
])
def test_a_bad_spec_is_one_sentence(entry: dict[str, Any], message: str) -> None:
    data = tiny_spec().model_dump(mode="json") | entry
    with pytest.raises(ConfigError) as info:
        parse_benchmarks([data], "assignments/systems/unit.yaml")
    text = str(info.value)
    assert text.startswith("assignments/systems/unit.yaml (benchmarks.0): ") and message in text
    assert "\n" not in text and text.endswith(".")


def test_benchmarks_must_name_benchmark_problems() -> None:
    problems = [Problem(name="flash_speed", points=10, kind="benchmark"), Problem(name="flash_triton", points=20)]
    config = types.SimpleNamespace(name="systems", problems=problems, benchmarks=[tiny_spec()])
    assert unit_benchmarks(config) == [tiny_spec()]
    with pytest.raises(ConfigError, match="has no benchmark for problem 'flash_triton'"):
        unit_benchmarks(config, "flash_triton")
    config.benchmarks = [tiny_spec(problem="flash_triton")]
    with pytest.raises(ConfigError, match="names no problem of kind 'benchmark'"):
        unit_benchmarks(config)


# ---- into a grading run ----


def test_benchmark_points_enter_the_results(prims: guards.Primitives, tmp_path: Path) -> None:
    device = FakeDevice()
    naive = load_submission("naive")
    bench = run_protocol(tiny_spec(), device.costly(naive, 2.5), device.costly(naive, 1.0), prims, tmp_path,
                         FakeTimer(device))
    rows = [ProblemSummary(name="flash_triton", points=20, earned=20, passed=3, total=3, duration=1.0),
            ProblemSummary(name="flash_speed", points=10, earned=0, passed=0, total=0, duration=0.0)]
    scored = grading.with_benchmarks(Scored("systems", rows, [], 1.0, 0, False), [bench])
    assert scored.problems[1].earned == pytest.approx(bench.earned) and scored.problems[1].total == 1
    assert scored.score == pytest.approx(20 + bench.earned)
    config = types.SimpleNamespace(problems=[Problem(name="flash_triton", points=20),
                                             Problem(name="flash_speed", points=10, kind="benchmark")])
    results = grading.add_to_results(Results(score=scored.score), config, scored, [bench])  # type: ignore[arg-type]
    test = results.tests[0]
    assert test.number == "2.1" and test.name.startswith("flash_speed: tiny (b1 h2 s48 d16 causal fp32 fwd+bwd)")
    assert test.score == pytest.approx(bench.earned) and test.max_score == 10 and test.status == "passed"
    assert "ratio to reference: 2.50" in (test.output or "")
    assert results.leaderboard and results.leaderboard[0].name == "flash_speed tiny (ms)"
    assert results.leaderboard[0].value == pytest.approx(2.5) and results.leaderboard[0].order == "asc"


# ---- the command line and the processes ----


def test_without_a_gpu_bench_says_so_in_one_sentence_and_exits_0(tmp_path: Path) -> None:
    env = os.environ | {"CUDA_VISIBLE_DEVICES": "", "LMCOURSE_COURSE": str(MINICOURSE)}
    script = ("from lmcourse.grader.cli import cli; from lmcourse.grader.cli_bench import bench; "
              "cli.commands.setdefault('bench', bench); cli(prog_name='lmcourse')")
    argv = [LMCOURSE[0], "-c", script, "bench", str(SUBMISSIONS / "naive"), "--unit", "toy"]
    done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert (done.returncode, done.stdout, done.stderr) == (0, NO_GPU + "\n", "")


@pytest.mark.skipif(cuda_available(), reason="this machine has a GPU")
def test_without_a_gpu_bench_json_says_it_skipped() -> None:
    from lmcourse.grader.cli import cli
    from lmcourse.grader.cli_bench import bench

    cli.commands.setdefault("bench", bench)
    result = CliRunner().invoke(cli, ["--course", str(MINICOURSE), "bench", str(SUBMISSIONS / "naive"), "--unit", "toy",
                                      "--json"])
    assert result.exit_code == 0 and json.loads(result.output) == {"skipped": True, "reason": NO_GPU}


def test_bench_refuses_an_unknown_unit_in_one_sentence() -> None:
    from lmcourse.grader.cli import cli
    from lmcourse.grader.cli_bench import bench

    cli.commands.setdefault("bench", bench)
    result = CliRunner().invoke(cli, ["--course", str(MINICOURSE), "bench", str(SUBMISSIONS / "naive"), "--unit", "nope"])
    assert result.exit_code == 2 and "unit 'nope' is not enabled" in result.output


@pytest.mark.parametrize("sandbox", ["none", "local", "docker"])
def test_two_real_processes_catch_a_cached_output(sandbox: str) -> None:
    """The whole protocol through the probe processes on the CPU, in each sandbox: plan, boot copy,
    mounts, reports, outputs saved by one process and checked by the other, verdict."""
    if sandbox != "none":
        try:
            get_sandbox(sandbox)
        except LmcourseError as exc:
            pytest.skip(str(exc))
    result = benchmark(tiny_spec(), 10.0, code=SUBMISSIONS / "cached", staff=SUBMISSIONS / "naive", sandbox=sandbox,
                       limits=Limits(), device="cpu")
    case = result.cases[0]
    assert case.verdict == "anomaly" and "cached or precomputed" in case.anomalies[0]
    assert set(case.times) == {"submission", "reference", "sdpa"} and case.times["submission"].n == 6
