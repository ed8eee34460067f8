"""Load test of the scaling training API: concurrent clients submitting and polling on loopback.

The server runs in its own process (uvicorn, simulated backend) on a fresh database: SQLite by
default, PostgreSQL with ``--db``. Students share the load: ``--clients`` threads, each bound to
one of ``--students`` students, send ``--requests`` requests each (60% submissions drawn from a
per-student pool of configs, so clients of one student collide on the same configs and the pool
costs three times the budget; 40% polls of an experiment or of the list), then stop. A wall
clock (``--max-seconds``) stops everything early if the server stalls. Afterwards, with an
instructor key and each student's key, it checks:

- no 5xx, and every refusal is a 409 (over budget);
- the budget is never exceeded, and what was spent equals the summed cost of the experiments
  (nothing charged twice);
- every experiment a client was given exists, and each was created by exactly one 201
  (nothing lost, duplicates not re-created).

It prints latency percentiles per kind of request, then one JSON line with everything.

    python benchmarks/scaling_api_load.py                      # 50 clients, 10 students, SQLite
    python benchmarks/scaling_api_load.py --db postgresql://...
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

import httpx

from lmcourse.grader.scaling.config import ExperimentConfig
from lmcourse.grader.scaling.server import ServerSettings, build_service

REPO = Path(__file__).resolve().parents[1]
SERVER = """
import sys
from pathlib import Path
from lmcourse.grader.scaling.server import ServerSettings, build_service, serve
serve(build_service(ServerSettings.for_course(Path(sys.argv[1]), database_url=sys.argv[2])), "127.0.0.1", int(sys.argv[3]))
"""


def config_pool(seed: int, size: int) -> list[dict[str, object]]:
    """``size`` distinct small configs (1e14 to 1e15 FLOPs each)."""
    rng = random.Random(seed)
    pool: dict[str, dict[str, object]] = {}
    while len(pool) < size:
        width = rng.choice([64, 128, 192, 256])
        config = ExperimentConfig(d_model=width, num_layers=rng.randint(2, 6), num_heads=width // 64, batch_size=rng.choice([8, 16, 32]),
                                  learning_rate=rng.choice([5e-4, 1e-3, 2e-3, 4e-3]), train_tokens=rng.choice([20, 40, 80]) * 10**6)
        pool[config.config_hash()] = config.model_dump()
    return list(pool.values())


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))] if ordered else float("nan")


class Client(threading.Thread):
    def __init__(self, url: str, key: str, pool: list[dict[str, object]], requests: int, seed: int, deadline: float) -> None:
        super().__init__(daemon=True)
        self.url, self.key, self.pool, self.requests, self.deadline = url, key, pool, requests, deadline
        self.rng = random.Random(seed)
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.statuses: Counter[int] = Counter()
        self.given: dict[int, bool] = {}  # experiment id -> was it created (201) by this client's request
        self.created: list[int] = []

    def run(self) -> None:
        with httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.key}"}, timeout=60) as http:
            for _ in range(self.requests):
                if time.monotonic() > self.deadline:
                    return
                if self.rng.random() < 0.6 or not self.given:
                    kind, started = "submit", time.perf_counter()
                    response = http.post("/v1/experiments", json=self.rng.choice(self.pool))
                elif self.rng.random() < 0.7:
                    kind, started = "get", time.perf_counter()
                    response = http.get(f"/v1/experiments/{self.rng.choice(sorted(self.given))}")
                else:
                    kind, started = "list", time.perf_counter()
                    response = http.get("/v1/experiments")
                self.latencies[kind].append(time.perf_counter() - started)
                self.statuses[response.status_code] += 1
                if kind == "submit" and response.status_code in (200, 201):
                    experiment_id = response.json()["experiment"]["id"]
                    self.given[experiment_id] = True
                    if response.status_code == 201:
                        self.created.append(experiment_id)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--students", type=int, default=10)
    parser.add_argument("--requests", type=int, default=40, help="requests per client")
    parser.add_argument("--pool", type=int, default=30, help="distinct configs per student")
    parser.add_argument("--max-seconds", type=float, default=300)
    parser.add_argument("--db", help="database URL (default: a fresh SQLite file)")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="lmcourse-scaling-load-"))
    db = args.db or f"sqlite:///{tmp / 'scaling.db'}"
    setup = build_service(ServerSettings.for_course(REPO, database_url=db))
    pools = {f"s{i:02d}": config_pool(i, args.pool) for i in range(args.students)}
    budgets = {name: sum(ExperimentConfig(**c).flops for c in pool) / 3 for name, pool in pools.items()}
    keys = {name: setup.add_student(name, budget=budgets[name]) for name in pools}
    instructor = setup.add_student("load-instructor", instructor=True)
    setup.close()

    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(REPO), db, str(port)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                httpx.get(f"{url}/v1/info", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        names = sorted(pools)
        deadline = time.monotonic() + args.max_seconds
        clients = [Client(url, keys[names[i % len(names)]], pools[names[i % len(names)]], args.requests, i, deadline)
                   for i in range(args.clients)]
        started = time.perf_counter()
        for client in clients:
            client.start()
        for client in clients:
            client.join(args.max_seconds + 60)
        wall = time.perf_counter() - started
        report = check(url, instructor, keys, clients, names)
    finally:
        server.terminate()
        server.wait(30)
    latencies: dict[str, list[float]] = defaultdict(list)
    for client in clients:
        for kind, values in client.latencies.items():
            latencies[kind] += values
    everything = [v for values in latencies.values() for v in values]
    statuses = sum((client.statuses for client in clients), Counter())
    summary = {
        "clients": args.clients, "students": args.students, "database": db.split(":")[0], "requests": len(everything),
        "wall_s": round(wall, 2), "requests_per_s": round(len(everything) / wall, 1),
        "statuses": dict(sorted(statuses.items())),
        "latency_ms": {kind: {"p50": round(1000 * percentile(v, 50), 1), "p95": round(1000 * percentile(v, 95), 1),
                              "p99": round(1000 * percentile(v, 99), 1)} for kind, v in [("all", everything), *sorted(latencies.items())]},
        **report,
    }
    print(f"{summary['requests']} requests from {args.clients} clients in {wall:.1f} s ({summary['requests_per_s']}/s), "
          f"statuses {summary['statuses']}")
    for kind, stats in summary["latency_ms"].items():
        print(f"  {kind:7} p50 {stats['p50']:7.1f} ms   p95 {stats['p95']:7.1f} ms   p99 {stats['p99']:7.1f} ms")
    print(f"  checks: {'all passed' if summary['ok'] else 'FAILED: ' + '; '.join(summary['problems'])}")
    print(json.dumps(summary))
    sys.exit(0 if summary["ok"] else 1)


def check(url: str, instructor: str, keys: dict[str, str], clients: list[Client], names: list[str]) -> dict[str, object]:
    problems = []
    statuses = sum((client.statuses for client in clients), Counter())
    if any(code >= 500 for code in statuses):
        problems.append(f"server errors: {statuses}")
    if set(statuses) - {200, 201, 409}:
        problems.append(f"unexpected statuses: {statuses}")
    overview = {row["name"]: row for row in httpx.get(f"{url}/v1/instructor/students", headers={"Authorization": f"Bearer {instructor}"}).json()}
    created = Counter(experiment_id for client in clients for experiment_id in client.created)
    experiments_total = 0
    for name in names:
        experiments = httpx.get(f"{url}/v1/experiments", headers={"Authorization": f"Bearer {keys[name]}"}).json()
        experiments_total += len(experiments)
        budget = overview[name]["budget"]
        ids = {e["id"] for e in experiments}
        if budget["spent"] > budget["total"]:
            problems.append(f"{name} overspent: {budget['spent']} > {budget['total']}")
        charged = sum(e["cost"] for e in experiments if not e["refunded"])
        if abs(charged - budget["spent"]) > 1e-9 * budget["total"]:
            problems.append(f"{name}: spent {budget['spent']} but the experiments cost {charged}")
        mine = [client for client in clients if client.key == keys[name]]
        given = set().union(*(client.given for client in mine))
        if given - ids:
            problems.append(f"{name}: experiments {sorted(given - ids)} were handed out but are gone")
        if any(created[i] != 1 for i in ids):
            problems.append(f"{name}: experiments not created by exactly one 201: {[i for i in ids if created[i] != 1]}")
    return {"experiments": experiments_total, "over_budget_refusals": statuses.get(409, 0), "ok": not problems, "problems": problems}


if __name__ == "__main__":
    main()
