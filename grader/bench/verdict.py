"""From the two probes' reports to a score per case: correctness, times, floor, ratio, anomalies.

Runs in the grader's process, on plain data. In order, for each case:

1. the submission's process failed or reported an error: the case earns nothing (``error``);
2. its outputs on fresh inputs *before* timing are off: ``wrong``;
3. right before timing but off on an audited timed iteration or *after* timing: an anomaly (outputs
   cached or precomputed);
4. its CUDA-event time is much shorter than the host time up to a device-wide sync: an anomaly
   (work left running on another stream);
5. its fastest iteration beats the physical floor of the GPU (or takes no time): an anomaly;
6. the run as a whole: the canary kernel ran faster once the student's code was imported than in
   every trusted measurement (before the import, and in the reference's process), or a tripwire
   fired: every case is an anomaly;
7. otherwise the median time over the compared implementation's median is the ratio, and the
   spec's bands turn it into a share of the case's points.

An anomaly scores 0 and is named in the results for staff to review.
"""

from __future__ import annotations

import statistics
from typing import Literal

from pydantic import BaseModel, Field, computed_field

from ..errors import LmcourseError
from .measurements import CaseReport, ProbeReport, Stats, Verified, stats
from .peaks import Peaks, floor_ms
from .spec import AttentionCase, BenchmarkSpec

Verdict = Literal["full", "partial", "zero", "wrong", "error", "anomaly", "not run"]
SUBMISSION = "submission"
#: Stream time below this share of the host time (and ``STREAM_GAP_MS`` shorter) means the call
#: returned before its work was done. An honest call loses only launch and sync overhead (~0.02 ms).
STREAM_SHARE = 0.5
STREAM_GAP_MS = 0.05
#: The canary after import may not be faster than this share of the trusted canary times. GPUs get
#: slower when hot, never faster, so only "faster" is suspicious; the margin absorbs clock jitter.
CANARY_SHARE = 0.8


class CaseResult(BaseModel):
    name: str
    label: str = Field(description="The case in one line, e.g. 'b1 h16 s16384 d64 causal bf16 fwd+bwd'.")
    weight: float
    points: float = Field(description="The case's share of the problem's points.")
    times: dict[str, Stats] = Field(default_factory=dict, description="Per implementation timed.")
    ratio: float | None = None
    tflops: float | None = None
    floor_ms: float | None = None
    fraction: float = 0.0
    verdict: Verdict = "error"
    reasons: list[str] = Field(default_factory=list, description="Why it earned less than everything.")
    anomalies: list[str] = Field(default_factory=list, description="Signs of gaming, for staff review.")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def earned(self) -> float:
        return round(self.points * self.fraction, 4)

    @property
    def submission_ms(self) -> float | None:
        ours = self.times.get(SUBMISSION)
        return ours.median_ms if ours else None


class BenchResult(BaseModel):
    problem: str
    points: float
    compare_to: str
    device: str = ""
    cases: list[CaseResult]
    anomalies: list[str] = Field(default_factory=list, description="Anomalies of the whole run (canary, tripwires).")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def earned(self) -> float:
        return round(sum(c.earned for c in self.cases), 4)


def case_points(spec: BenchmarkSpec, case: AttentionCase, points: float) -> float:
    return points * case.weight / spec.total_weight


def not_run(spec: BenchmarkSpec, points: float, reason: str) -> BenchResult:
    """Every case earns nothing, for one reason (no GPU, the process could not start)."""
    cases = [
        CaseResult(name=c.name, label=c.label(), weight=c.weight, points=case_points(spec, c, points),
                   verdict="not run", reasons=[reason])
        for c in spec.cases
    ]
    return BenchResult(problem=spec.problem, points=points, compare_to=spec.compare_to, cases=cases)


