"""``lmcourse scaling``: the training API of the scaling unit, for students and staff.

Students (key and server from ``--key``/``--url`` or ``$LMCOURSE_SCALING_KEY``/``$LMCOURSE_SCALING_URL``)::

    lmcourse scaling submit --d-model 256 --num-layers 4 --num-heads 4 --batch-size 64 \\
        --learning-rate 2e-3 --train-tokens 5e7
    lmcourse scaling status [ID]
    lmcourse scaling budget
    lmcourse scaling final --config best.json --predicted-loss 3.05

Staff::

    lmcourse scaling serve --db postgresql://... --port 8100
    lmcourse scaling serve --backend real --executor slurm --train-data ... --val-data ... --vocab-size ...
    lmcourse scaling students add alice        # prints alice's key, once
    lmcourse scaling students list             # every student (instructor key)

Exit codes: 0 done; 1 an experiment the command waited for failed; 2 bad input or a refusal of
the server (one sentence on stderr). :mod:`.cli` adds this group at its end, after defining what
this module imports from it.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from . import console
from .cli import _course, json_option
from .errors import LmcourseError

if TYPE_CHECKING:
    from .config import SlurmConfig
    from .scaling.client import ScalingClient

DB_ENV = "LMCOURSE_SCALING_DB"
PREDICTION_FILE = "final_prediction.json"
CONFIG_FIELDS = ("d_model", "num_layers", "num_heads", "batch_size", "learning_rate", "train_tokens")

url_option = click.option("--url", envvar="LMCOURSE_SCALING_URL", help="The server (default: $LMCOURSE_SCALING_URL, else http://127.0.0.1:8100).")
key_option = click.option("--key", envvar="LMCOURSE_SCALING_KEY", help="Your API key (default: $LMCOURSE_SCALING_KEY).")
db_option = click.option("--db", "database_url", envvar=DB_ENV, default="sqlite:///scaling.db", show_default=True, help=f"Database URL (SQLite file or postgresql://...; also ${DB_ENV}).")


def config_options(command: Any) -> Any:
    """``--config FILE`` or one option per field of an experiment config."""
    for name, kind in reversed(list(zip(CONFIG_FIELDS, (int, int, int, int, float, float), strict=True))):
        command = click.option(f"--{name.replace('_', '-')}", name, type=kind, help=f"The config's {name}.")(command)
    return click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                        help="A JSON file holding the config (fields as in the options below).")(command)


def _config(config_file: Path | None, fields: dict[str, Any]) -> dict[str, Any]:
    """The config from a file and/or options (options win); the server validates it."""
    config: dict[str, Any] = {}
    if config_file is not None:
        try:
            config = json.loads(config_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise LmcourseError(f"{config_file} is not a readable JSON file ({exc}).") from None
        if not isinstance(config, dict):
            raise LmcourseError(f"{config_file} must hold a JSON object of config fields.")
    config.update({name: value for name, value in fields.items() if value is not None})
    missing = [name for name in CONFIG_FIELDS if name not in config]
    if missing:
        raise LmcourseError(f"the config lacks {', '.join(missing)}: pass --config FILE or --{missing[0].replace('_', '-')}.")
    return config


def _client(url: str | None, key: str | None) -> ScalingClient:
    from .scaling.client import ScalingClient

    return ScalingClient.from_env(url, key)


@click.group()
def scaling() -> None:
    """The scaling unit's training API: submit runs under a budget, record a prediction."""


# ---- staff ----


@scaling.command()
@db_option
@click.option("--law", "law_path", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="The hidden law (default: the course's assignments/scaling/tests/hidden/hidden_law.yaml).")
@click.option("--challenge", "challenge_path", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="The rules (default: the course's assignments/scaling/fixtures/challenge.yaml).")
@click.option("--backend", type=click.Choice(["simulated", "real"]), default="simulated", show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8100, show_default=True, type=click.IntRange(1, 65535))
@click.option("--train-data", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Real backend: uint16 training tokens.")
@click.option("--val-data", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Real backend: uint16 validation tokens.")
@click.option("--vocab-size", type=click.IntRange(2, 65536), help="Real backend: the tokenizer's vocabulary size.")
@click.option("--device", default="auto", show_default=True, help="Real backend: where runs train.")
@click.option("--executor", type=click.Choice(["inline", "slurm"]), default="inline", show_default=True,
              help="Real backend: train in child processes here, or in Slurm jobs (resources from course.yaml's slurm: section).")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64), help="Real backend: runs trained (or Slurm jobs followed) at once.")
