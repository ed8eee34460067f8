"""The slurm executor against a real Slurm cluster: real sbatch, real jobs, a real slurmctld restart.

Needs slurmctld and slurmd running on this host (``scripts/install-slurm.sh``, run by ``make
services``); without them these tests fail, naming that script. Jobs ask for one CPU each.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from lmcourse.grader.config import CourseConfig, SlurmConfig
from lmcourse.grader.course import Course, Unit
from lmcourse.grader.errors import ConfigError, LmcourseError
from lmcourse.grader.grading.batch import InlineExecutor, grade_batch
from lmcourse.grader.grading.journal import Journal
from lmcourse.grader.grading.slurm_batch import SlurmExecutor
from lmcourse.grader.slurm import Slurm, SlurmError

from ..helpers import REPO
from ..slurm_cluster import running_cluster
from .test_batch import make_submissions

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

# A controller in its own process, so that a test can signal it or watch it survive slurmctld.
CONTROLLER = """
import sys
from pathlib import Path
from lmcourse.grader.course import Course
from lmcourse.grader.errors import LmcourseError
from lmcourse.grader.grading.batch import grade_batch
from lmcourse.grader.grading.slurm_batch import SlurmExecutor
course, subs, out = map(Path, sys.argv[1:4])
try:
    grade_batch(Course.load(course).unit("toy"), subs, out, sandbox="local", executor=SlurmExecutor(poll_s=0.5))
except LmcourseError as exc:
    print(exc, file=sys.stderr)
    sys.exit(exc.exit_code)
"""
# Each adapter call sleeps first: a submission that grades slowly but never trips a per-call limit.
SLOW = """
import time as _time
def _slowly(f):
    def call(*args, **kwargs):
        _time.sleep({seconds})
        return f(*args, **kwargs)
    return call
