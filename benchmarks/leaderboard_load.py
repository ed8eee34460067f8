"""Leaderboard under load: concurrent submissions against the served app, and the ranking page meanwhile.

Starts the web app under uvicorn on a loopback port, in a child process, with a fast stand-in
evaluator (it sleeps ``--eval-seconds`` and scores each checkpoint from its hash: evaluation speed
is measured by ``leaderboard_eval.py``). Then, all at once: ``--students`` students each upload a
distinct tiny checkpoint, ``--repeats`` of them upload the very same bytes a second time, and
``--readers`` threads GET the ranking page in a loop until the uploads are done. Everything has a
timeout; the run stops by itself.

Checks: every upload answered 201 (new) or 200 (the same entry again); the database holds exactly
one row per distinct checkpoint, each with its own content hash, and the ids the API returned are
those rows. Reports p50/p95/max latency of the ranking page idle and under load, and of uploads.

    python benchmarks/leaderboard_load.py                       # SQLite in a temp folder
    python benchmarks/leaderboard_load.py --postgres            # a private PostgreSQL cluster (initdb, pg_ctl)
    python benchmarks/leaderboard_load.py --db postgresql://lb@dbhost/leaderboard
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
import torch
from _common import machine
from safetensors.torch import save

from lmcourse.leaderboard.architecture import tensor_shapes
from lmcourse.leaderboard.checkpoint import SubmissionFiles
from lmcourse.leaderboard.config import BoardRules, ModelConfig
from lmcourse.leaderboard.db import parse_url
from lmcourse.leaderboard.evaluate import Evaluation

BOARD = "basics"
CONFIG = ModelConfig(vocab_size=257, context_length=64, d_model=32, num_layers=2, num_heads=4, d_ff=64,
                     rope_theta=10000.0)
RULES = BoardRules(context_length=64, stride=32, daily_quota=5)


class StandInEvaluator:
    """Sleeps like an evaluation would (releasing the GIL, as torch kernels do) and scores by content."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __call__(self, sub: SubmissionFiles, rules: BoardRules) -> Evaluation:
        time.sleep(self.seconds)
        digest = hashlib.sha256(sub.weights).digest()
        bits_per_byte = 1.0 + int.from_bytes(digest[:4]) / 2**32  # distinct checkpoints, distinct scores
        loss = bits_per_byte * math.log(2) * 4
        return Evaluation(loss=loss, perplexity=math.exp(loss), bits_per_byte=bits_per_byte, tokens=1000,
                          bytes=4000, parameters=sum(math.prod(s) for s in tensor_shapes(sub.config).values()),
                          seconds=self.seconds, device="cpu")


def serve(db: str, fd: int, evaluations: int, eval_seconds: float) -> None:
    """The child process: the app on the listening socket ``fd`` until SIGTERM."""
    import uvicorn

    from lmcourse.leaderboard.store import Store
    from lmcourse.leaderboard.web import create_app

    with Store.open(db) as store:
        app = create_app(store, StandInEvaluator(eval_seconds), concurrent_evaluations=evaluations)
        uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[socket.socket(fileno=fd)])


def checkpoint(seed: int) -> bytes:
    generator = torch.Generator().manual_seed(seed)
    return save({name: 0.1 * torch.randn(shape, generator=generator) for name, shape in tensor_shapes(CONFIG).items()})


