"""Train a tiny model on real text in about a minute and write a leaderboard submission: what
`make demo` submits to the basics board.

    python scripts/demo_leaderboard.py DATA OUT

DATA holds `prose/` (`lmcourse data prepare prose --out DATA`). The run trains a 2,000-token BPE
on 5 MB of the training split with the reference `train_bpe`, tokenizes that text, and trains a
2-layer, 64-wide reference Transformer for 200 steps on the CPU with the reference `train.py`.
OUT/run then holds what a student submits: model.safetensors, model_config.json, log.jsonl,
vocab.json and merges.txt.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import numpy as np

from lmcourse.grader.course import Course
from lmcourse.grader.data import read_documents
from lmcourse.leaderboard.architecture import reference_package
from lmcourse.leaderboard.checkpoint import tokenizer_files
from lmcourse.leaderboard.evaluate import token_stream

EOT = "<|endoftext|>"
CORPUS_BYTES = 5_000_000
VOCAB = 2000
MODEL = ["--context_length=256", "--d_model=64", "--num_layers=2", "--num_heads=4", "--d_ff=172"]
SCHEDULE = ["--batch_size=16", "--steps=200", "--warmup_steps=20", "--max_lr=3e-3", "--log_interval=50",
            "--eval_interval=100", "--checkpoint_interval=200"]


def main(data: Path, out: Path) -> Path:
    ref = reference_package(Course.find())
    run = out / "run"
    run.mkdir(parents=True, exist_ok=True)
    # Whole documents only: cut the training text at its last separator before the byte budget.
    text = (data / "prose" / "train.txt").read_bytes()[:CORPUS_BYTES]
    corpus = out / "corpus.txt"
    corpus.write_bytes(text[: text.rfind(EOT.encode())])
    vocab, merges = ref.train_bpe(corpus, VOCAB, [EOT])
    vocab_json, merges_txt = tokenizer_files(vocab, merges)
    (run / "vocab.json").write_bytes(vocab_json)
    (run / "merges.txt").write_bytes(merges_txt)
    tokenizer = ref.Tokenizer(vocab, merges, [EOT])
    documents = list(read_documents(corpus))
    held_out = len(documents) // 20  # for train.py's own validation curve; the board scores prose/valid
    for name, docs in (("train.bin", documents[:-held_out]), ("val.bin", documents[-held_out:])):
        ids, _ = token_stream(tokenizer, docs)
        ids.numpy().astype(np.uint16).tofile(out / name)
    train = importlib.import_module(f"{ref.__name__}.train")
    train.main([f"--train_data={out / 'train.bin'}", f"--val_data={out / 'val.bin'}", f"--out_dir={run}",
                f"--vocab_size={VOCAB}", *MODEL, *SCHEDULE, "--device=cpu"])
    return run


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    print(main(Path(sys.argv[1]), Path(sys.argv[2])))