globals().update({{k: _slowly(v) for k, v in dict(globals()).items() if k.startswith("run_")}})
"""
# The trusted side receives a 300 MB answer: more than the job's 400 MiB once decoded.
HOG = "\ndef run_render_counts(counts):\n    return 'x' * (300 * 2**20)\n"


@pytest.fixture(scope="session")
def slurm() -> Slurm:
    return running_cluster(patience_s=300)


@pytest.fixture
def slurm_course(course_dir: Path) -> Path:
    """The mini course with a ``slurm:`` section: one CPU, 400 MiB and one minute per job."""
    config = yaml.safe_load((course_dir / "course.yaml").read_text())
    config["slurm"] = {"cpus": 1, "mem_mb": 400, "time_limit": "1"}
    (course_dir / "course.yaml").write_text(yaml.safe_dump(config))
    unit_yaml = course_dir / "assignments/toy/unit.yaml"
    # Roomy sandboxes (the memory hog must get its answer out), short per-test limits.
    text = unit_yaml.read_text().replace("memory_mb: 512", "memory_mb: 1024")
    unit_yaml.write_text(text.replace("test_timeout_s: 10", "test_timeout_s: 20").replace("total_timeout_s: 120", "total_timeout_s: 300"))
    return course_dir


def _unit(course: Path) -> Unit:
    return Course.load(course).unit("toy")


def _results(out: Path, sid: str) -> dict[str, str]:
    """Each test's outcome in a graded submission's folder."""
    return {t["nodeid"]: t["outcome"] for t in json.loads((out / sid / "tests.json").read_text())}


def _gradings(out: Path) -> dict[str, int]:
    """How many jobs started grading each submission (from the job logs)."""
    counts: dict[str, int] = {}
    for log in (out / ".slurm").glob("*.log"):
        for sid in re.findall(r"^lmcourse: grading (\S+) in job", log.read_text(), re.MULTILINE):
            counts[sid] = counts.get(sid, 0) + 1
    return counts


def _journal(out: Path) -> dict[str, tuple]:
    if not (out / "journal.sqlite").exists():
        return {}
    try:
        with sqlite3.connect(out / "journal.sqlite", timeout=1) as db:
            rows = db.execute("SELECT id, state, attempts, completions, score, job_id, error FROM submissions")
            return {r[0]: r[1:] for r in rows}
    except sqlite3.OperationalError:
        return {}


def _wait_for(condition, timeout_s: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout_s:g} s waiting for {what}"
        time.sleep(0.2)


def _controller(course: Path, subs: Path, out: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", CONTROLLER, str(course), str(subs), str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_slurm_scores_equal_inline_scores(slurm: Slurm, slurm_course: Path, mini_trees: dict[str, Path], tmp_path: Path) -> None:
    make_submissions(mini_trees, tmp_path / "subs", ["ref", "stub", "half", "crash"])
    unit = _unit(slurm_course)
    inline = grade_batch(unit, tmp_path / "subs", tmp_path / "inline", sandbox="local", executor=InlineExecutor(2))
    graded = grade_batch(unit, tmp_path / "subs", tmp_path / "slurm", sandbox="local", executor=SlurmExecutor(poll_s=0.5))
    assert [(r.id, r.state, r.score, r.possible, r.error) for r in graded] == [(r.id, r.state, r.score, r.possible, r.error) for r in inline]
    assert {r.id: r.score for r in graded} == {"s00-ref": 12.0, "s01-stub": 0.0, "s02-half": inline[2].score, "s03-crash": 0.0}
    for r in graded:
        assert r.job_id and r.job_name and (r.attempts, r.completions) == (1, 1)
        assert _results(tmp_path / "slurm", r.id) == _results(tmp_path / "inline", r.id)
        assert not (tmp_path / "slurm" / f"{r.id}.partial").exists()
    assert _gradings(tmp_path / "slurm") == {r.id: 1 for r in graded}
    # The same single-submission files as inline.
    assert sorted(p.name for p in (tmp_path / "slurm/s00-ref").iterdir()) == sorted(p.name for p in (tmp_path / "inline/s00-ref").iterdir())


def test_jobs_over_their_memory_or_time_limit_fail_alone(slurm: Slurm, slurm_course: Path, mini_trees: dict[str, Path], tmp_path: Path) -> None:
    make_submissions(mini_trees, tmp_path / "subs", ["ref", "ref", "ref", "stub"])
    (tmp_path / "subs/s01-ref").rename(tmp_path / "subs/s01-hog")
    (tmp_path / "subs/s02-ref").rename(tmp_path / "subs/s02-slow")
    with (tmp_path / "subs/s01-hog/tests/adapters.py").open("a") as f:
        f.write(HOG)
    with (tmp_path / "subs/s02-slow/tests/adapters.py").open("a") as f:
        f.write(SLOW.format(seconds=15))  # at least 6 calls x 15 s: over the one-minute limit
    rows = {r.id: r for r in grade_batch(_unit(slurm_course), tmp_path / "subs", tmp_path / "out", sandbox="local",
                                        executor=SlurmExecutor(poll_s=1))}
    hog, slow = rows["s01-hog"], rows["s02-slow"]
    assert hog.state == "error" and f"Slurm job {hog.job_id} ended OUT_OF_MEMORY" in (hog.error or ""), hog
    assert "400M" in (hog.error or "")
    assert slow.state == "error" and f"Slurm job {slow.job_id} ended TIMEOUT" in (slow.error or ""), slow
    assert "time limit of 1:00" in (slow.error or "")
    assert (rows["s00-ref"].state, rows["s00-ref"].score, rows["s03-stub"].state, rows["s03-stub"].score) == ("done", 12.0, "done", 0.0)
    # Nothing of the failed jobs was published as a result.
    assert not (tmp_path / "out/s01-hog").exists() and not (tmp_path / "out/s02-slow").exists()
    assert all(r.completions == 1 for r in rows.values())


def test_slurmctld_killed_and_restarted_mid_batch(slurm: Slurm, slurm_course: Path, mini_trees: dict[str, Path], tmp_path: Path) -> None:
    """slurmctld stopped (SIGTERM, as an admin or a crash-restart supervisor does) while jobs run and
    finish, then started again: the controller waits it out and nothing is graded twice or lost.

    (SIGKILL can lose slurmctld's last seconds of state; Slurm then drains the node on a duplicate
    job id and an admin must resume it: see docs/slurm.md.)
    """
    expected = make_submissions(mini_trees, tmp_path / "subs", ["ref", "stub", "ref", "stub", "ref", "stub"])
    out = tmp_path / "out"
    controller = _controller(slurm_course, tmp_path / "subs", out)
    try:
        # The moment a first job leaves its outcome: most likely before the controller recorded it.
        _wait_for(lambda: any((out / ".slurm").glob("*.json")), 180, "a first outcome")
        pid = int(Path("/run/slurmctld.pid").read_text())
        os.kill(pid, signal.SIGTERM)
        _wait_for(lambda: not Path(f"/proc/{pid}").exists(), 10, "slurmctld to die")
        assert subprocess.run(["squeue"], capture_output=True, timeout=60).returncode != 0, "slurmctld still answers"
        time.sleep(5)  # the controller keeps polling a dead slurmctld meanwhile
        assert controller.poll() is None, controller.communicate()[0]
        done_while_down = sum(r[0] == "done" for r in _journal(out).values())
        assert done_while_down < len(expected), "killed too late to prove anything"
        restart = subprocess.run(["bash", str(REPO / "scripts/install-slurm.sh")], capture_output=True, text=True, timeout=120)
        assert restart.returncode == 0, restart.stdout + restart.stderr
        output, _ = controller.communicate(timeout=300)
    finally:
        if controller.poll() is None:
            controller.kill()
    assert controller.returncode == 0, output
    rows = _journal(out)
    assert set(rows) == set(expected)
    for sid, score in expected.items():
        state, attempts, completions, got, job_id, error = rows[sid]
        assert (state, attempts, completions, got) == ("done", 1, 1, score), (sid, rows[sid])
    assert _gradings(out) == {sid: 1 for sid in expected}


def test_interrupting_the_batch_cancels_its_jobs(slurm: Slurm, slurm_course: Path, mini_trees: dict[str, Path], tmp_path: Path) -> None:
    make_submissions(mini_trees, tmp_path / "subs", ["ref", "ref", "ref"])
    for sub in (tmp_path / "subs").iterdir():
        with (sub / "tests/adapters.py").open("a") as f:
            f.write(SLOW.format(seconds=10))
    out = tmp_path / "out"
    controller = _controller(slurm_course, tmp_path / "subs", out)
    try:
        _wait_for(lambda: len([r for r in _journal(out).values() if r[4]]) == 3, 120, "three submitted jobs")
        jobs = [r[4] for r in _journal(out).values()]
        _wait_for(lambda: "RUNNING" in {s.state for s in slurm.states(jobs).values()}, 120, "a running job")
        controller.send_signal(signal.SIGTERM)
        output, _ = controller.communicate(timeout=120)
    finally:
        if controller.poll() is None:
            controller.kill()
    assert controller.returncode == 130, output
    assert "cancelled 3 Slurm jobs" in output
    states = slurm.states(jobs)
    assert {states[j].state for j in jobs} == {"CANCELLED"}, states
    # Back to pending, with no job: a rerun grades them afresh.
    assert {r[:2] + (r[4],) for r in _journal(out).values()} == {("pending", 1, None)}
    assert not list(out.glob("s0*-ref"))


def test_rerun_follows_queued_jobs_and_skips_what_is_done(slurm: Slurm, slurm_course: Path, mini_trees: dict[str, Path], tmp_path: Path) -> None:
    make_submissions(mini_trees, tmp_path / "subs", ["ref", "stub"])
    unit, subs, out = _unit(slurm_course), tmp_path / "subs", tmp_path / "out"
    # Without watching: submit and return, the jobs queued or running.
    first = grade_batch(unit, subs, out, sandbox="local", executor=SlurmExecutor(watch=False))
    jobs = {r.id: r.job_id for r in first}
    assert all(jobs.values()) and {r.state for r in first} <= {"running", "done"}
    # Again at once: the same jobs are followed, none submitted twice.
    again = grade_batch(unit, subs, out, sandbox="local", executor=SlurmExecutor(watch=False))
    assert {r.id: r.job_id for r in again} == jobs and all(r.attempts == 1 for r in again)
    finished = grade_batch(unit, subs, out, sandbox="local", executor=SlurmExecutor(poll_s=0.5))
    assert [(r.state, r.score, r.attempts, r.completions, r.job_id) for r in finished] == [
        ("done", 12.0, 1, 1, jobs["s00-ref"]), ("done", 0.0, 1, 1, jobs["s01-stub"])]
    scripts = sorted((out / ".slurm").glob("*.sbatch"))
    # Everything done: nothing is submitted, and the inline executor agrees.
    assert grade_batch(unit, subs, out, sandbox="local", executor=SlurmExecutor(poll_s=0.5)) == finished
    assert grade_batch(unit, subs, out, sandbox="local", executor=InlineExecutor(1)) == finished
    assert sorted((out / ".slurm").glob("*.sbatch")) == scripts


def test_journal_gains_job_columns_without_losing_rows(tmp_path: Path) -> None:
    """A journal written before the slurm executor opens with job columns and keeps its rows."""
    path = tmp_path / "journal.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE submissions (id TEXT PRIMARY KEY, path TEXT NOT NULL, submitted TEXT, state TEXT NOT NULL "
                   "DEFAULT 'pending', attempts INTEGER NOT NULL DEFAULT 0, completions INTEGER NOT NULL DEFAULT 0, "
                   "score REAL, possible REAL, days_late INTEGER, error TEXT, seconds REAL, updated TEXT)")
        db.execute("INSERT INTO submissions (id, path, state, score) VALUES ('alice', 'a.zip', 'done', 7)")
        db.execute("INSERT INTO submissions (id, path, state) VALUES ('bob', 'b.zip', 'running')")
    journal = Journal(path)
    try:
        assert journal.recover() == 1  # an inline run's leftover goes back to pending
        alice = journal.get("alice")
        assert (alice.state, alice.score, alice.job_name, alice.job_id) == ("done", 7.0, None, None)
        journal.start("bob", job_name="lmc-bob-1")
        journal.submitted("bob", "42")
        assert journal.recover() == 0 and [r.id for r in journal.in_jobs()] == ["bob"]
    finally:
        journal.close()


def test_slurm_config_is_strict(tmp_path: Path) -> None:
    base = {"name": "c", "term": "t", "package_prefix": "p", "units": {}}
    config = CourseConfig.model_validate({**base, "slurm": {"partition": "gpu", "gpus": 2, "gpu_type": "a100"}})
    assert config.slurm == SlurmConfig(partition="gpu", gpus=2, gpu_type="a100")
    from lmcourse.grader.config import load_yaml_model

    for bad, message in [({"partiton": "gpu"}, "unknown field 'slurm.partiton'"),
                         ({"time_limit": "an hour"}, "field 'slurm.time_limit'"),
                         ({"extra_args": ["qos=x"]}, "one option starting with '-'")]:
        (tmp_path / "course.yaml").write_text(yaml.safe_dump({**base, "slurm": bad}))
        with pytest.raises(ConfigError, match=re.escape(message)):
            load_yaml_model(tmp_path / "course.yaml", CourseConfig)


def test_missing_slurm_is_one_sentence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without Slurm's commands on PATH the check says what to do, naming the install script."""
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SlurmError, match="not on PATH.*scripts/install-slurm.sh"):
        Slurm().check()


