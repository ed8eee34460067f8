"""Draw the learning curve of ``gpu_experiment.sh``: validation accuracy through SFT and GRPO.

    python assignments/alignment/scripts/plot_experiment.py RUNS --out curve.png
    python assignments/alignment/scripts/plot_experiment.py RUNS RUNS... --out compare.png

``RUNS`` holds the stages' ``<stage>/log.jsonl`` (or flat ``<stage>.jsonl`` files, as copied
back from a GPU machine). With one folder the x axis is wall-clock minutes, the stages laid end
to end, so the picture also shows what each stage cost; the zero-shot and final evaluations are
single points. With several, only GRPO is drawn: validation accuracy against step, one line per
folder, labelled with the folder's name (name them after what differs: ``sft250-lr1e-5``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on a GPU machine or in CI
import matplotlib.pyplot as plt  # noqa: E402

STAGES = ("zeroshot", "sft", "grpo", "final")


def read_log(runs: Path, stage: str) -> list[dict]:
    for path in (runs / stage / "log.jsonl", runs / f"{stage}.jsonl"):
        if path.exists():
            return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    raise SystemExit(f"no log for the {stage!r} stage under {runs}")


def plot(runs: Path, out: Path) -> None:
    logs = {stage: read_log(runs, stage) for stage in STAGES}
    fig, ax = plt.subplots(figsize=(8, 4.5))
    offset = 0.0  # minutes spent by the stages before this one
    for stage in STAGES:
        evaluated = [r for r in logs[stage] if "valid_accuracy" in r]
        minutes = [offset + r["elapsed_s"] / 60 for r in evaluated]
        accuracy = [100 * r["valid_accuracy"] for r in evaluated]
        ax.plot(minutes, accuracy, "o-", label=f"{stage}: validation accuracy")
        rewards = [r for r in logs[stage] if "train_reward" in r]
        if rewards:
            ax.plot([offset + r["elapsed_s"] / 60 for r in rewards], [100 * r["train_reward"] for r in rewards],
                    alpha=0.35, lw=1, label=f"{stage}: rollout reward (train)")
        offset += logs[stage][-1]["elapsed_s"] / 60
    ax.set_xlabel("wall clock (minutes, stages end to end)")
    ax.set_ylabel("% of problems solved")
    ax.set_title("SmolLM2-135M-Instruct on gsm_symbolic: zero-shot, SFT warm-up, GRPO (H200)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(out, dpi=120)


def compare(runs: list[Path], out: Path) -> None:
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for runs_folder in runs:
        evaluated = [r for r in read_log(runs_folder, "grpo") if "valid_accuracy" in r]
        ax.plot([r["step"] for r in evaluated], [100 * r["valid_accuracy"] for r in evaluated], "o-",
                label=runs_folder.name)
    ax.set_xlabel("GRPO step")
    ax.set_ylabel("validation accuracy (%)")
    ax.set_title("GRPO from an SFT warm-up: validation accuracy by run")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=120)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+", help="one run folder for its learning curve, several to compare GRPO")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if len(args.runs) == 1:
        plot(args.runs[0], args.out)
    else:
        compare(args.runs, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
