"""Assemble the training API from settings (database, law, rules, backend) and serve it.

In a course repository the staff files sit at fixed places, found from the course root:

- ``assignments/scaling/tests/hidden/hidden_law.yaml``: the law the simulator follows (secret;
  beside the hidden tests, which grade predictions with it);
- ``assignments/scaling/fixtures/challenge.yaml``: the public rules (target, budget, bands).

The real backend trains in child processes of the server (``executor="inline"``) or in Slurm jobs
(``executor="slurm"``, asking for what ``course.yaml``'s ``slurm:`` section sets; see ``docs/slurm.md``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sqlalchemy import Engine

from ..config import SlurmConfig
from ..errors import LmcourseError
from ..slurm import Slurm
from .backends import Backend, RealBackend, RealSettings, SimulatedBackend
from .challenge import load_challenge
from .db import make_engine, upgrade
from .law import HiddenLaw, load_law
from .service import ScalingService
from .slurm_runs import SlurmBackend, slurm_resources

LAW_PATH = Path("assignments/scaling/tests/hidden/hidden_law.yaml")
CHALLENGE_PATH = Path("assignments/scaling/fixtures/challenge.yaml")
DEFAULT_DATABASE = "sqlite:///scaling.db"
RUNS_DIR = Path("out/scaling-runs")  # Slurm runs' folders, under the course root unless slurm.work_dir is set


@dataclass(frozen=True)
class ServerSettings:
    challenge_path: Path
    law_path: Path | None = None  # required by the simulated backend; scores predictions when given
    database_url: str = DEFAULT_DATABASE
    backend: Literal["simulated", "real"] = "simulated"
    real: RealSettings | None = None
    executor: Literal["inline", "slurm"] = "inline"  # where the real backend trains
    slurm: SlurmConfig | None = None  # course.yaml's slurm: section, for executor="slurm"
    gpu_flops_per_second: float = 4e14  # converts FLOPs to GPU-seconds for budgets kept in GPU-seconds
    workers: int = 1  # concurrent real training runs

    @classmethod
    def for_course(cls, root: Path, **overrides: object) -> ServerSettings:
        """Settings with the staff files of the course at ``root``; ``overrides`` replace any field."""
        fields: dict[str, object] = {"challenge_path": root / CHALLENGE_PATH, "law_path": root / LAW_PATH}
        fields.update({key: value for key, value in overrides.items() if value is not None})
        return cls(**fields)  # type: ignore[arg-type]


def open_database(url: str) -> Engine:
    """An engine on ``url`` with the schema created or upgraded; one sentence if it cannot be reached."""
    engine = make_engine(url)
    try:
        upgrade(engine)
    except Exception as exc:  # driver errors come in many types; all mean the same to the operator
        engine.dispose()
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise LmcourseError(f"cannot open the scaling database {engine.url.render_as_string(hide_password=True)} ({first}).") from None
    return engine


def build_service(settings: ServerSettings, engine: Engine | None = None) -> ScalingService:
    challenge = load_challenge(settings.challenge_path)
    law = load_law(settings.law_path) if settings.law_path is not None else None
    backend = _backend(settings, law, challenge.context_length)
    return ScalingService(
        engine or open_database(settings.database_url),
        backend,
        challenge,
        law=law,
        gpu_flops_per_second=settings.gpu_flops_per_second,
        workers=settings.workers,
    )


def _backend(settings: ServerSettings, law: HiddenLaw | None, context_length: int) -> Backend:
    if settings.backend == "real":
        if settings.real is None:
            raise LmcourseError("the real backend needs training data: pass --train-data, --val-data and --vocab-size.")
        if settings.executor == "slurm":
            return _slurm_backend(settings.real, settings.slurm or SlurmConfig(), context_length)
        return RealBackend(settings.real, context_length)
    if law is None:
        raise LmcourseError("the simulated backend needs the hidden law: pass --law PATH.")
    return SimulatedBackend(law, context_length)


def _slurm_backend(real: RealSettings, config: SlurmConfig, context_length: int) -> SlurmBackend:
    slurm = Slurm()
    slurm.check()
    work_dir = config.work_dir / "scaling" if config.work_dir else real.workdir / RUNS_DIR
    return SlurmBackend(real, context_length, resources=slurm_resources(config, real), work_dir=work_dir,
                        python=config.python, slurm=slurm)


def serve(service: ScalingService, host: str, port: int, *, quiet: bool = False) -> None:
    import uvicorn

    from .app import create_app

    uvicorn.run(create_app(service), host=host, port=port, log_level="warning" if quiet else "info")
