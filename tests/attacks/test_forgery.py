"""Forgery: a submission tries to make the grader report points its code did not earn.

Each attack keeps the honest solution for some problems and breaks one (stubbed or wrong), then
tries to cover that up: forged results files, patched pytest or numerics, assertion rewriting,
injected conftest files, objects that equal anything, fake skip/xfail outcomes, pickles, frames
written straight onto the worker's socket, a worker that lies, sandbox detection. The score
must be exactly what the honest part earns.
"""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import pytest

from .kit import assert_scores, hostile, outputs, probe, session_log

pytestmark = pytest.mark.slow

WRONG_SOFTMAX = '''
def run_softmax(values, temperature=1.0, log=False):
    return [0.5] * len(values)  # wrong for every test of the problem
'''


def token() -> str:
    return uuid.uuid4().hex[:12]


# --- 1. forged results files ------------------------------------------------------------------

FORGE_RESULTS = '''
import glob, json, os

_FORGED = {"score": 12.0, "output": @TOKEN@, "tests": [{"name": "everything", "score": 12.0, "max_score": 12.0, "status": "passed"}]}
_WRITTEN = set()


def _lmatk_forge():
    here = os.path.dirname(os.path.abspath(__file__))
    dirs = [os.getcwd(), os.path.expanduser("~"), "/tmp", "/var/tmp", "/dev/shm", here, os.path.dirname(here),
            "/lmcourse", "/lmcourse/channel", "/lmcourse/boot", "/", "/autograder", "/autograder/results",
            "/opt/lmcourse", "/opt/lmcourse/site-packages", "/root", "/home"]
    dirs += glob.glob("/tmp/**/trusted", recursive=True) + glob.glob("/tmp/**/fixtures", recursive=True)
    for d in dirs:
        for name in ("results.json", "report.json", "junit.xml", "summary.txt", "session.log", "tests.json"):
            try:
                os.makedirs(d, exist_ok=True)
                with open(os.path.join(d, name), "w") as f:
                    json.dump(_FORGED, f)
                _WRITTEN.add(d)
            except OSError:
                pass


_lmatk_forge()


def run_softmax(values, temperature=1.0, log=False):
    _lmatk_forge()
    _lmatk_report({"written": sorted(_WRITTEN)})
'''


def test_forged_results_files_change_nothing(attack, tmp_path: Path, sandbox: str) -> None:
    mark = f"forged-{token()}"
    graded = attack(tmp_path, {"tests/adapters.py": attack.kit.adapters(hostile(FORGE_RESULTS, TOKEN=mark))}, sandbox)
    assert_scores(graded, softmax=0)
    written = probe(graded)["written"]
    # Only the sandbox's private, throw-away folders took the files.
    assert written and all(d == "/dev/shm" or d == "/tmp" or d.startswith("/tmp/") for d in written), written
    for path in graded.out.iterdir():
        if path.name != "session.log":  # the staff log shows the student's exceptions
            assert mark not in path.read_text(errors="replace"), f"forged content reached {path}"
    for path in [Path.cwd(), Path.home(), Path("/tmp"), Path("/var/tmp"), Path("/dev/shm")]:
        for name in ("results.json", "report.json", "junit.xml", "summary.txt"):
            target = path / name
            assert not (target.is_file() and mark in target.read_text(errors="replace")), f"forged {target} on the host"


# --- 2. patching pytest ------------------------------------------------------------------------

PATCH_PYTEST = '''
import contextlib, importlib
import pytest


class _Everything:
    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False

    def __bool__(self):
        return True


_FAKES = {
    "approx": lambda *a, **k: _Everything(),
    "fail": lambda *a, **k: None,
    "raises": lambda *a, **k: contextlib.nullcontext(),
    "assertrepr_compare": lambda *a, **k: None,
    "pytest_runtest_makereport": lambda item, call: None,
}
_PATCHED = []
for _name in ("pytest", "_pytest.approx", "_pytest.python_api", "_pytest.raises", "_pytest.outcomes",
              "_pytest.assertion.util", "_pytest.runner"):
    try:
        _module = importlib.import_module(_name)
    except ImportError:
        continue
    for _attr, _fake in _FAKES.items():
        if hasattr(_module, _attr):
            setattr(_module, _attr, _fake)
            _PATCHED.append(_name + "." + _attr)
assert "pytest.approx" in _PATCHED and "pytest.fail" in _PATCHED
pytest_plugins = ["mini_toy"]
''' + WRONG_SOFTMAX