@contextmanager
def postgres() -> Iterator[str]:
    """A private PostgreSQL cluster on a Unix socket in a temp folder (as the postgres user when root)."""
    binaries = Path(os.path.realpath(shutil.which("initdb") or "/usr/local/bin/initdb")).parent
    root = Path(tempfile.mkdtemp(prefix="lmc-load-pg-"))
    as_postgres = os.geteuid() == 0
    user = "postgres" if as_postgres else os.environ.get("USER", "postgres")

    def run(tool: str, *args: str) -> None:
        command = [str(binaries / tool), *args]
        if as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    if as_postgres:
        shutil.chown(root, "postgres", "postgres")
    run("initdb", "-D", str(root / "data"), "-U", user, "-A", "trust", "-E", "UTF8", "--no-sync")
    run("pg_ctl", "start", "-D", str(root / "data"), "-w", "-l", str(root / "server.log"),
        "-o", f"-k {root} -c listen_addresses='' -c max_connections=200")
    try:
        with psycopg.connect(host=str(root), user=user, dbname="postgres", autocommit=True) as admin:
            admin.execute("CREATE DATABASE leaderboard")
        yield f"postgresql+psycopg://{user}@/leaderboard?host={root}"
    finally:
        run("pg_ctl", "stop", "-D", str(root / "data"), "-m", "fast", "-w")
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def served(db: str, evaluations: int, eval_seconds: float) -> Iterator[str]:
    """The app in a child process (its own GIL, like a deployment); yields its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(256)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(sock.fileno()), "--db", db, "--evaluations", str(evaluations),
         "--eval-seconds", str(eval_seconds)],
        pass_fds=[sock.fileno()],
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{url}/api/boards", timeout=5).raise_for_status()
                break
            except httpx.HTTPError:
                if child.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the server did not come up") from None
                time.sleep(0.2)
        yield url
    finally:
        child.terminate()
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
        sock.close()


def percentiles(samples: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return {"n": len(samples), "p50_ms": 1000 * cuts[49], "p95_ms": 1000 * cuts[94], "max_ms": 1000 * max(samples)}


def timed_get(client: httpx.Client, path: str) -> float:
    started = time.perf_counter()
    client.get(path).raise_for_status()
    return time.perf_counter() - started


def load(url: str, tokens: dict[str, str], args: argparse.Namespace) -> dict[str, Any]:
    """Fire the uploads and the readers at once; returns what each request got and the latencies."""
    students = sorted(tokens)
    uploads = [(s, i) for i, s in enumerate(students)] + [(s, i) for i, s in enumerate(students[: args.repeats])]
    bodies = {i: checkpoint(i) for i in range(len(students))}
    config = CONFIG.model_dump_json().encode()
    answers: list[tuple[int, int, int | None]] = []  # (seed, status, entry id)
    upload_seconds: list[float] = []
    page_seconds: list[float] = []
    lock = threading.Lock()
    go = threading.Barrier(len(uploads) + args.readers)
    uploads_done = threading.Event()
    deadline = time.monotonic() + args.timeout

    def upload(student: str, seed: int) -> None:
        with httpx.Client(base_url=url, timeout=args.timeout) as client:
            go.wait(timeout=60)
            started = time.perf_counter()
            response = client.post(f"/api/boards/{BOARD}/submissions",
                                   files={"weights": ("model.safetensors", bodies[seed]),
                                          "config": ("model_config.json", config)},
                                   headers={"Authorization": f"Bearer {tokens[student]}"})
            with lock:
                upload_seconds.append(time.perf_counter() - started)
                answers.append((seed, response.status_code, response.json().get("id")))

    def read() -> None:
        with httpx.Client(base_url=url, timeout=60) as client:
            go.wait(timeout=60)
            while not uploads_done.is_set() and time.monotonic() < deadline:
                seconds = timed_get(client, f"/boards/{BOARD}")
                with lock:
                    page_seconds.append(seconds)

    writers = [threading.Thread(target=upload, args=job) for job in uploads]
    readers = [threading.Thread(target=read) for _ in range(args.readers)]
    started = time.perf_counter()
    for thread in writers + readers:
        thread.start()
    for thread in writers:
        thread.join(timeout=max(1.0, deadline - time.monotonic()))
    uploads_done.set()
    for thread in readers:
        thread.join(timeout=60)
    if any(t.is_alive() for t in writers + readers):
        raise RuntimeError(f"requests still running after --timeout {args.timeout} s")
    return {"answers": answers, "upload_s": upload_seconds, "page_s": page_seconds,
            "wall_s": time.perf_counter() - started}


def check(db: str, answers: list[tuple[int, int, int | None]], students: int) -> dict[str, Any]:
    """Rows in the database against what the API accepted: one per distinct checkpoint, none lost."""
    from sqlalchemy import func, select

    from lmcourse.leaderboard.db import Submission, make_engine

    engine = make_engine(db)
    try:
        with engine.connect() as connection:
            rows = connection.execute(select(Submission.id, Submission.content_sha256)).all()
            hashes = connection.scalar(select(func.count(func.distinct(Submission.content_sha256))))
    finally:
        engine.dispose()
    statuses = sorted({status for _, status, _ in answers})
    ids_by_seed: dict[int, set[int | None]] = {}
    for seed, _, entry_id in answers:
        ids_by_seed.setdefault(seed, set()).add(entry_id)
    accepted = {entry_id for ids in ids_by_seed.values() for entry_id in ids}
    result = {
        "statuses": {str(s): sum(1 for _, status, _ in answers if status == s) for s in statuses},
        "rows": len(rows),
        "distinct_hashes": hashes,
        "distinct_checkpoints": students,
        "one_id_per_checkpoint": all(len(ids) == 1 for ids in ids_by_seed.values()),
        "ids_match_rows": accepted == {row.id for row in rows},
    }
    result["ok"] = (set(statuses) <= {200, 201} and result["rows"] == students == hashes
                    and result["one_id_per_checkpoint"] and result["ids_match_rows"])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", help="database URL (default: SQLite in a temp folder)")
    parser.add_argument("--postgres", action="store_true", help="start a private PostgreSQL cluster and use it")
    parser.add_argument("--students", type=int, default=50, help="students, one distinct checkpoint each")
    parser.add_argument("--repeats", type=int, default=10, help="students who send their same checkpoint twice")
    parser.add_argument("--readers", type=int, default=4, help="threads reading the ranking page meanwhile")
    parser.add_argument("--evaluations", type=int, default=2, help="the app's concurrent evaluation bound")
    parser.add_argument("--eval-seconds", type=float, default=0.05, help="how long the stand-in evaluation takes")
    parser.add_argument("--timeout", type=float, default=300, help="give up after this many seconds")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)  # internal: the child, given a socket fd
    args = parser.parse_args()
    if args.serve is not None:
        serve(args.db, args.serve, args.evaluations, args.eval_seconds)
        return

    with tempfile.TemporaryDirectory(prefix="lmc-load-") as tmp, \
            (postgres() if args.postgres else _given(args.db or f"sqlite:///{tmp}/leaderboard.db")) as db:
        from lmcourse.leaderboard.store import Store

        with Store.open(db) as store:
            store.add_board(BOARD, "basics", RULES)
            tokens = {f"s{i:03d}": store.add_student(f"s{i:03d}", f"Student {i}") for i in range(args.students)}
            backend = parse_url(db).get_backend_name()
        with served(db, args.evaluations, args.eval_seconds) as url:
            with httpx.Client(base_url=url, timeout=60) as client:
                idle = [timed_get(client, f"/boards/{BOARD}") for _ in range(30)]
            run = load(url, tokens, args)
            with httpx.Client(base_url=url, timeout=60) as client:
                after = [timed_get(client, f"/boards/{BOARD}") for _ in range(30)]
        verdict = check(db, run["answers"], args.students)

    report = {
        "backend": backend, "students": args.students, "repeats": args.repeats, "readers": args.readers,
        "evaluations": args.evaluations, "eval_seconds": args.eval_seconds, "wall_s": run["wall_s"],
        "page_idle": percentiles(idle), "page_under_load": percentiles(run["page_s"]),
        "page_after": percentiles(after), "upload": percentiles(run["upload_s"]), **verdict,
        "machine": machine(),
    }
    print(f"{backend}: {args.students + args.repeats} uploads ({args.repeats} repeated) from {args.students} "
          f"students in {run['wall_s']:.1f} s, {args.evaluations} evaluations at a time")
    print(f"  statuses {verdict['statuses']}; rows {verdict['rows']}, distinct hashes {verdict['distinct_hashes']}, "
          f"expected {args.students}: {'OK' if verdict['ok'] else 'MISMATCH'}")
    for label, key in (("ranking page, idle", "page_idle"), ("ranking page, under load", "page_under_load"),
                       ("ranking page, all entries", "page_after"), ("upload, end to end", "upload")):
        p = report[key]
        print(f"  {label:<26} n={p['n']:<5} p50 {p['p50_ms']:7.1f} ms  p95 {p['p95_ms']:7.1f} ms  "
              f"max {p['max_ms']:7.1f} ms")
    print(json.dumps(report))
    if not verdict["ok"]:
        sys.exit(1)


@contextmanager
def _given(url: str) -> Iterator[str]:
    yield url


if __name__ == "__main__":
    main()
