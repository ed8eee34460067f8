"""The same batch through the inline executor and through Slurm: identical scores, and the wall times.

Builds N submissions of mixed quality (as batch_throughput.py does: reference, stubbed, half-done,
crashing, hanging), grades them with the inline process pool (--jobs J), then with one Slurm job
each (--cpus-per-job C, so a node of J*C CPUs runs J at a time), and compares every submission's
state, score, error and per-test outcomes. Needs a running Slurm (scripts/install-slurm.sh).

    python benchmarks/slurm_batch.py --course tests/minicourse --unit toy --count 20
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine
from batch_throughput import make_submissions

from lmcourse.grader.config import SlurmConfig
from lmcourse.grader.course import Course
from lmcourse.grader.grading.batch import InlineExecutor, grade_batch
from lmcourse.grader.grading.journal import Row
from lmcourse.grader.grading.slurm_batch import SlurmExecutor

REPO = Path(__file__).resolve().parent.parent


def outcomes(out: Path, row: Row) -> dict[str, str]:
    """Each test's outcome in a graded submission's folder (none for one that could not be graded)."""
    path = out / row.id / "tests.json"
    return {t["nodeid"]: t["outcome"] for t in json.loads(path.read_text())} if path.is_file() else {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--course", type=Path, default=REPO)
    parser.add_argument("--unit", default="basics")
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=2, help="Inline: submissions graded at once.")
    parser.add_argument("--cpus-per-job", type=int, default=1, help="Slurm: CPUs each job asks for.")
    parser.add_argument("--sandbox", default="local")
    args = parser.parse_args()
    unit = Course.load(args.course).unit(args.unit)
    base = unit.course.config.slurm or SlurmConfig()
    config = base.model_copy(update={"cpus": args.cpus_per_job})
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        kinds = make_submissions(unit, root, root / "subs", args.count)
        runs = {}
        for name, executor in (("inline", InlineExecutor(args.jobs)), ("slurm", SlurmExecutor(config, poll_s=1.0))):
            start = time.perf_counter()
            rows = grade_batch(unit, root / "subs", root / name, sandbox=args.sandbox, executor=executor)
            runs[name] = {"wall_s": time.perf_counter() - start, "rows": rows,
                          "tests": {r.id: outcomes(root / name, r) for r in rows}}
        inline, slurm = runs["inline"], runs["slurm"]
        key = [(r.id, r.state, r.score, r.error) for r in inline["rows"]]
        differ = [a[0] for a, b in zip(key, [(r.id, r.state, r.score, r.error) for r in slurm["rows"]], strict=True) if a != b]
        differ += [sid for sid in inline["tests"] if inline["tests"][sid] != slurm["tests"][sid] and sid not in differ]
    for name, run in runs.items():
        rows = run["rows"]
        print(f"{name:>6}: {len(rows)} submissions in {run['wall_s']:.0f} s wall "
              f"({3600 * len(rows) / run['wall_s']:.0f}/hour), completions {sorted({r.completions for r in rows})}")
    for kind in sorted(set(kinds.values())):
        scores = sorted({r.score for r in slurm["rows"] if kinds[r.id] == kind})
        print(f"  {kind:>9}: scores {scores}")
    print("identical scores and test outcomes" if not differ else f"DIFFERENT: {', '.join(differ)}")
    print(json.dumps({
        "count": args.count, "unit": args.unit, "sandbox": args.sandbox, "jobs": args.jobs,
        "cpus_per_job": args.cpus_per_job, "inline_wall_s": round(inline["wall_s"], 1),
        "slurm_wall_s": round(slurm["wall_s"], 1), "identical": not differ, "differ": differ,
        "slurm_jobs": sorted(r.job_id for r in slurm["rows"] if r.job_id), "machine": machine(),
    }))
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
