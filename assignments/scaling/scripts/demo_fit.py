"""Play the scaling challenge against the simulator, in-process, and print the prediction beside the truth.

    python assignments/scaling/scripts/demo_fit.py [--save reference/scaling/final_prediction.json] [--json]

A staff script (it reads the hidden law). It runs a fresh training API service on a temporary
SQLite database with the simulated backend, under the challenge's budget, and plays a careful
student's strategy with the reference fits:

1. tune first, at small cost: a learning-rate sweep at three model sizes (the best rate of each
   from a parabola in log lr, then a power law in N), an aspect-ratio sweep, and batch sweeps at
   two run lengths (a power law in D);
2. IsoFLOP profiles at four budgets, every run tuned by those laws;
3. fit the bottoms (N_opt ∝ C^a, with a bootstrap band) and the parametric loss L(N, D);
4. predict at the target: the shape nearest N_opt(C), tuned the same way, and L(N, D) as the loss.

It prints what it spent, the prediction, the truth and the score in the challenge's bands.
``--save`` writes the prediction as the grader reads it (the reference's ``final_prediction.json``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from lmcourse.grader.scaling.config import ExperimentConfig, FinalPrediction, shape_for
from lmcourse.grader.scaling.law import optimum
from lmcourse.grader.scaling.server import ServerSettings, build_service
from lmcourse.grader.scaling.service import Caller, ScalingService

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO))

from reference.scaling.chinchilla import fit_parametric  # noqa: E402  (the reference, imported from the repo)
from reference.scaling.isoflop import (  # noqa: E402
    bootstrap_power_law,
    fit_isoflop_laws,
    fit_power_law,
    isoflop_minima,
    parabola_minimum,
)

LR_SWEEP = np.logspace(-3.6, -1.8, 8)  # 2.5e-4 .. 1.6e-2
ASPECT_SWEEP = [12.0, 24.0, 48.0, 96.0, 192.0]
BATCH_SWEEP = [16, 32, 64, 128, 256, 512, 1024]
ISOFLOP_BUDGETS = [1e15, 3e15, 1e16, 3e16, 1e17]
ISOFLOP_SPREAD = np.logspace(-0.6, 0.6, 7)
TUNING_COMPUTE = 1e16


class Player:
    """A student's session: submits tuned configs through the service and keeps count."""

    def __init__(self, service: ScalingService, me: Caller) -> None:
        self.service, self.me = service, me
        self.context = service.challenge.context_length
        self.aspect = 48.0
        self.lr_law = lambda n: 2e-3  # replaced after the learning-rate sweeps
        self.batch_law = lambda d: 64.0  # sequences per step; replaced after the batch sweeps
        self.runs = 0

    def config(self, parameters: float, compute: float, lr: float | None = None, aspect: float | None = None,
               batch: int | None = None) -> ExperimentConfig:
        """The shape nearest ``parameters``, trained on ``compute`` FLOPs, tuned by the laws found so far."""
        d_model, num_layers, num_heads = shape_for(parameters, aspect or self.aspect)
        n = 12 * num_layers * d_model**2
        tokens = compute / (6 * n)
        return ExperimentConfig(
            d_model=d_model, num_layers=num_layers, num_heads=num_heads,
            batch_size=batch or max(1, round(self.batch_law(tokens))),
            learning_rate=float(f"{lr or self.lr_law(n):.3g}"), train_tokens=int(tokens),  # floor: never over budget
        )  # fmt: skip

    def loss(self, config: ExperimentConfig) -> float | None:
        """The final loss of ``config``, None if it diverged."""
        self.runs += 1
        return self.service.submit(self.me, config).experiment.final_loss

    def best(self, values: list[float], configs: list[ExperimentConfig]) -> float:
        """The value at the bottom of a sweep; diverged runs say nothing about where the bottom is."""
        finished = [(v, loss) for v, c in zip(values, configs, strict=True) if (loss := self.loss(c)) is not None]
        return parabola_minimum([v for v, _ in finished], [loss for _, loss in finished], window=3)[0]

    def tune(self) -> None:
        sizes = [3e6, 3e7, 3e8]
        best_lrs = []
        for n in sizes:
            configs = [self.config(n, TUNING_COMPUTE, lr=lr) for lr in LR_SWEEP]
            best_lrs.append(self.best(list(LR_SWEEP), configs))
        lr_fit = fit_power_law(sizes, best_lrs)
        self.lr_law = lambda n: float(lr_fit(n))
        n = 6e6
        self.aspect = self.best(ASPECT_SWEEP, [self.config(n, TUNING_COMPUTE, aspect=a) for a in ASPECT_SWEEP])
        lengths, best_batches = [], []
        for compute in (TUNING_COMPUTE / 3, 3 * TUNING_COMPUTE):
            n = (compute / 120) ** 0.5
            lengths.append(compute / (6 * n))
            best_batches.append(self.best([float(b) for b in BATCH_SWEEP], [self.config(n, compute, batch=b) for b in BATCH_SWEEP]))
        batch_fit = fit_power_law(lengths, best_batches)
        # Two noisy bottoms make a shaky slope: never leave the range the sweeps explored.
        self.batch_law = lambda d: float(np.clip(batch_fit(d), BATCH_SWEEP[0], BATCH_SWEEP[-1]))

    def isoflops(self) -> tuple[list[float], list[float], list[float], list[float]]:
        """(parameters, tokens, compute budgets, final losses) of the tuned IsoFLOP sweeps."""
        columns: tuple[list[float], list[float], list[float], list[float]] = ([], [], [], [])
        for compute in ISOFLOP_BUDGETS:
            for n in (compute / 120) ** 0.5 * ISOFLOP_SPREAD:
                config = self.config(n, compute)
                if (loss := self.loss(config)) is not None:
                    for column, value in zip(columns, (config.parameters, config.train_tokens, compute, loss), strict=True):
                        column.append(value)
        return columns