def judge(
    spec: BenchmarkSpec,
    points: float,
    submission: ProbeReport | None,
    submission_failure: str | None,
    reference: ProbeReport,
    peaks: Peaks | None,
) -> BenchResult:
    """Score every case of ``spec`` from the two reports.

    ``peaks`` None means the run was on the CPU (the toolkit's own tests): no floor, and no canary
    comparison, because CPU times on a shared machine are too noisy to compare across processes.
    """
    run_anomalies = run_level_anomalies(submission, reference, canary=peaks is not None)
    cases = []
    for case in spec.cases:
        result = CaseResult(name=case.name, label=case.label(), weight=case.weight,
                            points=case_points(spec, case, points))
        trusted = reference.cases.get(case.name)
        if trusted is None or trusted.error:
            why = trusted.error if trusted else "no result"
            raise LmcourseError(f"the reference benchmark process failed on case '{case.name}': {why}.")
        _check_trusted(spec, case, trusted)
        result.times = {name: stats(s) for name, s in trusted.samples.items() if s}
        mine = _submission_case(case.name, submission, submission_failure)
        if isinstance(mine, str):
            result.reasons.append(mine)
        else:
            _judge_case(spec, case, mine, trusted, peaks, result)
        if run_anomalies and result.verdict != "error":
            result.anomalies += run_anomalies
        _settle(spec, result)
        cases.append(result)
    device = str(reference.device.get("name") or "")
    return BenchResult(problem=spec.problem, points=points, compare_to=spec.compare_to, device=device,
                       cases=cases, anomalies=run_anomalies)


def _check_trusted(spec: BenchmarkSpec, case: AttentionCase, trusted: CaseReport) -> None:
    """The staff implementation and the baselines must pass the check they hold students to."""
    tolerance = spec.tolerance_for(case.dtype)
    for name, errors in trusted.self_check.items():
        for tensor, e in errors.items():
            if e.rel_l2 > tolerance.rel_l2 or e.rel_max > tolerance.rel_max:
                raise LmcourseError(
                    f"the {name} implementation fails its own correctness check on case '{case.name}' "
                    f"({tensor}: rel L2 {e.rel_l2:.3g}, rel max {e.rel_max:.3g}): fix it or the tolerance."
                )


def _submission_case(name: str, report: ProbeReport | None, failure: str | None) -> CaseReport | str:
    """The submission's result for case ``name``, or one sentence saying why there is none."""
    if report is None:
        return f"the benchmark process left no valid report ({failure or 'no reason given'})"
    if report.load_error:
        return f"could not load the implementation: {report.load_error}"
    case = report.cases.get(name)
    if case is None:
        return f"not measured: {failure or 'the benchmark process stopped before this case'}"
    if case.error:
        return f"the implementation failed: {case.error}"
    if SUBMISSION not in case.samples or not case.samples[SUBMISSION]:
        return "no times were reported"
    return case


