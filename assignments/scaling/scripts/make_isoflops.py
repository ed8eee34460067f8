"""Write ``fixtures/isoflops.json``: an IsoFLOP sweep drawn from the simulator (staff script).

    python assignments/scaling/scripts/make_isoflops.py

Nine compute budgets from 6e18 to 3e21 FLOPs; at each, eleven model sizes spread over ±0.9
decades around the size a "20 tokens per parameter" rule of thumb suggests (so the true bottom
sits off-centre, as in a real sweep). Every run is tuned as a careful lab would: the simulator's
best learning rate for its size, a shape near the best aspect ratio, the batch nearest the best.
The law is ``isoflops_law.yaml`` beside this script, not the training API's. The output depends
only on that file and the code: rerunning rewrites identical bytes.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from lmcourse.grader.scaling.config import ExperimentConfig, shape_for
from lmcourse.grader.scaling.law import load_law, optimal_batch_tokens, optimal_learning_rate, simulate

HERE = Path(__file__).resolve().parent
OUT = HERE.parent / "fixtures" / "isoflops.json"
BUDGETS = [6e18, 1e19, 3e19, 6e19, 1e20, 3e20, 6e20, 1e21, 3e21]
SIZES_PER_BUDGET = 11
SPREAD_DECADES = 0.9
CONTEXT_LENGTH = 2048


def sweep() -> list[dict[str, float]]:
    law = load_law(HERE / "isoflops_law.yaml")
    runs = []
    for compute in BUDGETS:
        rule_of_thumb = (compute / (6 * 20)) ** 0.5  # N with D = 20 N
        for target in rule_of_thumb * np.logspace(-SPREAD_DECADES, SPREAD_DECADES, SIZES_PER_BUDGET):
            d_model, num_layers, num_heads = shape_for(float(target), law.aspect_ratio.optimum, head_dim=128)
            parameters = 12 * num_layers * d_model**2
            tokens = round(compute / (6 * parameters))
            batch = max(1, round(optimal_batch_tokens(law, tokens) / CONTEXT_LENGTH))
            config = ExperimentConfig(
                d_model=d_model, num_layers=num_layers, num_heads=num_heads, batch_size=batch,
                learning_rate=float(f"{optimal_learning_rate(law, parameters):.3g}"), train_tokens=tokens,
            )  # fmt: skip
            run = simulate(law, config, CONTEXT_LENGTH)
            runs.append({"parameters": parameters, "compute_budget": compute, "final_loss": round(run.final_loss, 6)})
    return runs


def main() -> None:
    runs = sweep()
    OUT.write_text(json.dumps(runs, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {OUT} ({len(runs)} runs)")


if __name__ == "__main__":
    main()