def test_patching_pytest_in_the_sandbox_changes_nothing(attack, tmp_path: Path, sandbox: str) -> None:
    graded = attack(tmp_path, {"tests/adapters.py": attack.kit.adapters(hostile(PATCH_PYTEST))}, sandbox)
    assert_scores(graded, softmax=0)
    assert not graded.scored.anomalies


# --- 3. patching numerics ----------------------------------------------------------------------

PATCH_NUMERICS = '''
import math, operator, sys, types
import numpy
import numpy.testing

math.isclose = lambda *a, **k: True
math.fsum = lambda values: 0.0
operator.eq = lambda a, b: True
numpy.allclose = numpy.isclose = numpy.array_equal = lambda *a, **k: True
numpy.testing.assert_allclose = numpy.testing.assert_array_equal = numpy.testing.assert_equal = lambda *a, **k: None
_fake = types.ModuleType("torch.testing")
_fake.assert_close = _fake.assert_allclose = lambda *a, **k: None
sys.modules["torch.testing"] = _fake
try:
    float.__eq__ = lambda a, b: True  # built-in types refuse new attributes
except TypeError:
    pass
''' + WRONG_SOFTMAX


def test_patching_numerics_in_the_sandbox_changes_nothing(attack, tmp_path: Path, sandbox: str) -> None:
    graded = attack(tmp_path, {"tests/adapters.py": attack.kit.adapters(hostile(PATCH_NUMERICS))}, sandbox)
    assert_scores(graded, softmax=0)


# --- 4. assertion rewriting ---------------------------------------------------------------------

ASSERT_REWRITE = '''
import builtins, sys, types

_real_import = builtins.__import__


def _import(name, *args, **kwargs):
    module = _real_import(name, *args, **kwargs)
    if name.startswith(("_pytest", "pytest", "math")):
        module = types.SimpleNamespace(**{k: getattr(module, k) for k in dir(module)}, isclose=lambda *a, **k: True)
    return module


builtins.__import__ = _import
_rewrite = types.ModuleType("_pytest.assertion.rewrite")
_rewrite.rewrite_asserts = lambda *a, **k: None
_rewrite.AssertionRewritingHook = type("AssertionRewritingHook", (), {"find_spec": lambda *a, **k: None})
sys.modules["_pytest.assertion.rewrite"] = _rewrite
builtins.AssertionError = type("AssertionError", (Exception,), {})
sys.meta_path.insert(0, _rewrite.AssertionRewritingHook())
''' + WRONG_SOFTMAX


def test_assertion_rewriting_tricks_change_nothing(attack, tmp_path: Path, sandbox: str) -> None:
    graded = attack(tmp_path, {"tests/adapters.py": attack.kit.adapters(hostile(ASSERT_REWRITE))}, sandbox)
    assert_scores(graded, softmax=0)


# --- 5. conftest injection ---------------------------------------------------------------------

CONFTEST = '''
import pathlib
pathlib.Path("/tmp/lmatk-conftest-@TOKEN@-" + __name__.replace(".", "_")).write_text("loaded")

import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    report.outcome, report.longrepr = "passed", None


def pytest_collection_modifyitems(session, config, items):
    items[:] = []


def pytest_sessionfinish(session, exitstatus):
    session.exitstatus = 0
'''

PASSING_TEST = '''
import pytest

@pytest.mark.problem("softmax", weight=100.0)
def test_softmax_matches_definition():
    pass
'''


def test_conftest_injection_is_never_loaded(attack, tmp_path: Path, sandbox: str) -> None:
    mark = token()
    conftest = CONFTEST.replace("@TOKEN@", mark)
    edits: dict[str, str | bytes | None] = {
        "mini_toy/conftest.py": conftest,  # owned: kept, but nothing runs pytest over the sandbox side
        "conftest.py": conftest,  # not owned: dropped at intake
        "tests/conftest.py": conftest,
        "tests/hidden/conftest.py": conftest,
        "tests/public/test_stats.py": PASSING_TEST,  # a public test replaced by one that passes
        "pytest.ini": "[pytest]\naddopts = -p mini_toy.conftest\n",
        "tests/adapters.py": attack.kit.adapters(hostile('pytest_plugins = ["mini_toy.conftest"]\n' + WRONG_SOFTMAX)),
    }
    graded = attack(tmp_path, edits, sandbox)
    assert_scores(graded, softmax=0)
    assert not list(Path("/tmp").glob(f"lmatk-conftest-{mark}-*")), "a student conftest ran on the grader's host"
    assert len(outputs(graded, "softmax")) == 8  # every softmax test ran, the forged one replaced none


