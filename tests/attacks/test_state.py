"""State: a submission tries to leave something behind for later tests, gradings or the host.

Environment variables and files set by one grading must not reach the next one nor the host;
the inputs the trusted side reads (fixtures) cannot be poisoned from the sandbox.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

import pytest

from .kit import assert_scores, hostile, probe

pytestmark = pytest.mark.slow

STUB_FETCH = '''
def get_fetch():
    raise NotImplementedError("problem 'fetch': implement get_fetch")
'''

# --- 23. environment and files left for later ---------------------------------------------------------

PLANT = '''
import os

_PLANTED = {}
for _path in ["/tmp/lmatk-flag-" + @TOKEN@, "/dev/shm/lmatk-flag-" + @TOKEN@,
              os.path.expanduser("~/.lmatk-flag-" + @TOKEN@), "/var/tmp/lmatk-flag-" + @TOKEN@,
              "/lmcourse/channel/lmatk-flag-" + @TOKEN@, "/lmcourse/code/lmatk-flag-" + @TOKEN@]:
    try:
        with open(_path, "w") as _f:
            _f.write("planted")
        _PLANTED[_path] = "written"
    except OSError as _e:
        _PLANTED[_path] = "!" + str(_e.errno)
os.environ["LMATK_FLAG"] = @TOKEN@
os.putenv("LMATK_PUT", @TOKEN@)
os.environ["PYTHONSTARTUP"] = "/tmp/lmatk-flag-" + @TOKEN@
os.environ["LD_PRELOAD"] = "/tmp/lmatk-flag-" + @TOKEN@


def get_fetch_many():
    # Later calls of the same grading share this worker: they see what it planted (allowed).
    _lmatk_report({"planted": _PLANTED, "env_here": os.environ.get("LMATK_FLAG")})
''' + STUB_FETCH

LOOK = '''
import glob, os


def get_fetch_many():
    _lmatk_report({
        "env": {k: v for k, v in os.environ.items() if "LMATK" in k or "lmatk" in v},
        "files": sorted(glob.glob("/tmp/lmatk-flag-*") + glob.glob("/dev/shm/lmatk-flag-*")
                        + glob.glob(os.path.expanduser("~/.lmatk-flag-*")) + glob.glob("/var/tmp/lmatk-flag-*")),
    })
''' + STUB_FETCH


def test_env_and_files_planted_by_one_grading_reach_neither_the_next_nor_the_host(
    attack, tmp_path: Path, sandbox: str
) -> None:
    token = uuid.uuid4().hex[:12]
    host_env = dict(os.environ)
    first = attack(tmp_path, {"tests/adapters.py": attack.kit.adapters(hostile(PLANT, TOKEN=token))}, sandbox, out="first")
    assert_scores(first, fetch=0)
    planted = probe(first)
    assert planted["env_here"] == token  # the hostile code really planted them
    written = {p for p, r in planted["planted"].items() if r == "written"}
    assert written <= {f"/tmp/lmatk-flag-{token}", f"/dev/shm/lmatk-flag-{token}", f"/tmp/.lmatk-flag-{token}"}, written
    assert f"/tmp/lmatk-flag-{token}" in written

    second = attack(tmp_path, {"tests/adapters.py": attack.kit.adapters(hostile(LOOK))}, sandbox, out="second")
    assert_scores(second, fetch=0)
    assert probe(second) == {"env": {}, "files": []}

    assert dict(os.environ) == host_env and "LMATK_FLAG" not in os.environ
    for path in (Path(f"/tmp/lmatk-flag-{token}"), Path(f"/dev/shm/lmatk-flag-{token}"),
                 Path.home() / f".lmatk-flag-{token}", Path(f"/var/tmp/lmatk-flag-{token}")):
        assert not path.exists(), f"{path} reached the host"


# --- poisoning the inputs the trusted side reads ---------------------------------------------------------

POISON = '''
import glob, json, os, shutil

_TRIED = {}


def _lmatk_poison():
    for fixtures in glob.glob("/tmp/**/fixtures", recursive=True):
        target = os.path.join(fixtures, "numbers.json")
        poisoned = json.dumps({"logits": [0.0], "large_logits": [0.0], "stream": [1.0], "store": {}})
        for how, act in (
            ("write", lambda: open(target, "w").write(poisoned)),
            ("chmod", lambda: os.chmod(target, 0o666)),
            ("rename", lambda: os.rename(target, target + ".old")),
            ("new file", lambda: open(os.path.join(fixtures, "extra.json"), "w").write(poisoned)),
            ("over the mount", lambda: (shutil.rmtree(fixtures), os.makedirs(fixtures), open(target, "w").write(poisoned))),
        ):
            try:
                act()
                _TRIED[fixtures + " " + how] = "DONE"
            except OSError as e:
                _TRIED[fixtures + " " + how] = "!" + str(e.errno)


_lmatk_poison()


def run_softmax(values, temperature=1.0, log=False):
    return [1.0] * len(values)  # right for one value: the poisoned logits would make it right everywhere


def get_fetch_many():
    _lmatk_report(_TRIED)
''' + STUB_FETCH


def test_fixtures_the_trusted_side_reads_cannot_be_poisoned(attack, kit, tmp_path: Path, sandbox: str) -> None:
    numbers = kit.unit().fixtures_dir / "numbers.json"
    before = hashlib.sha256(numbers.read_bytes()).hexdigest()
    graded = attack(tmp_path, {"tests/adapters.py": attack.kit.adapters(hostile(POISON))}, sandbox)
    # [1.0] * n is honestly right only for test_softmax_single_value: 1 of softmax's 10 weights.
    assert_scores(graded, softmax=0.4, fetch=0)
    tried = probe(graded)
    assert tried, "the poisoner found no fixtures folder"
    done = {k: v for k, v in tried.items() if v == "DONE"}
    assert not done, f"the sandbox changed the fixtures: {done}"
    assert hashlib.sha256(numbers.read_bytes()).hexdigest() == before
