"""Resources: a submission tries to exhaust the sandbox, the grader or the host.

Fork bombs, memory bombs, endless loops, sleeps that ignore signals, gigabytes of output, a full
disk, a run that spends the whole wall clock, and replies built to make the grader's side hold
gigabytes or wait forever. Each is aimed at the two ``fetch_many`` tests (``get_fetch`` stubbed),
so the honest solution of every other problem must keep its 10 points. After each grading
``attack`` proves that no process or container of the sandbox is left and the grader's
temporary folder is empty; the last test checks the host once more as a whole.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from .kit import LIMITS, assert_scores, hostile, orphans, outputs, probe

pytestmark = pytest.mark.slow

STUB_FETCH = '''
def get_fetch():
    raise NotImplementedError("problem 'fetch': implement get_fetch")
'''


def fetch_many(body: str) -> str:
    """Adapters where ``get_fetch_many`` runs ``body`` and ``get_fetch`` is a stub."""
    return hostile("def get_fetch_many():\n" + "".join(f"    {line}\n" for line in body.strip().splitlines()) + STUB_FETCH)


def assert_fetch_many_stopped(graded, *words: str) -> None:  # type: ignore[no-untyped-def]
    """Both fetch_many tests failed, and what the student sees names the reason."""
    said = [o for o in outputs(graded, "fetch")]
    hits = [o for o in said if any(w in o for w in words)]
    assert len(hits) == 2, said


# --- 10. fork bomb ------------------------------------------------------------------------------------


def test_fork_bomb_is_contained_and_cleaned_up(attack, tmp_path: Path, sandbox: str) -> None:
    body = """
import os
while True:
    try:
        os.fork()
    except OSError:
        pass
"""
    graded = attack(tmp_path, {"tests/adapters.py": attack.kit.adapters(fetch_many(body))}, sandbox)
    assert_scores(graded, fetch=0)
    assert_fetch_many_stopped(graded, "ran past the 2 s limit")
    assert not graded.scored.anomalies


# --- 11. memory bomb ------------------------------------------------------------------------------------


def test_memory_bomb_is_killed_by_the_memory_limit(attack, tmp_path: Path, sandbox: str) -> None:
    body = """
hog = []
while True:
    hog.append(b"\\x01" * (8 << 20))  # touched, not just reserved
"""
    graded = attack(tmp_path, {"tests/adapters.py": attack.kit.adapters(fetch_many(body))}, sandbox)
    assert_scores(graded, fetch=0)
    assert_fetch_many_stopped(graded, "killed by the memory limit", "MemoryError")
    assert attack.trusted_peak_mb < 400, f"the grader's side grew to {attack.trusted_peak_mb:.0f} MB"


# --- 12. endless loop, 13. sleeping past the limit with signals ignored -----------------------------------


def test_endless_loop_is_stopped_at_the_call_limit(attack, tmp_path: Path, sandbox: str) -> None:
    graded = attack(tmp_path, {"tests/adapters.py": attack.kit.adapters(fetch_many("while True:\n    pass"))}, sandbox)
    assert_scores(graded, fetch=0)
    assert_fetch_many_stopped(graded, "ran past the 2 s limit")
    durations = [t.duration for t in graded.scored.tests if t.problem == "fetch"]
    assert max(durations) < LIMITS["test_timeout_s"] + 8, durations


def test_sleeping_and_ignoring_signals_is_stopped_at_the_call_limit(attack, tmp_path: Path, sandbox: str) -> None:
    body = """
import signal, time
for number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGALRM, signal.SIGUSR1, signal.SIGPIPE):
    signal.signal(number, signal.SIG_IGN)
signal.pthread_sigmask(signal.SIG_BLOCK, set(signal.Signals) - {signal.SIGKILL, signal.SIGSTOP})
time.sleep(3600)
"""
    graded = attack(tmp_path, {"tests/adapters.py": attack.kit.adapters(fetch_many(body))}, sandbox)
    assert_scores(graded, fetch=0)
    assert_fetch_many_stopped(graded, "ran past the 2 s limit")


# --- 14. gigabytes of output --------------------------------------------------------------------------------


def test_gigabytes_of_output_are_cut_and_cost_the_grader_nothing(attack, tmp_path: Path, sandbox: str) -> None:
    body = """