def _judge_case(
    spec: BenchmarkSpec, case: AttentionCase, mine: CaseReport, trusted: CaseReport, peaks: Peaks | None,
    result: CaseResult,
) -> None:
    result.verdict = "zero"  # provisional: _settle decides from reasons, anomalies and the ratio
    wrong = _wrong_outputs(spec, case, trusted.verified)
    if "before" in wrong:
        result.reasons.append(f"wrong answer on fresh inputs: {wrong['before']}")
        result.verdict = "wrong"
    elif wrong:
        label, why = next(iter(wrong.items()))
        when = "after timing" if label == "after" else f"on timed iteration {label.removeprefix('iter')}"
        result.anomalies.append(f"right before timing but wrong {when} ({why}): outputs cached or precomputed")
    ours = stats(mine.samples[SUBMISSION])
    result.times[SUBMISSION] = ours
    if ours.median_ms < STREAM_SHARE * ours.wall_median_ms and ours.wall_median_ms - ours.median_ms > STREAM_GAP_MS:
        result.anomalies.append(
            f"the call returns before its work is done: {ours.median_ms:.3f} ms on the caller's stream, "
            f"{ours.wall_median_ms:.3f} ms until the device is idle (work on another CUDA stream nobody waits for)"
        )
    if ours.min_ms <= 0:
        result.anomalies.append(f"a time of {ours.min_ms:.3f} ms: no work takes no time")
    elif peaks is not None:
        result.floor_ms = floor_ms(case.floor_flops(), case.floor_bytes(), case.dtype, peaks)
        if ours.min_ms < result.floor_ms:
            result.anomalies.append(
                f"{ours.min_ms:.3f} ms is below the physical floor of {result.floor_ms:.3f} ms on {peaks.name} "
                f"({case.floor_flops() / 1e12:.2f} TFLOP at {peaks.tflops_for(case.dtype):g} TFLOP/s, "
                f"{case.floor_bytes() / 1e9:.2f} GB at {peaks.bandwidth_tbs:g} TB/s): impossible"
            )
    compared = result.times.get(spec.compare_to)
    if compared is None or compared.median_ms <= 0:
        raise LmcourseError(f"the reference benchmark process has no usable time of '{spec.compare_to}' on case '{case.name}'.")
    result.ratio = ours.median_ms / compared.median_ms
    result.tflops = case.flops() / (ours.median_ms * 1e-3) / 1e12 if ours.median_ms > 0 else None


def _wrong_outputs(spec: BenchmarkSpec, case: AttentionCase, verified: dict[str, Verified]) -> dict[str, str]:
    """Check label -> what is wrong, for every check (before, audited iterations, after) that failed."""
    tolerance = spec.tolerance_for(case.dtype)
    wrong = {}
    for label, v in verified.items():
        if v.errors is None:
            wrong[label] = v.error or "no outputs"
            continue
        for tensor, e in v.errors.items():
            if e.rel_l2 > tolerance.rel_l2:
                wrong[label] = f"{tensor} off by rel L2 {e.rel_l2:.3g} (allowed {tolerance.rel_l2:g})"
                break
            if e.rel_max > tolerance.rel_max:
                wrong[label] = f"{tensor} off by rel max {e.rel_max:.3g} (allowed {tolerance.rel_max:g})"
                break
    if not verified:
        wrong["before"] = "the outputs were never checked"
    return wrong


def run_level_anomalies(submission: ProbeReport | None, reference: ProbeReport, *, canary: bool = True) -> list[str]:
    """Tripwires that fired, and (with ``canary``) a canary that ran faster once the student's code was loaded."""
    if submission is None:
        return []
    found = list(submission.tampering)
    after = submission.canary.get("after") if canary else None
    trusted = [submission.canary.get("before"), reference.canary.get("before"), reference.canary.get("after")]
    baselines = [statistics.median(t) for t in trusted if t]
    if after and baselines:
        # Against the fastest trusted time: a cold or busy GPU makes a canary slower, never faster.
        mine, fastest = statistics.median(after), min(baselines)
        if mine < CANARY_SHARE * fastest:
            found.append(
                f"the canary kernel took {mine:.3f} ms once the student's code was loaded, against {fastest:.3f} ms "
                "without it: the harness's clock was tampered with"
            )
    return found


def _settle(spec: BenchmarkSpec, result: CaseResult) -> None:
    """The verdict and fraction from what was found; a ratio scores only a clean case."""
    if result.verdict in ("error", "not run", "wrong"):
        result.fraction = 0.0
        return
    if result.anomalies:
        result.verdict, result.fraction = "anomaly", 0.0
        return
    assert result.ratio is not None
    result.fraction = spec.bands.fraction(result.ratio)
    result.verdict = "full" if result.fraction == 1.0 else "partial" if result.fraction > 0 else "zero"
    if result.fraction < 1.0:
        result.reasons.append(
            f"{result.ratio:.2f}x the {spec.compare_to}'s time (full points at <= {spec.bands.full_at:g}x, "
            f"none at >= {spec.bands.zero_at:g}x)"
        )
