"""What the attack tests share: the honest baseline, the sandbox-side prelude, host checks.

An attack is the honest reference solution of the mini course with some student-owned files
replaced by hostile ones (see ``conftest.attack``). Its honest part is known, so each test can
say exactly what the submission must score: ``FULL`` with the attacked problems at 0.

Hostile code runs inside the sandbox and cannot hand anything to the test but through the
grader. To report what it saw (what it could read, write, connect to) it raises an exception
whose message carries a compressed JSON blob: the grader shows the student's own exception
messages, so the blob arrives in ``session.log`` and :func:`probe` reads it back.
"""

from __future__ import annotations

import base64
import json
import os
import re
import time
import zlib
from pathlib import Path
from typing import Any

import pytest

from lmcourse.grader.grading.engine import Graded

#: Points of each code problem of the toy unit (the written one is graded by staff).
FULL = {"softmax": 4.0, "word_counts": 3.0, "running_mean": 3.0, "fetch": 2.0}

#: Limits small enough for a quick suite and large enough for the honest solution.
LIMITS = {
    "test_timeout_s": 2,
    "total_timeout_s": 60,
    "memory_mb": 256,
    "pids": 32,
    "cpus": 1,
    "disk_mb": 16,
    "output_kb": 64,
}

#: Text that only hidden tests, staff code or the grader's trusted side contain.
SECRETS = (
    "test_normalisation_strips_outer_apostrophes_only",
    "owl 3\\ncat 2\\nox  2",
    "Hidden tests of word_counts",
    "Hidden tests of fetch",
    "lmcourse_canary_",
    "_canary_producer_that_must_not_exist",
    "logsumexp(scaled)",
)

#: Prepended to hostile code (after the adapters' own imports): how it reports back.
PRELUDE = '''

# ---------------------------------------------------------------- hostile part
def _lmatk_report(data):
    """Carry ``data`` out through the one channel the grader gives: an exception message."""
    import base64, json, zlib
    blob = base64.b64encode(zlib.compress(json.dumps(data, default=repr, sort_keys=True).encode(), 9)).decode()
    raise RuntimeError("PROBE" + blob + "END")

'''


def hostile(code: str, **values: Any) -> str:
    """The prelude, then ``code`` with each ``@NAME@`` placeholder replaced by ``repr(values[NAME])``."""
    for name, value in values.items():
        code = code.replace(f"@{name}@", repr(value))
    leftover = re.findall(r"@[A-Z_]+@", code)
    assert not leftover, f"unfilled placeholders {leftover}"
    return PRELUDE + code


def earned(graded: Graded) -> dict[str, float]:
    return {p.name: round(p.earned, 4) for p in graded.scored.problems}


def assert_scores(graded: Graded, tampered: bool = False, **attacked: float) -> None:
    """The submission earns ``FULL`` except for the problems named (their honest points)."""
    expected = {**FULL, **attacked}
    got = earned(graded)
    assert got == expected, f"per-problem points {got}, expected {expected}\n{graded.results.output}"
    total = 0.0 if tampered else pytest.approx(sum(expected.values()), abs=1e-3)
    assert graded.scored.score == total, graded.results.output
    assert graded.results.score == total
    assert graded.scored.tampered is tampered, graded.scored.anomalies
    written = json.loads((graded.out / "results.json").read_text())
    assert written["score"] == total, "results.json on disk disagrees with the returned score"
    assert written["extra_data"]["tampered"] is tampered


def outputs(graded: Graded, problem: str) -> list[str]:
    """What the student sees for each test of ``problem`` (Gradescope's per-test output)."""
    return [t.output or "" for t in graded.results.tests if t.tags and t.tags[0] == problem]


def session_log(graded: Graded) -> str:
    return (graded.out / "session.log").read_text(encoding="utf-8", errors="replace")


def probe(graded: Graded) -> dict[str, Any]:
    """The first report a hostile submission raised (see ``PRELUDE``)."""
    log = session_log(graded)
    found = re.search(r"PROBE([A-Za-z0-9+/=]+)END", log)
    assert found, f"the hostile code sent no report; session.log ends with:\n{log[-3000:]}"
    return json.loads(zlib.decompress(base64.b64decode(found.group(1))))


# --- host checks ------------------------------------------------------------------------------


