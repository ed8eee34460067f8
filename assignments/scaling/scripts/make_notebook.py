"""Write ``writeup/scaling.ipynb``, the unit's notebook, from the cells below (staff script).

    python assignments/scaling/scripts/make_notebook.py [--check]

The notebook is built with nbformat rather than edited by hand, so it diffs as code and has
fixed cell ids (the same source always gives the same bytes). Cells tagged ``solution`` are the
staff's answers: the handout builder turns code ones into stubs and Markdown ones into
"_Write your answer here._"; untagged cells ship as they are. It runs from ``writeup/`` of a
handout (or of the staff tree) with the package installed, and talks to the training API through
``$LMCOURSE_SCALING_URL`` and ``$LMCOURSE_SCALING_KEY``. ``--check`` exits 1 if the file on disk
differs from what this script would write.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

OUT = Path(__file__).resolve().parents[1] / "writeup" / "scaling.ipynb"
SOLUTION = ["solution"]

CELLS: list[tuple[str, str, list[str]]] = [
    ("markdown", """\
# Scaling laws: from a sweep to a prediction

You have two jobs. First, analyse a sweep somebody else ran (`fixtures/isoflops.json`: 99 runs,
nine compute budgets from 6e18 to 3e21 FLOPs) the two ways Hoffmann et al. (2022) did: IsoFLOP
profiles with power laws through their bottoms, and a parametric loss L(N, D) fitted to every
run. Second, run your own experiments on the training API under a compute budget and predict
the best model to train with 1e19 FLOPs, and the loss it will reach.

The functions you write live in your package (`isoflop.py`, `chinchilla.py`); the tests check
them. This notebook uses them and asks the questions your writeup answers. Throughout, N counts
non-embedding parameters (12 · layers · d_model²), D training tokens, and C = 6 N D FLOPs.""", []),
    ("code", """\
from pathlib import Path

import numpy as np
from lmc_scaling import chinchilla, isoflop, plots

FIXTURES = Path("../fixtures")
parameters, budgets, losses = isoflop.load_runs(FIXTURES / "isoflops.json")
print(f"{len(losses)} runs, budgets {sorted(set(budgets.tolist()))}")""", []),
    ("markdown", """\
## 1. IsoFLOP profiles

At a fixed budget C, a model of N parameters sees D = C / 6N tokens. Plot each budget's final
losses against log N: the valley's bottom is the compute-optimal size for that budget.
`isoflop_minima` finds each bottom with a parabola in log N through the best run and its
neighbours.""", []),
    ("code", """\
minima = isoflop.isoflop_minima(parameters, budgets, losses)
for m in minima:
    print(f"C = {m.compute:.0e}: N_opt = {m.parameters:.3g}, D_opt = {m.tokens:.3g}, loss {m.loss:.4f}")
plots.plot_isoflop_profiles(parameters, budgets, losses, minima, "isoflop_profiles.png")""", []),
    ("markdown", "![IsoFLOP profiles](isoflop_profiles.png)", []),
    ("markdown", """\
## 2. Power laws, and how far to trust them

Fit N_opt(C) = k_N · C^a and D_opt(C) = k_D · C^b through the bottoms, then extrapolate to 1e23
and 1e24 FLOPs with a 95% bootstrap band (`fit_isoflop_laws`, `bootstrap_power_law`). Plot both
laws with `plots.plot_power_law`.""", []),
    ("code", """\
targets = [1e23, 1e24]
n_law, d_law = isoflop.fit_isoflop_laws(minima)
compute = [m.compute for m in minima]
for quantity, law in (("parameters", n_law), ("tokens", d_law)):
    band = isoflop.bootstrap_power_law(compute, [getattr(m, quantity) for m in minima], targets, samples=2000)
    plots.plot_power_law(minima, law, band, quantity, f"{quantity}_law.png")
    for c, estimate, low, high in zip(targets, band.estimate, band.low, band.high):
        print(f"{quantity} at {c:.0e}: {estimate:.3g} (95% band {low:.3g} .. {high:.3g}); exponent {law.exponent:.3f}")""",
     SOLUTION),
    ("markdown", "![N_opt(C)](parameters_law.png) ![D_opt(C)](tokens_law.png)", []),
    ("markdown", """\
