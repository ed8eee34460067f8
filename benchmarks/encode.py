"""Encoding throughput: the reference ``Tokenizer`` against ``tiktoken``, with GPT-2's merges.

Encodes the first ``--mb`` MB (default 5) of a corpus to GPT-2 token ids, with
``<|endoftext|>`` as a special token, single-threaded on both sides, and reports MB/s (MB of
UTF-8 input per second):

- ours, cold: a fresh ``Tokenizer.from_files(encoder.json, vocab.bpe, ["<|endoftext|>"])``, so
  every distinct pre-token is merged once and cached (loading the files is timed apart);
- ours, warm: a second pass over the same text with the same tokenizer (all cache hits);
- peer: ``tiktoken.get_encoding("gpt2").encode(text, allowed_special={"<|endoftext|>"})``.

Asserts that both produce identical ids, then prints the ratios ours / tiktoken (goal >= 0.5)
of median MB/s over ``--runs`` runs, by wall time and by CPU time (steadier on a shared machine).
tiktoken must find GPT-2 offline: ``TIKTOKEN_CACHE_DIR`` defaults to ``--tokenizer-dir``/tiktoken.

    python benchmarks/encode.py --corpus /tmp/lmc-data/prose/train.txt --tokenizer-dir /tmp/lmc-data/gpt2-tokenizer
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import import_reference, machine, median, utf8_prefix

SPECIAL = "<|endoftext|>"


def timed(fn, *args, **kwargs):
    """``fn(...)``, its wall time, and its CPU time (steadier than wall time on a loaded machine)."""
    start, cpu = time.perf_counter(), time.process_time()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start, time.process_time() - cpu


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] + " MB/s cold, warm and the peer's.",
                                     epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=Path("/tmp/lmc-data/prose/train.txt"))
    parser.add_argument("--tokenizer-dir", type=Path, default=Path("/tmp/lmc-data/gpt2-tokenizer"),
                        help="holds encoder.json, vocab.bpe and tiktoken/ (`lmcourse data prepare gpt2-tokenizer`)")
    parser.add_argument("--mb", type=float, default=5.0, help="MB of the corpus to encode (>= 5 per the spec)")
    parser.add_argument("--runs", type=int, default=3, help="runs of each measurement; medians are reported")
    args = parser.parse_args(argv)

    os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(args.tokenizer_dir / "tiktoken"))
    os.environ["RAYON_NUM_THREADS"] = "1"  # tiktoken's encode is single-threaded anyway
    import tiktoken

    (tokenizer_module,) = import_reference("tokenizer")
    text = utf8_prefix(args.corpus, int(args.mb * 1e6))
    size_mb = len(text.encode("utf-8")) / 1e6
    print(f"encoding {size_mb:.2f} MB of {args.corpus}; machine {machine()}")

    peer = tiktoken.get_encoding("gpt2")
    peer.encode(text[:10_000], allowed_special={SPECIAL})  # first-call set-up out of the timing
    sides = ("cold", "warm", "tiktoken")
    runs: dict[str, list[float]] = {key: [] for key in ("from_files_s", "load_avg", *(f"{side}_{clock}" for side in sides
                                                                                    for clock in ("s", "cpu_s")))}
    for run in range(args.runs):
        runs["load_avg"].append(round(os.getloadavg()[0], 2))
        ours, from_files_s, _ = timed(tokenizer_module.Tokenizer.from_files, args.tokenizer_dir / "encoder.json",
                                      args.tokenizer_dir / "vocab.bpe", [SPECIAL])
        cold_ids, *cold = timed(ours.encode, text)
        warm_ids, *warm = timed(ours.encode, text)
        peer_ids, *tiktoken_times = timed(peer.encode, text, allowed_special={SPECIAL})
        if not (cold_ids == warm_ids == peer_ids):
            first = next((i for i, (x, y) in enumerate(zip(cold_ids, peer_ids)) if x != y), min(len(cold_ids), len(peer_ids)))
            sys.exit(f"ids differ from tiktoken's at position {first} (ours {len(cold_ids)} ids, tiktoken {len(peer_ids)})")
        runs["from_files_s"].append(round(from_files_s, 3))
        for side, (wall, cpu) in zip(sides, (cold, warm, tiktoken_times)):
            runs[f"{side}_s"].append(round(wall, 3))
            runs[f"{side}_cpu_s"].append(round(cpu, 3))
        print(f"run {run + 1}: from_files {from_files_s:.2f} s, MB/s cold {size_mb / cold[0]:5.2f}, warm {size_mb / warm[0]:5.2f}, "
              f"tiktoken {size_mb / tiktoken_times[0]:5.2f}; {len(peer_ids):,} ids identical; load avg {runs['load_avg'][-1]}",
              flush=True)

    mbps = {side: size_mb / median(runs[f"{side}_s"]) for side in sides}
    cpu_mbps = {side: size_mb / median(runs[f"{side}_cpu_s"]) for side in sides}
    summary = {
        "benchmark": "encode", "mb": round(size_mb, 2), "tokens": len(peer_ids), "runs": runs, "machine": machine(),
        **{f"{side}_mb_s": round(mbps[side], 2) for side in sides}, "from_files_s": round(median(runs["from_files_s"]), 3),
        "ratio_cold": round(mbps["cold"] / mbps["tiktoken"], 2), "ratio_warm": round(mbps["warm"] / mbps["tiktoken"], 2),
        "cpu_ratio_cold": round(cpu_mbps["cold"] / cpu_mbps["tiktoken"], 2),
        "cpu_ratio_warm": round(cpu_mbps["warm"] / cpu_mbps["tiktoken"], 2), "goal": 0.5, "ids_identical": True,
    }
    print(f"ours cold {mbps['cold']:.2f} MB/s, warm {mbps['warm']:.2f} MB/s, tiktoken {mbps['tiktoken']:.2f} MB/s: "
          f"ratio cold {summary['ratio_cold']:.2f}, warm {summary['ratio_warm']:.2f} (goal >= 0.5); "
          f"by CPU time: cold {summary['cpu_ratio_cold']:.2f}, warm {summary['cpu_ratio_warm']:.2f}")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