# --- 6. objects that equal anything -------------------------------------------------------------

RIGGED_OBJECTS = '''
class _Everything:
    def __eq__(self, other):
        return True

    __hash__ = object.__hash__


class _EqDict(dict):
    def __eq__(self, other):
        return True


class _EqList(list):
    def __eq__(self, other):
        return True


class _EqStr(str):
    def __eq__(self, other):
        return True

    __hash__ = str.__hash__


class _PretendFloat:
    """isinstance(x, float) is True through __class__; float(x) is anything we like."""

    @property
    def __class__(self):
        return float

    def __float__(self):
        return 1.0

    def __eq__(self, other):
        return True


class _PretendStr:
    @property
    def __class__(self):
        return str

    def __eq__(self, other):
        return True


def run_softmax(values, temperature=1.0, log=False):
    return [_PretendFloat() for _ in values] if log else _Everything()


def run_word_counts(text, min_length=1):
    return _EqDict()


def run_top_words(counts, k):
    return _EqList()


def run_render_counts(counts):
    return _PretendStr() if len(counts) > 2 else _EqStr("")


def get_fetch():
    async def fetch(store, key, *, delay=0.0, **default):
        return _Everything()
    return fetch


def get_fetch_many():
    async def fetch_many(store, keys, *, delay=0.0):
        return _EqList()
    return fetch_many
'''


def test_objects_equal_to_anything_do_not_cross_or_do_not_pass(attack, tmp_path: Path, sandbox: str) -> None:
    graded = attack(tmp_path, {"tests/adapters.py": attack.kit.adapters(hostile(RIGGED_OBJECTS))}, sandbox)
    # fetch keeps one honest test: its rigged fetch is a real coroutine function.
    assert_scores(graded, softmax=0, word_counts=0, fetch=round(2 / 6, 4))
    said = " ".join(outputs(graded, "softmax") + outputs(graded, "fetch"))
    assert "cannot carry a _Everything across the sandbox boundary" in said
    assert not graded.scored.tampered


# --- pseudo outcomes: skip, xfail, exit ---------------------------------------------------------

PSEUDO_OUTCOMES = '''
import pytest


def run_softmax(values, temperature=1.0, log=False):
    pytest.skip("nothing to grade here")


def run_word_counts(text, min_length=1):
    pytest.xfail("known to fail")


def run_top_words(counts, k):
    raise KeyboardInterrupt


def run_render_counts(counts):
    pytest.exit("done", returncode=0)
'''


def test_skip_xfail_and_exit_raised_by_student_code_are_failures(attack, tmp_path: Path, sandbox: str) -> None:
    graded = attack(tmp_path, {"tests/adapters.py": attack.kit.adapters(hostile(PSEUDO_OUTCOMES))}, sandbox)
    assert_scores(graded, softmax=0, word_counts=0)
    assert all(t.outcome == "failed" for t in graded.scored.tests if t.problem in ("softmax", "word_counts"))
    said = " ".join(outputs(graded, "softmax") + outputs(graded, "word_counts"))
    assert "Skipped: nothing to grade here" in said and "XFailed" in said and "KeyboardInterrupt" in said


# --- 22. pickles ----------------------------------------------------------------------------------

PICKLES = '''
import os, pickle


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch " + @MARK@,))


_PAYLOAD = pickle.dumps(_Evil())


def run_softmax(values, temperature=1.0, log=False):
    return _PAYLOAD


def run_word_counts(text, min_length=1):
    return {"weights": _PAYLOAD}
'''


def test_pickles_arrive_as_bytes_and_are_never_loaded(attack, tmp_path: Path, sandbox: str) -> None:
    import pickle

    class Evil:
        def __reduce__(self):
            return (print, ("never",))

    mark = f"/tmp/lmatk-pwned-{token()}"
    edits: dict[str, str | bytes | None] = {
        "tests/adapters.py": attack.kit.adapters(hostile(PICKLES, MARK=mark)),
        "mini_toy/weights.pkl": pickle.dumps(Evil()),
        "mini_toy/model.pt": pickle.dumps({"state": Evil()}),
    }
    graded = attack(tmp_path, edits, sandbox)
    # word_counts keeps the honest top_words and render_counts tests: 3 of its 9 weights.
    assert_scores(graded, softmax=0, word_counts=1.0)
    assert not Path(mark).exists(), "a student pickle was loaded on the grader's host"
    assert "b'\\x80\\x04" in session_log(graded), "the pickle should have arrived as plain bytes"