@click.option("--gpu-flops", default=4e14, show_default=True, type=click.FloatRange(min=1.0), help="FLOP/s of one GPU, for budgets in GPU-seconds.")
@json_option
@click.pass_context
def serve(ctx: click.Context, database_url: str, law_path: Path | None, challenge_path: Path | None, backend: str, host: str,
          port: int, train_data: Path | None, val_data: Path | None, vocab_size: int | None, device: str, executor: str,
          workers: int, gpu_flops: float, as_json: bool) -> None:
    """Run the training API server."""
    from .scaling.backends import RealSettings
    from .scaling.server import ServerSettings, build_service
    from .scaling.server import serve as run_server

    root = _course_root(ctx)
    real = None
    if backend == "real" and train_data and val_data and vocab_size:
        real = RealSettings(train_data=train_data.resolve(), val_data=val_data.resolve(), vocab_size=vocab_size,
                            device=device, workdir=root)
    settings = ServerSettings.for_course(
        root, challenge_path=challenge_path, law_path=law_path, database_url=database_url, backend=backend, real=real,
        executor=executor, slurm=_slurm_config(ctx) if executor == "slurm" else None, gpu_flops_per_second=gpu_flops,
        workers=workers,
    )
    if not settings.challenge_path.is_file():
        raise LmcourseError(f"{settings.challenge_path} does not exist: run inside the course repository or pass --challenge.")
    if settings.law_path is not None and not settings.law_path.is_file():
        if backend == "simulated":
            raise LmcourseError(f"{settings.law_path} does not exist: run inside the course repository or pass --law.")
        settings = dataclasses.replace(settings, law_path=None)  # the real backend needs no law; predictions go unscored
    if as_json:  # one line a supervisor can read before the access log starts
        console.emit_json({"url": f"http://{host}:{port}/", "backend": backend})
    run_server(build_service(settings), host, port, quiet=as_json)


def _slurm_config(ctx: click.Context) -> SlurmConfig:
    """``course.yaml``'s ``slurm:`` section; outside a course (or without one), Slurm's defaults."""
    from .config import SlurmConfig as Config

    try:
        return _course(ctx).config.slurm or Config()
    except LmcourseError:
        return Config()


def _course_root(ctx: click.Context) -> Path:
    try:
        return _course(ctx).root
    except LmcourseError:
        return Path.cwd()  # outside a course: --law and --challenge must be given


@scaling.group()
def students() -> None:
    """Staff: add users, see everyone's progress."""


@students.command("add")
@click.argument("name")
@click.option("--budget", type=click.FloatRange(min=0), help="Budget in --unit (default: the challenge's budget).")
@click.option("--unit", type=click.Choice(["flops", "gpu_seconds"]), default="flops", show_default=True)
@click.option("--instructor", is_flag=True, help="An instructor key: sees every student.")
@click.option("--challenge", "challenge_path", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="The rules (for the default budget).")
@db_option
@json_option
@click.pass_context
def students_add(ctx: click.Context, name: str, budget: float | None, unit: str, instructor: bool,
                 challenge_path: Path | None, database_url: str, as_json: bool) -> None:
    """Add a user NAME to the database and print their API key (shown this once only)."""
    from sqlalchemy.orm import sessionmaker

    from .database import writer
    from .scaling.challenge import load_challenge
    from .scaling.server import CHALLENGE_PATH, open_database
    from .scaling.service import add_student

    challenge = load_challenge(challenge_path or _course_root(ctx) / CHALLENGE_PATH)
    total = challenge.budget if budget is None else budget
    key = add_student(sessionmaker(writer(open_database(database_url))), name, total, unit, instructor)  # type: ignore[arg-type]
    if as_json:
        console.emit_json({"name": name, "role": "instructor" if instructor else "student", "key": key, "budget": total, "unit": unit})
        return
    console.out.print(f"added {'instructor' if instructor else 'student'} {name} with a budget of {total:.4g} {unit}")
    console.out.print(f"API key (shown once; hand it to {name}): {key}", markup=False)


@students.command("list")
@url_option
@key_option
@json_option
def students_list(url: str | None, key: str | None, as_json: bool) -> None:
    """Every user's budget, experiments and scored prediction (needs an instructor key)."""
    from rich.table import Table

    with _client(url, key) as client:
        rows = client.students()
    if as_json:
        console.emit_json([row.model_dump(mode="json") for row in rows])
        return
    table = Table(title="scaling: students", title_justify="left")
    for column in ("name", "role", "spent", "completed", "failed", "prediction", "score"):
        table.add_column(column)
    for row in rows:
        spent = f"{row.budget.spent:.3g}/{row.budget.total:.3g} {row.budget.unit}" if row.budget else "-"
        prediction = f"N={row.prediction.parameters:.3g}, loss {row.prediction.predicted_loss:.4f}" if row.prediction else "-"
        score = f"{row.score.earned:g}/{row.score.possible:g}" if row.score else "-"
        table.add_row(row.name, row.role, spent, str(row.experiments["completed"]), str(row.experiments["failed"]), prediction, score)
    console.out.print(table)


# ---- students ----


