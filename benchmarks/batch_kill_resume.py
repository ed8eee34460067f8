"""Kill -9 in the middle of a batch, resume, and compare with an uninterrupted run.

Builds N submissions of mixed quality (as batch_throughput.py does), grades them once without
interruption, then again in a child process killed with SIGKILL after K are recorded, then
resumed. Prints whether every submission was recorded exactly once and scored the same in both.

    python benchmarks/batch_kill_resume.py --course tests/minicourse --unit toy --count 50 --kill-after 15
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from batch_throughput import make_submissions

from lmcourse.grader.course import Course

REPO = Path(__file__).resolve().parent.parent


def journal(out: Path) -> dict[str, tuple[str, int, float | None]]:
    with sqlite3.connect(out / "journal.sqlite", timeout=5) as db:
        return {r[0]: tuple(r[1:]) for r in db.execute("SELECT id, state, completions, score FROM submissions")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--course", type=Path, default=REPO)
    parser.add_argument("--unit", default="basics")
    parser.add_argument("--count", type=int, default=50)
    parser.add_argument("--kill-after", type=int, default=15)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--sandbox", default="local")
    args = parser.parse_args()
    unit = Course.load(args.course).unit(args.unit)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        subs = root / "subs"
        make_submissions(unit, root, subs, args.count)
        cmd = [sys.executable, "-m", "lmcourse.grader", "--course", str(args.course), "grade", str(subs), "--unit", args.unit,
               "--sandbox", args.sandbox, "--jobs", str(args.jobs), "--json"]
        start = time.perf_counter()
        subprocess.run([*cmd, "--out", str(root / "a")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        uninterrupted_s = time.perf_counter() - start
        start = time.perf_counter()
        child = subprocess.Popen([*cmd, "--out", str(root / "b")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while not (root / "b/journal.sqlite").exists() or sum(s == "done" for s, _, _ in journal(root / "b").values()) < args.kill_after:
            time.sleep(0.2)
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        at_kill = sum(s == "done" for s, _, _ in journal(root / "b").values())
        subprocess.run([*cmd, "--out", str(root / "b")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        interrupted_s = time.perf_counter() - start
        a, b = journal(root / "a"), journal(root / "b")
    same = all(a[k][2] == b[k][2] and a[k][0] == b[k][0] for k in a) and set(a) == set(b)
    once = all(v[1] == 1 for v in b.values()) and all(v[1] == 1 for v in a.values())
    print(f"{len(a)} submissions; killed with {at_kill} recorded; every one recorded exactly once: {once}; "
          f"scores identical to the uninterrupted run: {same}")
    print(json.dumps({"count": len(a), "killed_at": at_kill, "exactly_once": once, "identical_scores": same,
                      "uninterrupted_s": round(uninterrupted_s), "interrupted_total_s": round(interrupted_s),
                      "per_hour": round(3600 * len(a) / uninterrupted_s)}))


if __name__ == "__main__":
    main()