def play(service: ScalingService) -> dict[str, object]:
    """The whole strategy; returns the prediction, the truth, the spend and the score."""
    from lmcourse.grader.scaling.challenge import score_prediction

    key = service.add_student("demo")
    player = Player(service, service.authenticate(key))
    player.tune()
    parameters, tokens, budgets, losses = player.isoflops()
    minima = isoflop_minima(parameters, budgets, losses)
    n_law, _ = fit_isoflop_laws(minima)
    target = service.challenge.target_compute
    band = bootstrap_power_law([m.compute for m in minima], [m.parameters for m in minima], [target])
    parametric = fit_parametric(parameters, tokens, losses)
    config = player.config(float(n_law(target)), target)
    prediction = FinalPrediction(config=config, predicted_loss=round(float(parametric.loss(config.parameters, config.train_tokens)), 4))
    truth = optimum(service.law, target)  # type: ignore[arg-type]
    score = score_prediction(prediction, service.law, service.challenge)  # type: ignore[arg-type]
    budget = service.budget(player.me)
    return {
        "runs": player.runs,
        "spent_flops": budget.spent,
        "budget_flops": budget.total,
        "target_compute": target,
        "predicted": {"optimal_parameters": float(n_law(target)), "parameters": config.parameters,
                      "parameters_band": [float(band.low[0]), float(band.high[0])],
                      "exponent": n_law.exponent, "loss": prediction.predicted_loss,
                      "parametric": {k: getattr(parametric, k) for k in ("E", "A", "B", "alpha", "beta")}},
        "truth": {"parameters": truth.parameters, "tokens": truth.tokens, "loss": truth.loss},
        "metrics": score.metrics,
        "score": {"earned": score.earned, "possible": score.possible},
        "prediction": prediction.model_dump(mode="json"),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--save", type=Path, help="write the prediction here (as the grader reads it)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="lmcourse-scaling-demo-") as tmp:
        settings = ServerSettings.for_course(REPO, database_url=f"sqlite:///{tmp}/demo.db")
        service = build_service(settings)
        result = play(service)
        service.close()
    if args.save:
        args.save.write_text(json.dumps(result["prediction"], indent=2) + "\n", encoding="utf-8")
    if args.json:
        print(json.dumps(result, indent=2))
        return
    predicted, truth = result["predicted"], result["truth"]
    print(f"spent {result['spent_flops']:.3g} of {result['budget_flops']:.3g} FLOPs on {result['runs']} simulated runs")
    print(f"at {result['target_compute']:.0e} FLOPs{'predicted':>20}{'truth':>12}")
    low, high = predicted["parameters_band"]  # type: ignore[index]
    print(f"{'N_opt (IsoFLOP law)':26}{predicted['optimal_parameters']:>12.4g}{truth['parameters']:>12.4g}"  # type: ignore[index]
          f"   95% band {low:.3g} .. {high:.3g}")
    print(f"{'N of the chosen shape':26}{predicted['parameters']:>12.4g}")  # type: ignore[index]
    print(f"{'final loss':26}{predicted['loss']:>12.4f}{truth['loss']:>12.4f}   (truth: the optimal run's)")  # type: ignore[index]
    metrics = ", ".join(f"{k} {v:.4f}" for k, v in result["metrics"].items())  # type: ignore[attr-defined]
    print(f"score {result['score']['earned']:g}/{result['score']['possible']:g} in the challenge's bands ({metrics})")  # type: ignore[index]


if __name__ == "__main__":
    main()
