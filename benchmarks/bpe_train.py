"""BPE training: the reference ``train_bpe`` against Hugging Face ``tokenizers``' BpeTrainer.

Measures the wall time of training a byte-level BPE vocabulary (default 10,000 tokens, special
token ``<|endoftext|>``) on the same corpus, each run in a fresh child process pinned to the
same CPUs (``--threads``, default 2): ours with ``num_workers=--threads`` pre-tokenizing
processes, the peer with ``RAYON_NUM_THREADS=--threads``. Reports the median wall time of
``--runs`` runs, the ratio ours / peer (goal: <= 3.0), the same for CPU seconds (all threads and
workers; steadier than wall time on a shared machine), the peak resident memory of each
(``ru_maxrss`` of the child, and for ours of its worker processes too), and how far the merges
agree (exact equality is not expected: ties between equally frequent pairs break differently).

Timed: from the call that trains to the merges in memory, including reading the file;
interpreter start-up and imports are not.

    python benchmarks/bpe_train.py --corpus /tmp/lmc-data/prose/train.txt
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import import_reference, machine, median

SPECIAL = "<|endoftext|>"


def cpu_seconds() -> float:
    """CPU time of this process (all threads) and of its finished workers: steadier than wall time under load."""
    own, workers = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + workers.ru_utime + workers.ru_stime


def child_ours(args: argparse.Namespace) -> dict:
    (bpe,) = import_reference("bpe")
    start, cpu = time.perf_counter(), cpu_seconds()
    _, merges = bpe.train_bpe(args.corpus, args.vocab_size, [SPECIAL], num_workers=args.threads)
    return {"wall_s": time.perf_counter() - start, "cpu_s": cpu_seconds() - cpu, "merges": [[a.hex(), b.hex()] for a, b in merges]}


def child_hf(args: argparse.Namespace) -> dict:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    (tokenizer_module,) = import_reference("tokenizer")
    byte_of = {char: byte for byte, char in tokenizer_module.gpt2_bytes_to_unicode().items()}
    start, cpu = time.perf_counter(), cpu_seconds()
    tokenizer = Tokenizer(models.BPE())
    # ByteLevel with use_regex=True splits with GPT-2's pattern, as the reference does.
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    trainer = trainers.BpeTrainer(
        vocab_size=args.vocab_size,
        special_tokens=[SPECIAL],
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # all 256 bytes, as ours
    )
    if args.hf_input == "docs":
        # Documents split at the special token, as ours: no pre-token spans it, none counts it.
        text = Path(args.corpus).read_text(encoding="utf-8")
        tokenizer.train_from_iterator(text.split(SPECIAL), trainer)
    else:  # HF reads the file line by line and pre-tokenizes "<|endoftext|>" like any text
        tokenizer.train([str(args.corpus)], trainer)
    wall, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    merges = json.loads(tokenizer.to_str())["model"]["merges"]
    merges = [m.split(" ") if isinstance(m, str) else m for m in merges]
    as_hex = [[bytes(byte_of[c] for c in part).hex() for part in pair] for pair in merges]
    return {"wall_s": wall, "cpu_s": cpu, "merges": as_hex}


def run_child(impl: str, args: argparse.Namespace) -> dict:
    """One training run in a fresh interpreter; returns its JSON report."""
    command = [sys.executable, __file__, "--child", impl, "--corpus", str(args.corpus),
               "--vocab-size", str(args.vocab_size), "--threads", str(args.threads), "--hf-input", args.hf_input]
    env = dict(os.environ, RAYON_NUM_THREADS=str(args.threads), TOKENIZERS_PARALLELISM="true")
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        sys.exit(f"{impl} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def agreement(ours: list, peer: list) -> dict:
    """How many of the first 20 / first 1000 / all merges the two share (as sets)."""
    def shared(n: int) -> int:
        return len({tuple(m) for m in ours[:n]} & {tuple(m) for m in peer[:n]})
    first_diff = next((i for i, (a, b) in enumerate(zip(ours, peer)) if a != b), min(len(ours), len(peer)))
    return {"first20_shared": shared(20), "first1000_shared": shared(1000), "all_shared": shared(len(ours)),
            "num_merges": [len(ours), len(peer)], "identical_prefix": first_diff}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] + " Wall time, peak memory, merge agreement.",
                                     epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=Path("/tmp/lmc-data/prose/train.txt"),
                        help="UTF-8 text, >= 20 MB (`lmcourse data prepare prose --out /tmp/lmc-data`)")
    parser.add_argument("--vocab-size", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=2, help="CPUs for each side: our workers, the peer's rayon threads")
    parser.add_argument("--runs", type=int, default=3, help="runs of each side; the median is reported")
    parser.add_argument("--hf-input", choices=["docs", "file"], default="docs",
                        help="docs: feed the peer documents split at the special token (same pre-tokens as ours, "
                             "and its faster path); file: let it read the file itself")
    parser.add_argument("--child", choices=["ours", "hf"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[: args.threads])
        report = child_ours(args) if args.child == "ours" else child_hf(args)
        own, workers = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        report["maxrss_mb"], report["workers_maxrss_mb"] = own.ru_maxrss / 1024, workers.ru_maxrss / 1024
        print(json.dumps(report))
        return

    size_mb = args.corpus.stat().st_size / 1e6
    if size_mb < 20:
        print(f"warning: {args.corpus} is {size_mb:.1f} MB; the benchmark is specified for >= 20 MB", file=sys.stderr)
    print(f"corpus {args.corpus} ({size_mb:.1f} MB), vocab {args.vocab_size}, {args.threads} threads, "
          f"peer input: {args.hf_input}; machine {machine()}")
    results: dict[str, list[dict]] = {"ours": [], "hf": []}
    for run in range(args.runs):
        for impl in ("ours", "hf"):  # alternate, so that a burst of load hits both sides alike
            load = os.getloadavg()[0]
            report = run_child(impl, args)
            report["load_1min"] = round(load, 2)
            results[impl].append(report)
            print(f"run {run + 1} {impl:>4}: {report['wall_s']:6.2f} s (CPU {report['cpu_s']:5.1f} s)  peak {report['maxrss_mb']:6.0f} MB "
                  f"(workers {report['workers_maxrss_mb']:4.0f} MB)  load {load:.2f}", flush=True)

    ours_s = median([r["wall_s"] for r in results["ours"]])
    hf_s = median([r["wall_s"] for r in results["hf"]])
    ours_cpu, hf_cpu = (median([r["cpu_s"] for r in results[impl]]) for impl in ("ours", "hf"))
    agree = agreement(results["ours"][0]["merges"], results["hf"][0]["merges"])
    summary = {
        "benchmark": "bpe_train", "corpus_mb": round(size_mb, 1), "vocab_size": args.vocab_size,
        "threads": args.threads, "hf_input": args.hf_input, "runs": args.runs, "machine": machine(),
        "ours_s": [round(r["wall_s"], 2) for r in results["ours"]], "hf_s": [round(r["wall_s"], 2) for r in results["hf"]],
        "ours_median_s": round(ours_s, 2), "hf_median_s": round(hf_s, 2), "ratio": round(ours_s / hf_s, 2), "goal": 3.0,
        "ours_cpu_s": round(ours_cpu, 1), "hf_cpu_s": round(hf_cpu, 1), "cpu_ratio": round(ours_cpu / hf_cpu, 2),
        "ours_peak_mb": round(median([r["maxrss_mb"] for r in results["ours"]])),
        "ours_workers_peak_mb": round(median([r["workers_maxrss_mb"] for r in results["ours"]])),
        "hf_peak_mb": round(median([r["maxrss_mb"] for r in results["hf"]])),
        "merges": agree,
    }
    print(f"ours {ours_s:.2f} s / HF tokenizers {hf_s:.2f} s = {ours_s / hf_s:.2f}x (goal <= 3.0); "
          f"CPU seconds {ours_cpu:.1f} / {hf_cpu:.1f} = {ours_cpu / hf_cpu:.2f}x; first 20 merges shared: {agree['first20_shared']}/20, all: {agree['all_shared']}/{agree['num_merges'][0]}")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