def test_a_refused_job_is_one_sentence_and_its_submission_stays_pending(slurm: Slurm, slurm_course: Path, mini_trees: dict[str, Path], tmp_path: Path) -> None:
    config = yaml.safe_load((slurm_course / "course.yaml").read_text())
    config["slurm"]["partition"] = "no-such-partition"
    (slurm_course / "course.yaml").write_text(yaml.safe_dump(config))
    make_submissions(mini_trees, tmp_path / "subs", ["ref"])
    with pytest.raises(SlurmError, match=r"^sbatch refused \S+\.sbatch: .*[Ii]nvalid partition"):
        grade_batch(_unit(slurm_course), tmp_path / "subs", tmp_path / "out", sandbox="local", executor=SlurmExecutor())
    assert {r[:2] + (r[4],) for r in _journal(tmp_path / "out").values()} == {("pending", 1, None)}


def test_a_gpu_unit_asks_for_gres(slurm: Slurm, slurm_course: Path, mini_trees: dict[str, Path], tmp_path: Path) -> None:
    unit_yaml = slurm_course / "assignments/toy/unit.yaml"
    unit_yaml.write_text(unit_yaml.read_text().replace("memory_mb: 1024", "memory_mb: 1024\n  gpu: true"))
    make_submissions(mini_trees, tmp_path / "subs", ["ref"])
    with pytest.raises(LmcourseError, match="needs a GPU but course.yaml's slurm.gpus is 0"):
        grade_batch(_unit(slurm_course), tmp_path / "subs", tmp_path / "a", sandbox="local",
                    executor=SlurmExecutor(SlurmConfig(gpus=0)))
    # By default one GPU per job: this host has none, so sbatch refuses the request in one sentence.
    with pytest.raises(SlurmError, match="sbatch refused"):
        grade_batch(_unit(slurm_course), tmp_path / "subs", tmp_path / "b", sandbox="local", executor=SlurmExecutor())
    script = next((tmp_path / "b/.slurm").glob("*.sbatch")).read_text()
    assert "#SBATCH --gres=gpu:1\n" in script
