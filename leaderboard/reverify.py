"""Re-evaluate one stored entry from its files: what ``verify --top K`` runs, inline or as one Slurm job.

The store keeps numbers, not checkpoints, so staff point at a folder of runs (``--runs DIR``)
holding each entry's files under ``DIR/<content hash>/`` (or ``DIR/<entry id>/``); the files must
hash to the entry's content hash, so the weights re-run are the weights that were scored. Entries
without code go through the trusted evaluator, entries with code through the sandbox, on this
machine's hardware::

    python -m lmcourse.leaderboard.reverify 12 --db URL --runs DIR --course ROOT --out work/12.json

The job writes ``{"entry", "loss", "bits_per_byte", "device", "custom"}`` or ``{"entry", "error"}``
(one sentence) to ``--out`` and exits 0 either way; a crash leaves no file, which the caller reports.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..grader.course import Course
from ..grader.errors import LmcourseError
from .checkpoint import content_hash, read_submission
from .custom import evaluate_any
from .store import Store


def reevaluate(store: Store, entry_id: int, runs: Path, course: Course, *, data_dir: Path | None = None,
               device: str = "auto", sandbox: str = "local") -> dict[str, Any]:
    """Evaluate entry ``entry_id`` again from its files under ``runs``; the numbers as a JSON-ready dict."""
    entry = store.entry(entry_id).entry
    folder = next((f for f in (runs / entry.content_hash, runs / str(entry_id)) if f.is_dir()), None)
    if folder is None:
        raise LmcourseError(f"the files of entry {entry_id} are not in {runs} (looked for {entry.content_hash}/ "
                            f"and {entry_id}/).")
    files = read_submission(folder)
    if content_hash(files) != entry.content_hash:
        raise LmcourseError(f"{folder} does not hold the files entry {entry_id} was scored on (its content hash "
                            "differs).")
    evaluation = evaluate_any(files, store.board(entry.board).rules, course, data_dir=data_dir, device=device,
                              sandbox=sandbox)
    return {"entry": entry_id, "loss": evaluation.loss, "bits_per_byte": evaluation.bits_per_byte,
            "device": evaluation.device, "custom": not evaluation.trusted}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lmcourse.leaderboard.reverify", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("entry", type=int)
    parser.add_argument("--db", required=True, help="The leaderboard database URL.")
    parser.add_argument("--runs", type=Path, required=True, help="Folder of the entries' files (see above).")
    parser.add_argument("--course", type=Path, required=True, help="The course root (for the reference model).")
    parser.add_argument("--out", type=Path, required=True, help="Where the JSON result goes.")
    parser.add_argument("--data-dir", type=Path, help="Prepared datasets (default: the course's data/).")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--sandbox", default="local", help="Sandbox for custom code: local or docker.")
    args = parser.parse_args(argv)
    try:
        with Store.open(args.db) as store:
            result = reevaluate(store, args.entry, args.runs, Course.load(args.course), data_dir=args.data_dir,
                                device=args.device, sandbox=args.sandbox)
    except LmcourseError as error:  # SubmissionRejected included: the sentence is the result
        result = {"entry": args.entry, "error": str(error)}
    partial = args.out.with_name(args.out.name + ".partial")
    partial.write_text(json.dumps(result), encoding="utf-8")
    partial.replace(args.out)  # whole or absent: the caller never reads half a file
    return 0


if __name__ == "__main__":
    sys.exit(main())