import os
chunk = b"spam " * (1 << 18)  # 1.25 MiB, no newline: one endless line
for _ in range(800):
    os.write(1, chunk)
    os.write(2, chunk)
os._exit(3)
"""
    graded = attack(tmp_path, {"tests/adapters.py": attack.kit.adapters(fetch_many(body))}, sandbox,
                    limits={"test_timeout_s": 15})
    assert_scores(graded, fetch=0)
    assert_fetch_many_stopped(graded, "died during the call", "ran past the 15 s limit")
    for name in ("session.log", "junit.xml", "results.json", "tests.json", "summary.txt"):
        size = (graded.out / name).stat().st_size
        assert size < 1 << 20, f"{name} is {size} bytes"
    assert attack.trusted_peak_mb < 400, f"the grader's side grew to {attack.trusted_peak_mb:.0f} MB"


# --- 15. filling the disk and writing elsewhere ---------------------------------------------------------------

DISK = '''
import glob, os


def _lmatk_fill(path):
    written, chunk = 0, b"\\0" * (1 << 20)
    try:
        with open(path, "wb") as f:
            while written < (4 << 30):
                f.write(chunk)
                f.flush()
                written += len(chunk)
    except OSError as e:
        return [written, e.errno]
    return [written, None]


def _lmatk_disk():
    seen = {"tmp": _lmatk_fill("/tmp/fill"), "shm": _lmatk_fill("/dev/shm/fill")}
    for n in range(1, 40):  # more files, once the first is cut by the size limit
        if _lmatk_fill(f"/tmp/fill{n}")[0] == 0:
            break
    seen["tmp_total"] = sum(os.path.getsize(p) for p in glob.glob("/tmp/fill*"))
    writable = []
    for d in ["/lmcourse/code", "/lmcourse/code/mini_toy", "/lmcourse/code/tests", "/lmcourse/boot",
              "/lmcourse/channel", "/opt/lmcourse/python", "/opt/lmcourse/site-packages", "/", "/etc", "/usr",
              "/var/tmp", "/home", "/root", "/run", "/var", "/sys/fs/cgroup", "/proc/sys/kernel"]:
        try:
            with open(os.path.join(d, "lmatk-" + @TOKEN@), "wb") as f:
                f.write(b"x")
            writable.append(d)
        except OSError:
            pass
    for d in glob.glob("/tmp/*/*/trusted/fixtures"):
        try:
            open(os.path.join(d, "numbers.json"), "ab").write(b"x")
            writable.append(d)
        except OSError:
            pass
    seen["writable"] = writable
    return seen


def get_fetch_many():
    _lmatk_report(_lmatk_disk())
''' + STUB_FETCH


def test_filling_the_disk_fills_only_the_private_tmp(attack, tmp_path: Path, sandbox: str) -> None:
    mark = os.urandom(6).hex()
    free_before = shutil.disk_usage("/tmp").free
    graded = attack(tmp_path, {"tests/adapters.py": attack.kit.adapters(hostile(DISK, TOKEN=mark))}, sandbox,
                    limits={"test_timeout_s": 10})
    assert_scores(graded, fetch=0)
    seen = probe(graded)
    cap = LIMITS["disk_mb"] << 20
    assert seen["tmp"][1] is not None and seen["tmp_total"] <= cap, seen  # stopped at the size of /tmp
    assert seen["shm"][1] is not None and seen["shm"][0] <= cap, seen
    assert seen["writable"] == [], seen["writable"]
    assert shutil.disk_usage("/tmp").free > free_before - (512 << 20), "the host's disk lost space"
    assert not list(Path("/tmp").glob(f"lmatk-{mark}")) and not list(Path("/var/tmp").glob(f"lmatk-{mark}"))


# --- the wall clock of the whole run ----------------------------------------------------------------------------

SLOW_EVERYWHERE = '''
import time


def _lmatk_slow(*args, **kwargs):
    time.sleep(1.5)  # under the per-call limit, every time
    raise NotImplementedError("still thinking")


run_softmax = run_word_counts = run_top_words = run_render_counts = _lmatk_slow
get_running_mean_cls = get_fetch = get_fetch_many = _lmatk_slow
'''


def test_spending_the_whole_wall_clock_ends_the_run_and_leaves_nothing(attack, tmp_path: Path, sandbox: str) -> None:
    graded = attack(tmp_path, {"tests/adapters.py": attack.kit.adapters(hostile(SLOW_EVERYWHERE))}, sandbox,
                    limits={"total_timeout_s": 8}, host_checks=False)
    assert_scores(graded, softmax=0, word_counts=0, running_mean=0, fetch=0)
    assert any("total time limit" in a for a in graded.scored.anomalies), graded.scored.anomalies
    assert graded.scored.execution_time < 8 + 15
    assert not [x for x in attack.leftovers if x.startswith("pid ")], attack.leftovers  # nothing still runs
    weaknesses = []
    if len(graded.scored.tests) != 28 or not any("did not report" in a for a in graded.scored.anomalies):
        weaknesses.append(
            f"the killed session never wrote its report, so the results list {len(graded.scored.tests)} tests "
            "(0/0 per problem) instead of 28 failed as 'did not report', and the canaries are never judged"
        )
    if attack.leftovers:
        weaknesses.append(
            "the trusted pytest is SIGKILLed, so its carriers never close: the grader leaves "
            f"{attack.leftovers} (docker: a stopped container per worker, never removed; both: the "
            "carrier's channel folder in TMPDIR)"
        )
    if weaknesses:
        pytest.xfail("known weaknesses of a wall-clock kill: " + "; ".join(weaknesses))


# --- replies built against the grader's side ---------------------------------------------------------------------

BIG_FRAMES = '''
import gc, socket, struct


def _lmatk_flood(size):
    sock = next(o for o in gc.get_objects() if isinstance(o, socket.socket) and o.family == socket.AF_UNIX)
    sock.sendall(struct.pack(">Q", size))  # a frame of `size` bytes, streamed: the worker holds none of it
    zeros = bytes(1 << 20)
    for _ in range(size >> 20):
        sock.sendall(zeros)


def run_softmax(values, temperature=1.0, log=False):
    # Never two in a row on the public tests: a good call in between keeps the carrier trying.
    key = (len(values), temperature, log)
    if key == (1, 1.0, False):
        _lmatk_flood((1 << 30) - 1)  # just under the wire's 1 GiB frame cap
    elif key in ((4, 1.0, False), (3, 1.0, False), (4, 2.0, False), (2, 1.0, False)):
        _lmatk_flood(150 << 20)  # under the sandbox's memory: no header line, a bad frame
    return [0.5] * len(values)
'''


def test_huge_reply_frames_do_not_make_the_grader_hold_gigabytes(attack, tmp_path: Path, sandbox: str) -> None:
    graded = attack(tmp_path, {"tests/adapters.py": attack.kit.adapters(hostile(BIG_FRAMES))}, sandbox)
    assert_scores(graded, softmax=0)
    # One reply may cost the grader about what the sandbox may hold (twice, while it is joined);
    # not a gigabyte the worker never had, and nothing may stay behind after the test.
    bound = 2 * LIMITS["memory_mb"] + 250
    assert attack.trusted_peak_mb < bound, f"the grader's side peaked at {attack.trusted_peak_mb:.0f} MB (bound {bound})"


BIG_BAD_VALUES = '''
import gc, json, socket, struct, sys

_worker = sys.modules["__main__"]
_real_send, _drop, _sent = _worker.send, [], []


def _send(sock, header, blobs):  # swallow the honest reply after a forged one: stay in step
    _sent.append(1)
    if _drop:
        _drop.pop()
        return
    _real_send(sock, header, blobs)


_worker.send = _send


def run_softmax(values, temperature=1.0, log=False):
    # A well-formed frame with a 150 MB blob, and a value the grader cannot decode.
    if _sent and len(values) in (2, 3, 4):
        sock = next(o for o in gc.get_objects() if isinstance(o, socket.socket) and o.family == socket.AF_UNIX)
        size = 150 << 20
        head = json.dumps({"ok": True, "value": {"__ndarray__": 0}, "_blobs": [size]}).encode() + b"\\n"
        sock.sendall(struct.pack(">Q", len(head) + size) + head)
        zeros = bytes(1 << 20)
        for _ in range(size >> 20):
            sock.sendall(zeros)
        _drop.append(1)
    return [0.5] * len(values)
'''


def test_big_replies_that_fail_to_decode_do_not_pile_up_in_the_grader(attack, tmp_path: Path, sandbox: str) -> None:
    graded = attack(tmp_path, {"tests/adapters.py": attack.kit.adapters(hostile(BIG_BAD_VALUES))}, sandbox)
    assert_scores(graded, softmax=0)
    failed = [t for t in graded.scored.tests if t.problem == "softmax" and "ndarray" not in t.message]
    assert sum("numpy" in t.message or "pickle" in t.message or "magic" in t.message.lower()
               for t in graded.scored.tests if t.problem == "softmax") >= 5, [t.message for t in failed]
    bound = 2 * LIMITS["memory_mb"] + 250
    assert attack.trusted_peak_mb < bound, f"the grader's side peaked at {attack.trusted_peak_mb:.0f} MB (bound {bound})"


HUGE_MESSAGE = '''
import gc, os, socket, struct


def run_softmax(values, temperature=1.0, log=False):
    if len(values) == 1:
        sock = next(o for o in gc.get_objects() if isinstance(o, socket.socket) and o.family == socket.AF_UNIX)
        head = b'{"ok": false, "error": {"type": "ValueError", "message": "'
        tail = b'"}, "_blobs": []}\\n'
        line = b"A" * ((1 << 20) - 2) + b"\\\\n"  # one MiB: a long line, then an escaped newline
        count = 120
        sock.sendall(struct.pack(">Q", len(head) + count * len(line) + len(tail)) + head)
        for _ in range(count):
            sock.sendall(line)
        sock.sendall(tail)
        os._exit(0)  # the forged error was the reply; no honest one may follow
    return [0.5] * len(values)
'''


def test_a_huge_error_message_is_cut_before_it_reaches_reports(attack, tmp_path: Path, sandbox: str) -> None:
    graded = attack(tmp_path, {"tests/adapters.py": attack.kit.adapters(hostile(HUGE_MESSAGE))}, sandbox)
    assert_scores(graded, softmax=0)
    for name in ("session.log", "junit.xml", "results.json", "tests.json", "summary.txt"):
        size = (graded.out / name).stat().st_size
        assert size < 1 << 20, f"{name} is {size} bytes"
    bound = 2 * LIMITS["memory_mb"] + 250
    assert attack.trusted_peak_mb < bound, f"the grader's side peaked at {attack.trusted_peak_mb:.0f} MB (bound {bound})"


DRIP = '''
import gc, socket, struct, time


def run_softmax(values, temperature=1.0, log=False):
    if len(values) == 1:
        sock = next(o for o in gc.get_objects() if isinstance(o, socket.socket) and o.family == socket.AF_UNIX)
        sock.sendall(struct.pack(">Q", 1000))
        for _ in range(1000):  # a byte every 1.5 s: each read is quick, the reply never ends
            sock.sendall(b" ")
            time.sleep(1.5)
    return [0.5] * len(values)
'''


def test_a_reply_that_trickles_in_is_stopped_at_the_call_limit(attack, tmp_path: Path, sandbox: str) -> None:
    graded = attack(tmp_path, {"tests/adapters.py": attack.kit.adapters(hostile(DRIP))}, sandbox,
                    limits={"total_timeout_s": 25})
    assert_scores(graded, softmax=0)
    assert not any("total time limit" in a for a in graded.scored.anomalies), graded.scored.anomalies
    single = next(t for t in graded.scored.tests if t.nodeid.endswith("test_softmax_single_value"))
    assert single.duration < LIMITS["test_timeout_s"] + 5 and "ran past" in single.message, single


# --- one problem that hangs must not cost the others ----------------------------------------------------------------


def test_an_endless_loop_in_one_problem_costs_only_that_problem(attack, tmp_path: Path, sandbox: str) -> None:
    code = hostile("def run_softmax(values, temperature=1.0, log=False):\n    while True:\n        pass\n")
    graded = attack(tmp_path, {"tests/adapters.py": attack.kit.adapters(code)}, sandbox)
    assert_scores(graded, softmax=0)


# --- the host, after all of the above ------------------------------------------------------------------------------------


def test_the_host_is_clean_after_the_resource_attacks() -> None:
    """No process (sandboxed or the grader's) and no container of a finished attack is alive, and
    the host's /tmp has room. Attacks still running on another xdist worker are left alone: an
    orphan is one whose scratch folder is already gone."""
    left = orphans()
    assert not left, left
    assert shutil.disk_usage("/tmp").free > 1 << 30, "the host's /tmp is nearly full"
