"""What one Slurm job runs on its node: grade one submission, then leave its outcome in a file.

``python -m lmcourse.grader.grading.slurm_job --course ... --student ID --outcome FILE`` grades
into ``OUT/<id>.partial/`` with the very function the inline executor's pool workers call, then
writes the outcome (score or one-sentence error) to ``FILE`` by an atomic rename, as its last act.
It never publishes ``OUT/<id>/`` itself: the controller does, once Slurm reports the job COMPLETED,
so a job killed for its time or memory limit can never leave a result that looks complete.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
from pathlib import Path

from .batch import grade_partial


def write_outcome(path: Path, outcome: dict[str, object]) -> None:
    """Write ``outcome`` as JSON so that readers see all of it or nothing (also over NFS)."""
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8") as f:
        json.dump(outcome, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_outcome(path: Path) -> dict[str, object] | None:
    """The outcome a job left, or ``None`` if it left none."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        return {"error": f"the job's result file {path} is unreadable ({exc})", "seconds": 0.0}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lmcourse-slurm-job", description=__doc__)
    parser.add_argument("--course", required=True, help="The course root (on a shared filesystem).")
    parser.add_argument("--unit", required=True)
    parser.add_argument("--sandbox", required=True)
    parser.add_argument("--out", required=True, type=Path, help="The batch's output folder.")
    parser.add_argument("--student", required=True, help="The submission's id in the journal.")
    parser.add_argument("--path", required=True, help="The submission's archive or folder.")
    parser.add_argument("--submitted", help="When it was submitted (ISO 8601 with offset).")
    parser.add_argument("--outcome", required=True, type=Path, help="Where the outcome JSON goes.")
    args = parser.parse_args(argv)
    outcome = grade_partial(args.course, args.unit, args.student, args.path, args.submitted, args.out, args.sandbox)
    outcome["job"] = os.environ.get("SLURM_JOB_ID")
    outcome["host"] = socket.gethostname()
    write_outcome(args.outcome, outcome)
    result = outcome.get("error") or f"{outcome['score']:g}/{outcome['possible']:g} points"
    print(f"lmcourse: {args.student}: {result}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
