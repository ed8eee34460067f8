"""End to end on a CPU: generated stories -> our BPE -> our model -> a loss curve and samples.

1. `lmcourse data prepare stories` (seeded, offline); 2. train the reference BPE tokenizer on it
(vocab --vocab, special token <|endoftext|>); 3. encode train and valid into uint16 token files;
4. train the reference Transformer LM with the reference training script on the CPU; 5. plot
train and validation loss (PNG) and write greedy and sampled continuations (Markdown).

    python benchmarks/train_stories.py --out docs/stories   # ~10 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, import_reference, machine

PROMPTS = ["Once upon a time", "Lily and her dog", "One rainy day, Tom"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=REPO / "data", help="where the story dataset is prepared")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "stories", help="PNG, samples and the run folder")
    parser.add_argument("--size-mb", type=float, default=4.0, help="MB of training text")
    parser.add_argument("--vocab", type=int, default=2048)
    parser.add_argument("--steps", type=int, default=1500)
    args = parser.parse_args()
    from lmcourse.grader.data.prepare import prepare

    bpe, tokenizer, train, decoding = import_reference("bpe", "tokenizer", "train", "decoding")
    started = time.perf_counter()
    folder = prepare("stories", args.data, progress=False, size_mb=args.size_mb).folder
    vocab, merges = bpe.train_bpe(folder / "train.txt", args.vocab, ["<|endoftext|>"])
    tok = tokenizer.Tokenizer(vocab, merges, ["<|endoftext|>"])
    run = args.out / "run"
    run.mkdir(parents=True, exist_ok=True)
    for split in ("train", "valid"):
        ids = tok.encode((folder / f"{split}.txt").read_text(encoding="utf-8"))
        np.asarray(ids, dtype=np.uint16).tofile(run / f"{split}.bin")
    print(f"data and tokenizer ready in {time.perf_counter() - started:.0f} s; {machine()}", flush=True)
    result = train.main([
        "--train_data", str(run / "train.bin"), "--val_data", str(run / "valid.bin"), "--out_dir", str(run),
        "--vocab_size", str(len(tok.vocab)), "--context_length", "128", "--d_model", "192", "--num_layers", "4",
        "--num_heads", "6", "--d_ff", "512", "--batch_size", "32", "--steps", str(args.steps), "--max_lr", "3e-3",
        "--min_lr", "3e-4", "--warmup_steps", "50", "--eval_interval", "100", "--eval_batches", "10",
        "--log_interval", "25", "--checkpoint_interval", str(args.steps), "--device", "cpu",
    ])
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines() if line.startswith("{")]
    plot(records, args.out / "loss.png")
    write_samples(train, decoding, tok, run, args.out / "samples.md", result)
    print(json.dumps({"benchmark": "train_stories", "seconds": round(time.perf_counter() - started), **result}))


def plot(records: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    train_pts = [(r["step"], r["train_loss"]) for r in records if r.get("train_loss") is not None]
    val_pts = [(r["step"], r["val_loss"]) for r in records if r.get("val_loss") is not None]
    ax.plot(*zip(*train_pts), label="train", lw=1)
    ax.plot(*zip(*val_pts), label="validation", marker="o", ms=3)
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (nats/token)")
    ax.set_title("reference LM on generated stories (CPU)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})


def write_samples(train, decoding, tok, run: Path, path: Path, result: dict) -> None:  # type: ignore[no-untyped-def]
    config = json.loads((run / "model_config.json").read_text())
    cfg = train.make_config({**config, "train_data": str(run / "train.bin"), "device": "cpu"})
    model = train.build_model(cfg, torch.device("cpu"))
    from safetensors.torch import load_file

    model.load_state_dict(load_file(run / "model.safetensors"))
    model.eval()
    eos = tok.encode("<|endoftext|>")[0]
    lines = ["# Samples from the reference LM trained on generated stories\n",
             f"Final train loss {result.get('train_loss')}, validation loss {result.get('val_loss')} "
             f"after {result.get('step')} steps ({result.get('elapsed_s')} s on the CPU).\n"]
    for prompt in PROMPTS:
        for label, temperature, top_p in (("greedy", 0.0, 1.0), ("temperature 0.8, top-p 0.9", 0.8, 0.9)):
            gen = torch.Generator().manual_seed(0)
            with torch.no_grad():
                ids = decoding.generate(model, tok.encode(prompt), 120, temperature, top_p, eos, generator=gen)
            lines.append(f"## {prompt!r} ({label})\n\n> {prompt}{tok.decode(ids).replace(chr(10), ' ')}\n")
    path.write_text("\n".join(lines), encoding="utf-8")


if __name__ == "__main__":
    main()
