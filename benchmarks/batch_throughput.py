"""Batch throughput: N submissions of mixed quality graded with --jobs J, in submissions per hour.

The mix cycles through reference, stubbed, half-done (one problem broken), crashing (the adapters
exit at import) and hanging (the adapters sleep at import) submissions of a unit, built from its
handout and reference. Prints the wall time, submissions/hour and the score of each kind.

    python benchmarks/batch_throughput.py --unit basics --count 50 --jobs 2 --sandbox local
"""

from __future__ import annotations

import argparse
import collections
import json
import shutil
import tempfile
import time
from pathlib import Path

from lmcourse.grader.course import Course, Unit
from lmcourse.grader.grading.batch import grade_batch
from lmcourse.grader.handout.build import build

REPO = Path(__file__).resolve().parent.parent
KINDS = ["reference", "stubbed", "half", "crashing", "hanging"]


def make(kind: str, trees: dict[str, Path], dest: Path, package: str) -> None:
    shutil.copytree(trees["stubbed" if kind == "stubbed" else "reference"], dest)
    adapters = dest / "tests/adapters.py"
    if kind == "half":  # the first adapter that calls into the package now raises
        text = adapters.read_text()
        start = text.index("def run_")
        body = text.index("\n    ", text.index(":\n", start))
        adapters.write_text(text[:body] + "\n    raise RuntimeError('unfinished')" + text[body:])
    elif kind == "crashing":
        adapters.write_text("import os\nos._exit(1)\n")
    elif kind == "hanging":
        adapters.write_text(adapters.read_text() + "\nimport time\ntime.sleep(10**6)\n")


def make_submissions(unit: Unit, root: Path, subs: Path, count: int) -> dict[str, str]:
    """``count`` submissions in ``subs``, cycling through KINDS; returns each one's kind."""
    trees = {"stubbed": build(unit, root / "h").folder, "reference": build(unit, root / "h", solutions=True).folder}
    subs.mkdir()
    kinds = {}
    for i in range(count):
        kind = KINDS[i % len(KINDS)]
        make(kind, trees, subs / f"s{i:03d}-{kind}", unit.package)
        kinds[f"s{i:03d}-{kind}"] = kind
    return kinds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--course", type=Path, default=REPO)
    parser.add_argument("--unit", default="basics")
    parser.add_argument("--count", type=int, default=50)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--sandbox", default="local")
    args = parser.parse_args()
    unit = Course.load(args.course).unit(args.unit)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        subs = root / "subs"
        kinds = make_submissions(unit, root, subs, args.count)
        start = time.perf_counter()
        rows = grade_batch(unit, subs, root / "out", sandbox=args.sandbox, jobs=args.jobs)
        wall = time.perf_counter() - start
    scores: dict[str, list[float]] = collections.defaultdict(list)
    for r in rows:
        scores[kinds[r.id]].append(r.score or 0.0)
    per_hour = 3600 * len(rows) / wall
    print(f"{len(rows)} submissions, --jobs {args.jobs}, {args.sandbox}: {wall:.0f} s wall, {per_hour:.0f} submissions/hour")
    for kind in KINDS:
        values = scores[kind]
        print(f"  {kind:>9}: {len(values)} graded, scores {sorted(set(values))}")
    print(json.dumps({"count": len(rows), "jobs": args.jobs, "sandbox": args.sandbox, "wall_s": wall, "per_hour": per_hour,
                      "errors": sum(r.state == "error" for r in rows), "completions": sorted({r.completions for r in rows})}))


if __name__ == "__main__":
    main()