def processes_mentioning(needle: str) -> list[str]:
    """Host processes whose mounts, command line or name mention ``needle``.

    A sandbox of one attack mounts folders from the attack's own scratch folder, so its
    processes (the worker and anything it forked) are found by that path, whatever the backend.
    """
    found, encoded = [], needle.encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        for part in ("mountinfo", "cmdline", "comm"):
            try:
                data = (entry / part).read_bytes()
            except OSError:
                continue
            if encoded in data:
                try:
                    comm = (entry / "comm").read_text().strip()
                    uid = (entry / "status").read_text().split("Uid:")[1].split()[0]
                except (OSError, IndexError):
                    comm, uid = "?", "?"
                found.append(f"pid {entry.name} uid {uid} {comm} ({part})")
                break
    return found


def containers_mounting(prefix: str) -> list[str]:
    """Sandbox containers (any state) with a bind mount from under ``prefix``."""
    try:
        import docker

        client = docker.from_env(timeout=10)
        listed = client.containers.list(all=True, filters={"label": "lmcourse.sandbox"})
    except Exception:  # noqa: BLE001 -- no daemon here: no containers either
        return []
    left = []
    for c in listed:
        try:
            mounts = c.attrs.get("Mounts") or []
        except Exception:  # noqa: BLE001, S112 -- removed meanwhile
            continue
        if any(str(m.get("Source", "")).startswith(prefix) for m in mounts):
            left.append(f"{c.short_id} {c.status}")
    return left


def wait_for_no_leftovers(scratch: Path, within_s: float = 15.0) -> tuple[list[str], list[str]]:
    """Processes and containers of the attack still alive after ``within_s`` (both empty if fine)."""
    deadline = time.monotonic() + within_s
    while True:
        procs, boxes = processes_mentioning(str(scratch)), containers_mounting(str(scratch))
        if (not procs and not boxes) or time.monotonic() > deadline:
            return procs, boxes
        time.sleep(0.2)


class TrustedPeak:
    """The peak resident memory of a grading's trusted pytest processes (the grader's side).

    They are found by the carrier file on their command line, which lies in the attack's scratch
    folder; ``VmHWM`` is each process's own high-water mark, so polling a few times a second is
    enough as long as it is read before the process exits.
    """

    def __init__(self, needle: str) -> None:
        import threading

        self.needle = needle.encode()
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            for entry in Path("/proc").iterdir():
                if not entry.name.isdigit():
                    continue
                try:
                    cmdline = (entry / "cmdline").read_bytes()
                    if b"--lmcourse-carrier" not in cmdline or self.needle not in cmdline:
                        continue
                    status = (entry / "status").read_text()
                except OSError:
                    continue
                found = re.search(r"VmHWM:\s+(\d+) kB", status)
                if found:
                    self.peak_mb = max(self.peak_mb, int(found.group(1)) / 1024)
            self._stop.wait(0.1)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join(5)
        return self.peak_mb


def orphans() -> list[str]:
    """Processes and containers of attacks whose grading is over (their scratch folder is gone)."""
    pattern = re.compile(rb"/tmp/lmatk-[A-Za-z0-9_]+")
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        for part in ("mountinfo", "cmdline"):
            try:
                data = (entry / part).read_bytes()
            except OSError:
                continue
            gone = {m.decode() for m in pattern.findall(data) if not Path(m.decode()).exists()}
            if gone:
                try:
                    uid = (entry / "status").read_text().split("Uid:")[1].split()[0]
                except (OSError, IndexError):
                    uid = "?"
                found.append(f"pid {entry.name} (uid {uid}) still holds {min(gone)}")
                break
    return found + [f"container {c}" for c in _containers_of_gone_scratch()]


def _containers_of_gone_scratch() -> list[str]:
    try:
        import docker

        listed = docker.from_env(timeout=10).containers.list(all=True, filters={"label": "lmcourse.sandbox"})
    except Exception:  # noqa: BLE001 -- no daemon: no containers
        return []
    left = []
    for c in listed:
        sources = [str(m.get("Source", "")) for m in (c.attrs.get("Mounts") or [])]
        gone = [s for s in sources if s.startswith("/tmp/lmatk-") and not Path(s).exists()]
        if gone:
            left.append(f"{c.short_id} {c.status} ({gone[0]})")
    return left


def remove_containers_mounting(prefix: str) -> None:
    """Remove the sandbox containers of one attack (found by its scratch folder), e.g. after a
    test has recorded that the grader left them behind."""
    try:
        import docker

        listed = docker.from_env(timeout=10).containers.list(all=True, filters={"label": "lmcourse.sandbox"})
    except Exception:  # noqa: BLE001 -- no daemon: no containers
        return
    for c in listed:
        if any(str(m.get("Source", "")).startswith(prefix) for m in (c.attrs.get("Mounts") or [])):
            try:
                c.remove(force=True)
            except Exception:  # noqa: BLE001, S110 -- gone meanwhile
                pass
