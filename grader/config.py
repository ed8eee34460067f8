"""``course.yaml`` and ``unit.yaml`` as pydantic v2 models.

Every key is a typed field with a default and a description, so ``lmcourse schema`` can
print the JSON Schema the docs are written from. Loading goes through :func:`load_yaml_model`,
which turns YAML and validation errors into one sentence naming the file, the field and
what was expected.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ..leaderboard.config import BoardRules
from .bench.spec import BenchmarkSpec
from .errors import ConfigError

IDENTIFIER = r"^[a-z][a-z0-9_]*$"


class _Strict(BaseModel):
    """Unknown keys are errors: a typo must not silently fall back to a default."""

    model_config = ConfigDict(extra="forbid")


class LatePolicy(_Strict):
    grace_minutes: int = Field(0, ge=0, description="Minutes after the deadline that still count as on time.")
    penalty_per_day: float = Field(
        0.0, ge=0, le=1, description="Fraction of the score lost per started day late (0.1 = 10%)."
    )
    max_days_late: int = Field(
        0, ge=0, description="Days after the deadline a submission is still accepted; later ones score 0."
    )


class Limits(_Strict):
    test_timeout_s: float = Field(60, gt=0, description="Wall-clock limit of one test, in seconds.")
    total_timeout_s: float = Field(1800, gt=0, description="Wall-clock limit of a whole grading run, in seconds.")
    memory_mb: int = Field(4096, gt=0, description="Memory limit of the sandbox (swap included), in MiB.")
    pids: int = Field(256, gt=0, description="Most processes and threads the sandbox may hold at once.")
    cpus: float = Field(2.0, gt=0, description="CPU cores the sandbox may use.")
    disk_mb: int = Field(1024, gt=0, description="Size of the sandbox's private writable tmp, in MiB.")
    output_kb: int = Field(1024, gt=0, description="Captured output kept per run, in KiB; the rest is cut.")
    submission_mb: int = Field(20, gt=0, description="Largest submission archive accepted, in MiB.")
    gpu: bool = Field(False, description="Whether grading needs a GPU.")


class LimitOverrides(_Strict):
    """The subset of :class:`Limits` a unit sets; unset fields come from ``course.yaml``."""

    test_timeout_s: float | None = Field(None, gt=0)
    total_timeout_s: float | None = Field(None, gt=0)
    memory_mb: int | None = Field(None, gt=0)
    pids: int | None = Field(None, gt=0)
    cpus: float | None = Field(None, gt=0)
    disk_mb: int | None = Field(None, gt=0)
    output_kb: int | None = Field(None, gt=0)
    submission_mb: int | None = Field(None, gt=0)
    gpu: bool | None = None

    def apply(self, base: Limits) -> Limits:
        return base.model_copy(update=self.model_dump(exclude_none=True))


class UnitSchedule(_Strict):
    release: dt.datetime | None = Field(None, description="When the handout is released (ISO 8601).")
    due: dt.datetime | None = Field(None, description="The deadline (ISO 8601, with a UTC offset).")

    @model_validator(mode="after")
    def _release_before_due(self) -> UnitSchedule:
        if self.release and self.due and self.release >= self.due:
            raise ValueError("release must come before due")
        return self


class SlurmConfig(_Strict):
    """``course.yaml`` ``slurm:``: how ``lmcourse grade --executor slurm`` asks a cluster for its jobs.

    Unset resources follow the unit's grading limits (see ``docs/slurm.md``).
    """

    partition: str | None = Field(None, description="Partition (queue) the jobs go to; default: the cluster's.")
    account: str | None = Field(None, description="Account the jobs are charged to (sbatch --account).")
    time_limit: str | None = Field(
        None,
        pattern=r"^(\d+-)?\d+(:\d+){0,2}$",
        description="Slurm time limit per job (e.g. '45', '1:30:00', '1-00:00:00'); default: the unit's "
        "total_timeout_s plus 5 minutes.",
    )
    mem_mb: int | None = Field(
        None, gt=0, description="Memory per job in MiB; default: the unit's memory_mb plus 2048 for the grader."
    )
    cpus: int | None = Field(None, gt=0, description="CPUs per job; default: the unit's cpus (rounded up) plus 1.")
    gpus: int | None = Field(
        None, ge=0, description="GPUs per job, as gres; default: 1 if the unit needs a GPU, else 0."
    )
    gpu_type: str | None = Field(
        None, pattern=r"^[A-Za-z0-9_.-]+$", description="GPU type for gres, e.g. 'a100' gives --gres=gpu:a100:N."
    )
    extra_args: list[str] = Field(
        default_factory=list, description="More sbatch options, one per item, e.g. '--qos=course' or '--constraint=avx2'."
    )
    setup: list[str] = Field(
        default_factory=list,
        description="Shell lines each job runs before grading, e.g. 'module load python/3.11'.",
    )
    work_dir: Path | None = Field(
        None, description="Shared folder for job scripts, logs and results; default: OUT/.slurm of the batch."
    )
    python: str | None = Field(
        None, description="Python on the nodes with lmcourse installed; default: the one running lmcourse."
    )

    @field_validator("extra_args")
    @classmethod
    def _options(cls, args: list[str]) -> list[str]:
        for arg in args:
            if not arg.startswith("-") or "\n" in arg:
                raise ValueError(f"each extra sbatch argument must be one option starting with '-', got {arg!r}")
        return args


class CourseConfig(_Strict):
    """``course.yaml`` at the root of a course."""

    name: str = Field(description="The course's name, shown in handouts and reports.")
    term: str = Field(description="The term, e.g. 'Spring 2027'.")
    package_prefix: str = Field(
        pattern=IDENTIFIER,
        description="Prefix of student package names: unit 'basics' becomes '<prefix>_basics'.",
    )
    units: dict[str, UnitSchedule] = Field(
        description="The units enabled this term, each with its release and due dates."
    )
    late_policy: LatePolicy = Field(default_factory=LatePolicy)
    limits: Limits = Field(default_factory=Limits, description="Default grading limits; units may override.")
    slurm: SlurmConfig | None = Field(None, description="Where `lmcourse grade --executor slurm` sends its jobs.")

    @field_validator("units")
    @classmethod
    def _unit_names(cls, units: dict[str, UnitSchedule]) -> dict[str, UnitSchedule]:
        for name in units:
            if not re.match(IDENTIFIER, name):
                raise ValueError(f"unit name {name!r} must be lowercase letters, digits and underscores")
        return units


class ProblemKind(str, enum.Enum):
    code = "code"
    benchmark = "benchmark"
    leaderboard = "leaderboard"
    written = "written"


class Problem(_Strict):
    name: str = Field(pattern=IDENTIFIER, description="Name used by @pytest.mark.problem(...).")
    title: str = Field("", description="A short human title.")
    points: float = Field(ge=0, description="Points the problem is worth.")
    kind: ProblemKind = Field(
        ProblemKind.code,
        description="code: graded by tests; benchmark: timed on a GPU; leaderboard; written: graded by staff.",
    )

    @property
    def graded_by_tests(self) -> bool:
        return self.kind is not ProblemKind.written


class HandoutRules(_Strict):
    omit: list[str] = Field(
        default_factory=list, description="Globs (relative to the reference package) of files left out."
    )
    stub: list[str] = Field(
        default_factory=list,
        description="Globs of files whose every function body is replaced by a stub (signatures stay).",
    )
    ships: list[str] = Field(
        default_factory=list, description="Other units whose reference package ships un-stripped."
    )
    stub_template: str = Field("raise", description="Default stub, a template in templates/stubs/.")


class UnitConfig(_Strict):
    """``assignments/<unit>/unit.yaml``."""

    name: str = Field(pattern=IDENTIFIER, description="The unit's name; must match its folder.")
    title: str = Field(description="The handout's title.")
    package: str | None = Field(
        None, pattern=IDENTIFIER, description="Student package name; defaults to '<prefix>_<name>'."
    )
    problems: list[Problem] = Field(min_length=1)
    benchmarks: list[BenchmarkSpec] = Field(
        default_factory=list, description="GPU timings of the problems of kind 'benchmark' (docs/bench.md)."
    )
    student_files: list[str] = Field(
        default_factory=lambda: ["{package}/**", "tests/adapters.py"],
        description="Globs of the files a student owns and submits; '{package}' is substituted.",
    )
    handout: HandoutRules = Field(default_factory=HandoutRules)
    limits: LimitOverrides = Field(default_factory=LimitOverrides)
    dependencies: list[str] = Field(
        default_factory=list, description="Python requirements of the handout (PEP 508)."
    )
    leaderboard: BoardRules | None = Field(
        None, description="The unit's perplexity leaderboard, if it has one: what is evaluated and what is accepted."
    )

    @field_validator("benchmarks")
    @classmethod
    def _benchmarks_time_benchmark_problems(cls, benchmarks: list[BenchmarkSpec], info: ValidationInfo) -> list[BenchmarkSpec]:
        kinds = {p.name: p.kind for p in info.data.get("problems", [])}
        for b in benchmarks:
            if kinds.get(b.problem) is not ProblemKind.benchmark:
                raise ValueError(f"{b.problem!r} is not a problem of kind 'benchmark'")
        return benchmarks

    @field_validator("problems")
    @classmethod
    def _unique_problems(cls, problems: list[Problem]) -> list[Problem]:
        seen: set[str] = set()
        for p in problems:
            if p.name in seen:
                raise ValueError(f"problem {p.name!r} is listed twice")
            seen.add(p.name)
        return problems

    def problem(self, name: str) -> Problem | None:
        return next((p for p in self.problems if p.name == name), None)

    @property
    def total_points(self) -> float:
        return sum(p.points for p in self.problems)


M = TypeVar("M", bound=BaseModel)


def load_yaml_model(path: Path, model: type[M]) -> M:
    """Read ``path`` and validate it as ``model``; any failure is one :class:`ConfigError` sentence."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read ({exc}).") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        reason = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}:{where} is not valid YAML ({reason}).") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of keys to values, got {type(data).__name__}.")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(path, exc)) from None


def describe_validation_error(path: Path | str, exc: ValidationError) -> str:
    """One sentence for the first error, counting the others."""
    errors = exc.errors()
    first = errors[0]
    field = ".".join(str(part) for part in first["loc"]) or "(top level)"
    if first["type"] == "extra_forbidden":
        sentence = f"{path}: unknown field '{field}'"
    elif first["type"] == "missing":
        sentence = f"{path}: field '{field}' is required but missing"
    else:
        message = first["msg"]
        message = message[0].lower() + message[1:]
        message = message.removeprefix("value error, ")
        sentence = f"{path}: field '{field}': {message} (got {_short(first.get('input'))})"
    more = len(errors) - 1
    if more:
        sentence += f"; and {more} more problem{'s' if more > 1 else ''}"
    return sentence + "."


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def json_schemas() -> dict[str, Any]:
    """The JSON Schema of each config file, keyed by file name."""
    return {
        "course.yaml": CourseConfig.model_json_schema(),
        "unit.yaml": UnitConfig.model_json_schema(),
    }