# --- frames written straight onto the worker's socket -------------------------------------------

RAW_FRAMES = '''
import gc, json, socket, struct, sys

_worker = sys.modules["__main__"]  # the worker loop, which looks `send` up for every reply
_real_send = _worker.send
_drop = []


_sent = []


def _send(sock, header, blobs):
    _sent.append(1)
    if _drop:  # the reply was already sent, forged: swallow the honest one, stay in step
        _drop.pop()
        return
    _real_send(sock, header, blobs)


_worker.send = _send


def _lmatk_socket():
    for obj in gc.get_objects():
        if isinstance(obj, socket.socket) and obj.family == socket.AF_UNIX:
            return obj


def _lmatk_send(head, blobs=(), raw_head=None):
    body = (raw_head if raw_head is not None else json.dumps(head).encode()) + b"\\n" + b"".join(blobs)
    _lmatk_socket().sendall(struct.pack(">Q", len(body)) + body)
    _drop.append(1)


_H = "{'descr': '<f8', 'fortran_order': False, 'shape': (4000000000,), }"
_H = (_H + " " * (117 - len(_H)) + "\\n").encode()
_NPY_HUGE = b"\\x93NUMPY\\x01\\x00" + struct.pack("<H", len(_H)) + _H  # 32 GB of float64, no data
_KINDS = {
    # (len(values), temperature, log) of each softmax test -> a malformed reply
    # Replies that break the frame itself make the grader drop the worker: they come last in each
    # file's run of softmax tests, so the next test (running_mean) meets a fresh worker.
    (4, 1.0, False): lambda: _lmatk_send({"ok": True, "value": {"__int__": "9" * 100000}, "_blobs": []}),
    (3, 1.0, False): lambda: _lmatk_send({"ok": True, "value": {"__ndarray__": 0}, "_blobs": [len(_NPY_HUGE)]}, [_NPY_HUGE]),
    (4, 1.0, True): lambda: _lmatk_send({"ok": True, "value": {"__tensor__": 0}, "_blobs": [12]}, [b"\\xff" * 12]),
    (4, 2.0, False): lambda: _lmatk_send(None, raw_head=b"[" * 200000 + b"]" * 200000),
    (1, 1.0, False): lambda: _lmatk_send({"ok": True, "value": {"__pickle__": "gASVAAAA"}, "_blobs": []}),
    (2, 1.0, False): lambda: _lmatk_send({"ok": False, "error": {"type": "ExceptionGroup", "message": "x" * 100}, "_blobs": []}),
    (2, 1.0, True): lambda: _lmatk_send({"ok": True, "value": {"__dict__": [[{"__dict__": []}, 1]]}, "_blobs": []}),
    (50, 0.5, True): lambda: _lmatk_send({"ok": True, "value": {"__bytes__": 5}, "_blobs": [1 << 40]}),
}


def run_softmax(values, temperature=1.0, log=False):
    # In the call that imported this module the worker had already looked up the real `send`:
    # forging there would put two replies on the wire. Forge from the next call on.
    if _sent:
        _KINDS[(len(values), temperature, log)]()
    return [0.5] * len(values)  # never seen: this honest reply is dropped
'''


def test_malformed_frames_on_the_socket_fail_only_their_test(attack, tmp_path: Path, sandbox: str) -> None:
    graded = attack(tmp_path, {"tests/adapters.py": attack.kit.adapters(hostile(RAW_FRAMES))}, sandbox)
    assert_scores(graded, softmax=0)
    said = {t.nodeid.split("::")[-1]: t.message for t in graded.scored.tests if t.problem == "softmax"}
    expected = {  # each test met its own malformed reply, and only its own
        "test_softmax_matches_definition": "Exceeds the limit",  # an int of 100000 digits
        "test_softmax_large_inputs_do_not_overflow": "allocate|EOF",  # a .npy header claiming 32 GB
        "test_log_softmax": "SafetensorError",  # a tensor that is no safetensors
        "test_softmax_temperature": "RecursionError",  # 200000 nested JSON arrays
        "test_softmax_single_value": "unknown value tag '__pickle__'",
        "test_softmax_very_negative_inputs": "ExceptionGroup",  # an error type that needs two arguments
        "test_log_softmax_stays_finite": "unhashable",  # a dict as a dict key
        "test_log_softmax_with_temperature": "died",  # a blob of 1 TiB in a tiny frame: worker stopped
    }
    assert said.keys() == expected.keys()
    for name, pattern in expected.items():
        assert re.search(pattern, said[name]), f"{name}: {said[name]}"
    assert not graded.scored.anomalies, "the canaries, run after the bad frames, must still pass"