@scaling.command()
@config_options
@click.option("--wait", is_flag=True, help="Wait until the experiment is completed or failed.")
@url_option
@key_option
@json_option
@click.pass_context
def submit(ctx: click.Context, config_file: Path | None, wait: bool, url: str | None, key: str | None, as_json: bool, **fields: Any) -> None:
    """Submit an experiment; a config submitted before is returned, not charged again."""
    with _client(url, key) as client:
        result = client.submit(_config(config_file, fields))
        experiment = client.wait(result.experiment.id) if wait and not result.experiment.done else result.experiment
    if as_json:
        console.emit_json({**result.model_dump(mode="json"), "experiment": experiment.model_dump(mode="json")})
    else:
        charged = f"charged {experiment.cost:.4g} {result.budget.unit}" if result.charged else "submitted before: not charged"
        console.out.print(f"experiment {experiment.id}: {experiment.status} ({charged}); {result.budget.remaining:.4g} {result.budget.unit} left")
        _print_outcome(experiment)
    if experiment.status == "failed":
        ctx.exit(1)


def _print_outcome(experiment: Any) -> None:
    if experiment.final_loss is not None:
        console.out.print(f"final loss {experiment.final_loss:.4f} (N = {experiment.parameters:.4g}, {experiment.flops:.4g} FLOPs)")
    if experiment.failure_reason:
        console.out.print(f"failed: {experiment.failure_reason}", markup=False)


@scaling.command()
@click.argument("experiment_id", required=False, type=click.IntRange(min=1))
@click.option("--status", "only", type=click.Choice(["queued", "running", "completed", "failed"]), help="List only these.")
@url_option
@key_option
@json_option
def status(experiment_id: int | None, only: str | None, url: str | None, key: str | None, as_json: bool) -> None:
    """Your experiments, or one of them with its losses."""
    from rich.table import Table

    with _client(url, key) as client:
        if experiment_id is not None:
            experiment = client.experiment(experiment_id)
            if as_json:
                console.emit_json(experiment.model_dump(mode="json"))
                return
            console.out.print(f"experiment {experiment.id}: {experiment.status}  {experiment.config.canonical_json()}", markup=False)
            for point in experiment.losses:
                console.out.print(f"  {point.tokens:>14,.0f} tokens  loss {point.loss:.4f}")
            _print_outcome(experiment)
            return
        experiments = client.experiments(only)
    if as_json:
        console.emit_json([e.model_dump(mode="json") for e in experiments])
        return
    table = Table(title="scaling: your experiments", title_justify="left")
    for column in ("id", "status", "d_model", "layers", "heads", "batch", "lr", "tokens", "N", "FLOPs", "final loss"):
        table.add_column(column, justify="right")
    for e in experiments:
        c = e.config
        loss = f"{e.final_loss:.4f}" if e.final_loss is not None else (e.failure_reason or "")[:30]
        table.add_row(str(e.id), e.status, str(c.d_model), str(c.num_layers), str(c.num_heads), str(c.batch_size),
                      f"{c.learning_rate:.2e}", f"{c.train_tokens:.3g}", f"{e.parameters:.3g}", f"{e.flops:.3g}", loss)
    console.out.print(table)


@scaling.command()
@url_option
@key_option
@json_option
def budget(url: str | None, key: str | None, as_json: bool) -> None:
    """Your budget: total, spent, remaining."""
    with _client(url, key) as client:
        view = client.budget()
    if as_json:
        console.emit_json(view.model_dump(mode="json"))
        return
    console.out.print(f"spent {view.spent:.4g} of {view.total:.4g} {view.unit}; {view.remaining:.4g} remaining")


@scaling.command()
@config_options
@click.option("--predicted-loss", required=True, type=float, help="The final loss you predict for this config.")
@click.option("--save", "save_path", type=click.Path(dir_okay=False, path_type=Path),
              help=f"Also write the prediction here (default inside a handout: <package>/{PREDICTION_FILE}, which you submit).")
@click.option("--no-save", is_flag=True, help="Record on the server only.")
@url_option
@key_option
@json_option
def final(config_file: Path | None, predicted_loss: float, save_path: Path | None, no_save: bool, url: str | None,
          key: str | None, as_json: bool, **fields: Any) -> None:
    """Record your final prediction (it replaces any earlier one) and save it for your submission."""
    with _client(url, key) as client:
        view = client.record_prediction(_config(config_file, fields), predicted_loss)
    saved = None if no_save else _save_prediction(view, save_path)
    if as_json:
        console.emit_json({**view.model_dump(mode="json"), "saved": str(saved) if saved else None})
        return
    console.out.print(f"recorded prediction #{view.revision}: N = {view.parameters:.4g}, {view.flops:.4g} FLOPs, loss {view.predicted_loss:.4f}")
    if saved:
        console.out.print(f"saved to {saved}", markup=False)


def _save_prediction(view: Any, path: Path | None) -> Path | None:
    """Write the prediction as ``{config, predicted_loss}`` to ``path``, or into the handout's package."""
    if path is None:
        from .handout.info import HandoutInfo

        try:
            root, info = HandoutInfo.find()
        except LmcourseError:
            return None  # not in a handout: recorded on the server only
        path = root / info.package / PREDICTION_FILE
    document = {"config": view.config.model_dump(mode="json"), "predicted_loss": view.predicted_loss}
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    os.replace(partial, path)
    return path