**Question 1.** What model size and token count does the sweep predict for 1e23 and 1e24 FLOPs,
and how wide are the bands? What makes them wide, and which extra runs would narrow them most?""", []),
    ("markdown", """\
The exponents come out at a = 0.54 and b = 0.46. At 1e23 FLOPs the sweep predicts 2.3e10
parameters on 7.2e11 tokens (95% band 1.1e10 .. 3.3e10 parameters), at 1e24 8.0e10 parameters on
2.1e12 tokens (3.0e10 .. 1.3e11). The bands are wide, and wider the further out, because the slope
rests on nine noisy bottoms over 2.7 decades and one of them is off the trend (the 3e20 profile
bottoms at 6.4e8, below its neighbours' line): resamples with and without it disagree, and the
two to three decades of extrapolation multiply that into a factor of two. Budgets beyond 3e21
would narrow the band most (they lengthen the lever arm); denser sizes around each bottom, so no
single profile can be off by that much, come second.""", SOLUTION),
    ("markdown", """\
## 3. The parametric loss L(N, D) = E + A/N^α + B/D^β

`fit_parametric` fits all 99 runs at once, as in the paper's third approach: log-space
parameters, a log-sum-exp prediction, a Huber loss (δ = 10⁻³) and L-BFGS from a grid of starts.
Its compute-optimal allocation comes in closed form (`ParametricLaw.compute_optimal`).""", []),
    ("code", """\
tokens = budgets / (6 * parameters)
law = chinchilla.fit_parametric(parameters, tokens, losses)
print(law)
n_opt, d_opt = law.compute_optimal(np.array(targets))
for c, n, d in zip(targets, n_opt, d_opt):
    print(f"{c:.0e} FLOPs: N_opt = {n:.3g} (IsoFLOP: {n_law(c):.3g}), D_opt = {d:.3g}, loss {law.loss(n, d):.4f}")
residuals = np.log(law.loss(parameters, tokens)) - np.log(losses)
print(f"residuals: {residuals.std():.4f} (std, log space), largest {np.abs(residuals).max():.4f}")""", SOLUTION),
    ("markdown", """\
**Question 2.** Do the two approaches agree at 1e23 FLOPs? Which do you trust more, and why?
What does E mean, and how well do these data pin it down?""", []),
    ("markdown", """\
Roughly: the parametric fit puts N_opt at 1e23 FLOPs at 2.1e10, 10% below the IsoFLOP law's
2.3e10, because its α ≈ 0.30 and β ≈ 0.31 imply a slope β/(α+β) ≈ 0.52 against the bottoms'
0.54. The parametric fit uses all 99 runs, not nine bottoms, so one off profile moves it less,
and its residuals are small (0.5% in log space, none beyond 1.2%); but it bets on the functional
form holding far outside the data, where the IsoFLOP laws assume less. Here I trust it more, with
the IsoFLOP band as a check. E (≈ 1.79) is the loss of an infinite model on infinite data, the
entropy of the text under this tokenizer; the sweep's losses (2.28 at best) never come near it,
so E trades off against A and B and is the least certain of the five coefficients.""", SOLUTION),
    ("markdown", """\
## 4. Your own experiments, under a budget

The training API trains the configs you submit (`d_model`, `num_layers`, `num_heads`,
`batch_size`, `learning_rate`, `train_tokens`) and reports validation losses. Every run costs its
6 N D FLOPs from your budget (`fixtures/challenge.yaml` says how much you have, the largest run
allowed, and how your prediction is scored); a config submitted twice is charged once. Losses
depend on more than N and D: an untuned learning rate, an odd shape or batch all cost loss, and
every run is a little noisy. Set `LMCOURSE_SCALING_URL` and `LMCOURSE_SCALING_KEY` first.""", []),
    ("code", """\
from lmcourse.grader.scaling.client import ScalingClient

client = ScalingClient.from_env()
print(client.info())
print(client.budget())
run = client.submit(d_model=256, num_layers=4, num_heads=4, batch_size=32, learning_rate=2e-3, train_tokens=20_000_000)
print(run.charged, run.experiment.status, run.experiment.final_loss)
for point in run.experiment.losses:
    print(f"{point.tokens:>12,.0f} tokens: {point.loss:.4f}")""", []),
    ("markdown", """\
Design your experiments, fit, and predict: the config you would train with 1e19 FLOPs and its
final loss. Record it with `client.record_prediction(config, predicted_loss)` or
`lmcourse scaling final` (which also saves `final_prediction.json` in your package, the file
you submit).""", []),
    ("code", """\
from lmcourse.grader.scaling.config import ExperimentConfig, shape_for

rules = client.info()


def run(n, compute, lr, aspect=48.0, batch=64):
    d_model, layers, heads = shape_for(n, aspect)
    tokens = int(compute / (6 * 12 * layers * d_model**2))
    config = ExperimentConfig(d_model=d_model, num_layers=layers, num_heads=heads, batch_size=batch,
                              learning_rate=float(f"{lr:.3g}"), train_tokens=tokens)
    return config, client.submit(config).experiment.final_loss


# Tune the learning rate at two sizes (diverged runs report no loss), then transfer it by a power law.
sizes, best = [3e6, 3e7], []
for n in sizes:
    sweep = [(lr, loss) for lr in np.logspace(-3.4, -1.8, 7) if (loss := run(n, 1e16, lr)[1]) is not None]
    best.append(isoflop.parabola_minimum(*zip(*sweep), window=3)[0])
lr_law = isoflop.fit_power_law(sizes, best)

# IsoFLOP profiles at four budgets, every run at its tuned learning rate.
rows = []
for c in [1e15, 3e15, 1e16, 3e16, 1e17]:
    for n in (c / 120) ** 0.5 * np.logspace(-0.6, 0.6, 7):
        config, loss = run(n, c, lr_law(n))
        if loss is not None:
            rows.append((config.parameters, config.train_tokens, c, loss))
n_run, d_run, c_run, l_run = map(np.array, zip(*rows))
found = isoflop.isoflop_minima(n_run, c_run, l_run)
n_target = isoflop.fit_isoflop_laws(found)[0](rules.target_compute)
fitted = chinchilla.fit_parametric(n_run, d_run, l_run)
d_model, layers, heads = shape_for(float(n_target), 48.0)
n_final = 12 * layers * d_model**2
config = ExperimentConfig(d_model=d_model, num_layers=layers, num_heads=heads, batch_size=512,
                          learning_rate=float(f"{lr_law(n_final):.3g}"), train_tokens=int(rules.target_compute / (6 * n_final)))
predicted = float(fitted.loss(n_final, config.train_tokens))
print(config, f"predicted loss {predicted:.4f}", client.budget())
print(client.record_prediction(config, round(predicted, 4)))""", SOLUTION),
    ("markdown", """\
**Question 3.** Describe your experimental design: what you tuned first and why, which budgets
and sizes you swept, how you spent your budget, and how much you trust your prediction.""", []),
    ("markdown", """\
Tune before sweeping: a learning-rate sweep at two sizes, seven rates each at 1e16 FLOPs (7% of
the budget), shows the best rate falling with size, and a power law through the two best rates
sets every later run's rate. Then five IsoFLOP profiles from 1e15 to 1e17 FLOPs, seven sizes each,
over ±0.6 decades around 20 tokens per parameter (half the budget; the largest profiles cost the
most and matter most, since the extrapolation hinges on them). That left 40% of the budget for a
second look, for instance a denser profile at 1e17. The prediction extrapolates two decades, so
its size is good to perhaps ±20% and its loss to a few percent; the parametric fit's E is the
weakest link of the loss.""", SOLUTION),
]


def build() -> str:
    notebook = new_notebook(metadata={
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    })  # fmt: skip
    for index, (kind, source, tags) in enumerate(CELLS):
        make = new_code_cell if kind == "code" else new_markdown_cell
        cell = make(source=source, id=f"cell-{index:02d}")
        if tags:
            cell.metadata["tags"] = list(tags)
        notebook.cells.append(cell)
    nbformat.validate(notebook)
    return nbformat.writes(notebook) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the notebook on disk is out of date")
    args = parser.parse_args(argv)
    text = build()
    if args.check:
        sys.exit(0 if OUT.is_file() and OUT.read_text(encoding="utf-8") == text else 1)
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT} ({len(CELLS)} cells)")


if __name__ == "__main__":
    main()
