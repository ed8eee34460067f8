"""Write the snapshots the tests compare against: what the reference makes of their inputs (staff script).

    python assignments/scaling/scripts/make_snapshots.py

- ``tests/public/snapshots/isoflops_reference.json``: the shipped sweep (``fixtures/isoflops.json``);
- ``tests/hidden/snapshots/hidden_reference.json``: the hidden tests' inputs (``tests/hidden/inputs_hidden.py``).

Rerun after changing the reference or the inputs; the output depends on nothing else.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np

UNIT = Path(__file__).resolve().parents[1]
REPO = UNIT.parents[1]
sys.path[:0] = [str(UNIT), str(REPO)]  # the unit's `tests` package (before the toolkit's), `reference.scaling`

from tests.hidden import inputs_hidden  # noqa: E402

from reference.scaling.chinchilla import fit_parametric  # noqa: E402
from reference.scaling.isoflop import (  # noqa: E402
    bootstrap_power_law,
    fit_isoflop_laws,
    isoflop_minima,
    parabola_minimum,
)

BOOTSTRAP_TARGETS = [1e22, 1e23, 1e24]


def laws(parameters: list[float], budgets: list[float], losses: list[float], window: int = 2) -> dict[str, object]:
    minima = isoflop_minima(parameters, budgets, losses, window)
    n_law, d_law = fit_isoflop_laws(minima)
    return {"minima": [asdict(m) for m in minima], "parameters_law": asdict(n_law), "tokens_law": asdict(d_law)}


def bootstrap(minima: list[dict[str, float]], targets: list[float], samples: int, seed: int, level: float) -> dict[str, object]:
    band = bootstrap_power_law([m["compute"] for m in minima], [m["parameters"] for m in minima], targets, samples, seed, level)
    return {"targets": targets, "samples": samples, "level": level, "estimate": band.estimate.tolist(),
            "low": band.low.tolist(), "high": band.high.tolist()}


def parametric(parameters: list[float], tokens: list[float], losses: list[float]) -> dict[str, float]:
    return asdict(fit_parametric(parameters, tokens, losses))


def public() -> dict[str, object]:
    parameters, budgets, losses = inputs_hidden.shipped_sweep()
    snapshot = laws(parameters, budgets, losses)
    snapshot["bootstrap"] = bootstrap(snapshot["minima"], BOOTSTRAP_TARGETS, 2000, 0, 0.95)  # type: ignore[arg-type]
    tokens = (np.array(budgets) / (6 * np.array(parameters))).tolist()
    snapshot["parametric"] = parametric(parameters, tokens, losses)
    return snapshot


def hidden() -> dict[str, object]:
    parameters, budgets, losses = inputs_hidden.shipped_sweep()
    sweep = inputs_hidden.hidden_sweep()
    sweep_laws = laws(sweep["parameters"], sweep["compute_budgets"], sweep["losses"])
    profiles = [parabola_minimum(sizes, profile_losses, window) for sizes, profile_losses, window in inputs_hidden.noisy_profiles()]
    return {
        "shipped_window_1": laws(parameters, budgets, losses, 1)["minima"],
        "shipped_window_3": laws(parameters, budgets, losses, 3)["minima"],
        "noisy_profiles": [list(p) for p in profiles],
        "hidden_sweep": sweep_laws,
        "hidden_bootstrap": bootstrap(sweep_laws["minima"], [1e23, 1e25], 2000, 0, 0.8),  # type: ignore[arg-type]
        "hidden_parametric": parametric(sweep["parameters"], sweep["tokens"], sweep["losses"]),
    }


def write(path: Path, snapshot: dict[str, object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(snapshot, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {path}")


def main() -> None:
    write(UNIT / "tests/public/snapshots/isoflops_reference.json", public())
    write(UNIT / "tests/hidden/snapshots/hidden_reference.json", hidden())


if __name__ == "__main__":
    main()
