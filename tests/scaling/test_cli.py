"""``lmcourse scaling``: every verb in-process with CliRunner against a live server, and the whole
loop (serve, students add, submit, final) once as real processes.

The group is mounted under a root group of the same class as ``lmcourse``'s own, so errors take
the same path (one sentence on stderr, exit 2) whether or not ``grader/cli.py`` registers it yet.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import click
import httpx
import pytest
from click.testing import CliRunner, Result

from lmcourse.grader.cli import LmcourseGroup
from lmcourse.grader.cli_scaling import scaling
from lmcourse.grader.config import Problem
from lmcourse.grader.handout.info import INFO_PATH, HandoutInfo

from ..helpers import REPO
from .conftest import CHALLENGE_PATH, LiveServer

ROOT = LmcourseGroup(name="lmcourse", commands={"scaling": scaling}, params=[click.Option(["--course"])])
CONFIG = ["--d-model", "256", "--num-layers", "4", "--num-heads", "4", "--batch-size", "32", "--learning-rate", "2e-3",
          "--train-tokens", "2e7"]
#: The same root group in a child process, as a user's shell would run ``lmcourse scaling ...``.
CHILD = [sys.executable, "-c", "import sys; sys.argv[0] = 'lmcourse'; from tests.scaling.test_cli import ROOT; ROOT()"]


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(ROOT, list(args), env=env, catch_exceptions=False)


def one_sentence_error(result: Result) -> str:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


@pytest.fixture
def student_env(live_server: LiveServer) -> dict[str, str]:
    key = live_server.service.add_student("alice")
    return {"LMCOURSE_SCALING_URL": live_server.url, "LMCOURSE_SCALING_KEY": key}


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_students_add_prints_the_key_once(db_url: str) -> None:
    added = run("scaling", "students", "add", "alice", "--db", db_url, "--challenge", str(CHALLENGE_PATH), "--json")
    assert added.exit_code == 0, added.output
    document = json.loads(added.stdout)
    assert document["key"].startswith("lmcs_") and document["budget"] == 2e18 and document["role"] == "student"
    again = run("scaling", "students", "add", "alice", "--db", db_url, "--challenge", str(CHALLENGE_PATH))
    assert "a user named 'alice' already exists" in one_sentence_error(again)
    teacher = run("scaling", "students", "add", "prof", "--instructor", "--budget", "0", "--db", db_url,
                  "--challenge", str(CHALLENGE_PATH))
    assert teacher.exit_code == 0 and re.search(r"API key \(shown once.*\): lmcs_\S+", teacher.stdout)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_submit_status_budget(student_env: dict[str, str]) -> None:
    first = run("scaling", "submit", *CONFIG, env=student_env)
    assert first.exit_code == 0, first.output
    assert re.search(r"experiment 1: completed \(charged [\d.e+]+ flops\)", first.stdout)
    assert re.search(r"final loss \d\.\d{4}", first.stdout)
    again = run("scaling", "submit", *CONFIG, "--json", env=student_env)
    assert json.loads(again.stdout)["charged"] is False
    listing = run("scaling", "status", "--json", env=student_env)
    assert [e["id"] for e in json.loads(listing.stdout)] == [1]
    one = run("scaling", "status", "1", env=student_env)
    assert one.exit_code == 0 and one.stdout.count(" tokens  loss ") == 10
    budget = run("scaling", "budget", "--json", env=student_env)
    assert json.loads(budget.stdout)["spent"] == pytest.approx(6 * 12 * 4 * 256**2 * 2e7)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_refusals_and_missing_settings_are_one_sentence(student_env: dict[str, str], tmp_path: Path) -> None:
    heads = run("scaling", "submit", *CONFIG[:4], "--num-heads", "3", *CONFIG[6:], env=student_env)
    assert "num_heads=3 does not divide d_model=256" in one_sentence_error(heads)
    partial = run("scaling", "submit", "--d-model", "256", env=student_env)
    assert "the config lacks num_layers" in one_sentence_error(partial)
    no_key = run("scaling", "budget", env={"LMCOURSE_SCALING_URL": student_env["LMCOURSE_SCALING_URL"], "LMCOURSE_SCALING_KEY": ""})
    assert "no API key" in one_sentence_error(no_key)
    bad_file = tmp_path / "config.json"
    bad_file.write_text("[1, 2]")
    assert "must hold a JSON object" in one_sentence_error(run("scaling", "submit", "--config", str(bad_file), env=student_env))
    diverged = run("scaling", "submit", *CONFIG[:8], "--learning-rate", "0.9", *CONFIG[10:], env=student_env)
    assert diverged.exit_code == 1 and "failed: training diverged" in diverged.stdout


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_final_records_and_saves_into_the_handout(student_env: dict[str, str], tmp_path: Path, monkeypatch) -> None:
    info = HandoutInfo(course="c", term="t", unit="scaling", title="s", package="lmc_scaling",
                       problems=[Problem(name="scaling_prediction", points=1)], student_files=["lmc_scaling/**"],
                       test_timeout_s=1, submission_mb=1, lmcourse_version="0")
    (tmp_path / INFO_PATH).parent.mkdir()
    (tmp_path / INFO_PATH).write_text(info.to_json())
    (tmp_path / "writeup").mkdir()
    monkeypatch.chdir(tmp_path / "writeup")  # anywhere inside the handout
    config = tmp_path / "best.json"
    config.write_text(json.dumps({"d_model": 1024, "num_layers": 16, "num_heads": 16, "batch_size": 512,
                                  "learning_rate": 1.8e-3, "train_tokens": int(1e19 / (6 * 12 * 16 * 1024**2))}))
    recorded = run("scaling", "final", "--config", str(config), "--predicted-loss", "3.04", env=student_env)
    assert recorded.exit_code == 0, recorded.output
    assert "recorded prediction #1" in recorded.stdout
    saved = json.loads((tmp_path / "lmc_scaling" / "final_prediction.json").read_text())
    assert saved["predicted_loss"] == 3.04 and saved["config"]["d_model"] == 1024
    replaced = run("scaling", "final", "--config", str(config), "--batch-size", "256", "--predicted-loss", "3.05",
                   "--no-save", "--json", env=student_env)
    assert json.loads(replaced.stdout)["revision"] == 2 and json.loads(replaced.stdout)["saved"] is None
    assert json.loads((tmp_path / "lmc_scaling" / "final_prediction.json").read_text())["predicted_loss"] == 3.04
    off_target = run("scaling", "final", "--config", str(config), "--train-tokens", "1e8", "--predicted-loss", "3", env=student_env)
    assert "but the target is" in one_sentence_error(off_target)


def test_serve_and_use_it_as_processes(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    db = f"sqlite:///{tmp_path / 'scaling.db'}"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    added = subprocess.run([*CHILD, "--course", str(REPO), "scaling", "students", "add", "carol", "--db", db, "--json"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert added.returncode == 0, added.stderr
    key = json.loads(added.stdout)["key"]
    server = subprocess.Popen([*CHILD, "--course", str(REPO), "scaling", "serve", "--db", db, "--port", str(port)],
                              cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/v1/info", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, server.stdout.read() if server.stdout else ""
            time.sleep(0.2)
        student = {**env, "LMCOURSE_SCALING_URL": url, "LMCOURSE_SCALING_KEY": key}
        submitted = subprocess.run([*CHILD, "scaling", "submit", *CONFIG, "--json"], cwd=tmp_path, env=student,
                                   capture_output=True, text=True, timeout=120, check=False)
        assert submitted.returncode == 0, submitted.stderr
        assert json.loads(submitted.stdout)["experiment"]["status"] == "completed"
        refused = subprocess.run([*CHILD, "scaling", "budget"], cwd=tmp_path, env={**student, "LMCOURSE_SCALING_KEY": "lmcs_x"},
                                 capture_output=True, text=True, timeout=120, check=False)
        assert refused.returncode == 2 and refused.stderr.strip() == "error: unknown API key."
    finally:
        server.terminate()
        server.wait(30)