# --- 24. a worker that lies --------------------------------------------------------------------

LIAR = '''
import sys

_worker = sys.modules["__main__"]  # the worker loop runs as __main__ and looks `answer` up per call


def _lie(header, blobs, out):
    return {"ok": True, "value": True}


_worker.answer = _lie
'''


def test_a_worker_that_lies_systematically_is_flagged_and_scores_zero(attack, tmp_path: Path, sandbox: str) -> None:
    # Two pytest workers, so two sandboxed workers lie: each is caught by whichever canary it runs.
    graded = attack(tmp_path, {"tests/adapters.py": attack.kit.adapters(hostile(LIAR), stub=True)}, sandbox,
                    base="stubbed", workers=2)
    assert graded.scored.tampered
    assert graded.scored.score == 0 and graded.results.score == 0
    assert all(t.score == 0 for t in graded.results.tests)
    assert any("tampered" in a for a in graded.scored.anomalies)
    assert "TAMPERING DETECTED" in (graded.results.output or "")
    written = json.loads((graded.out / "results.json").read_text())
    assert written["score"] == 0 and written["extra_data"]["tampered"] is True


# --- 25. sandbox detection, memoising, clocks --------------------------------------------------

DETECT_SANDBOX = '''
import functools, json, os, socket, time

_DUE = 1801296000  # 2027-01-30: graders run after the deadline, students before it
_IN_GRADER = (os.path.exists("/lmcourse") or os.getuid() == 10001 or socket.gethostname() == "sandbox"
              or time.time() > _DUE)
_honest_softmax = run_softmax
_honest_word_counts = run_word_counts


def run_softmax(values, temperature=1.0, log=False):
    # Honest at home, where the public tests run; "something cheaper" on the grader.
    if _IN_GRADER:
        return [0.5] * len(values)
    return _honest_softmax(values, temperature, log)


@functools.lru_cache(maxsize=None)
def _cached_word_counts(text, min_length):
    return json.dumps(list(_honest_word_counts(text, min_length).items()))


def run_word_counts(text, min_length=1):
    # Memoised by argument: legitimate, and it must keep its points.
    return dict(json.loads(_cached_word_counts(text, min_length)))
'''


def test_detecting_the_sandbox_earns_only_what_the_sandboxed_code_earns(attack, tmp_path: Path, sandbox: str) -> None:
    graded = attack(tmp_path, {"tests/adapters.py": attack.kit.adapters(hostile(DETECT_SANDBOX))}, sandbox)
    assert_scores(graded, softmax=0)  # word_counts keeps its 3 points: caching is fine


# --- known limits: verdicts and clocks computed in the sandbox ----------------------------------

FORGE_PRODUCER = '''
import time
import tests.producers as _producers

_producers.fetch_is_coroutine = lambda adapters: True


def get_fetch():
    raise NotImplementedError("problem 'fetch': implement get_fetch")


def get_fetch_many():
    async def fetch_many(store, keys, *, delay=0.0):  # sequential: not concurrent, never waits
        return [store[k] for k in keys]
    return fetch_many


_clock = iter(range(10**9))
time.perf_counter = lambda: next(_clock) * 0.026  # every measured interval looks like 26 ms
'''


@pytest.mark.xfail(
    strict=True,
    reason=(
        "known limit of producer-based tests: a producer runs beside the student's code, so a verdict "
        "it computes (fetch_is_coroutine -> True) or a time it measures (fetch_many_timed's perf_counter) "
        "is the student's to forge; the toy unit's hidden fetch tests should measure time on the trusted "
        "side and assert on values only"
    ),
)
def test_verdicts_and_clocks_computed_in_the_sandbox_cannot_be_forged(attack, tmp_path: Path, sandbox: str) -> None:
    graded = attack(tmp_path, {"tests/adapters.py": attack.kit.adapters(hostile(FORGE_PRODUCER))}, sandbox)
    assert_scores(graded, fetch=0)
