"""``lmcourse leaderboard``: every verb in-process (CliRunner), and once end to end against a served board."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result

from lmcourse.grader.cli import cli  # noqa: F401  (imported first: cli_leaderboard imports from it)
from lmcourse.grader.cli_leaderboard import leaderboard

from .factories import RULES, course_with_board, write_run, write_validation_text


class Env:
    """A course with a basics board, its held-out text, a database, and a runner with them in the environment."""

    def __init__(self, root: Path, db_url: str) -> None:
        self.course = course_with_board(root / "course")
        self.data = root / "data"
        write_validation_text(self.data)
        self.db = db_url
        self.env = {"LMCOURSE_COURSE": str(self.course.root), "LMCOURSE_LEADERBOARD_DB": db_url,
                    "LMCOURSE_LEADERBOARD_SERVER": None, "LMCOURSE_LEADERBOARD_TOKEN": None}
        self.root = root

    def run(self, *args: str | Path) -> Result:
        return CliRunner().invoke(leaderboard, [str(a) for a in args], env=self.env, catch_exceptions=False)

    def ok(self, *args: str | Path) -> Result:
        result = self.run(*args)
        assert result.exit_code == 0, result.output
        return result

    def json(self, *args: str | Path) -> object:
        return json.loads(self.ok(*args, "--json").stdout)

    def token(self, student: str, name: str, *flags: str) -> str:
        return str(self.json("students", "add", student, name, *flags)["token"])  # type: ignore[index]

    def submit(self, run: Path, token: str, *more: str) -> dict[str, object]:
        return self.json("submit", "basics", run, "--token", token, "--data-dir", self.data, "--device", "cpu", *more)  # type: ignore[return-value]


@pytest.fixture
def env(tmp_path: Path, db_url: str) -> Env:
    return Env(tmp_path, db_url)


def test_the_staff_workflow(env: Env, tmp_path: Path) -> None:
    token = env.token("ann", "Ann")
    assert "shown only this once" in env.ok("students", "add", "bob", "Bob").stdout
    assert env.json("boards") == []
    added = env.json("boards", "add", "basics")
    assert added == {"name": "basics", "unit": "basics", "entries": 0, "rules": RULES.model_dump(mode="json")}
    assert env.json("boards", "add", "basics") == added
    assert "basics" in env.ok("boards").stdout

    run = write_run(tmp_path / "run", seed=1)
    entry = env.submit(run, token)
    assert entry["new"] is True and entry["rank"] == 1 and entry["name"] == "Ann" and entry["verified"] is True
    assert 7.0 < float(entry["bits_per_byte"]) < 9.0  # type: ignore[arg-type]
    again = env.submit(run, token)
    assert again["new"] is False and again["id"] == entry["id"]
    assert "already on the board" in env.ok("submit", "basics", run, "--token", token, "--data-dir", env.data,
                                            "--device", "cpu").stdout

    shown = env.json("show", "basics")
    assert [e["id"] for e in shown["entries"]] == [entry["id"]]  # type: ignore[index]
    table = env.ok("show", "basics").stdout
    assert "Ann" in table and f"{entry['bits_per_byte']:.4f}" in table

    markdown = env.ok("export", "basics").stdout
    assert markdown.startswith("| Rank | Name | bpb | Loss | Perplexity | Params | Date | Verified |\n")
    assert f"| 1 | Ann | {entry['bits_per_byte']:.4f} |" in markdown
    env.ok("export", "basics", "--out", tmp_path / "LEADERBOARD.md")
    assert (tmp_path / "LEADERBOARD.md").read_text(encoding="utf-8") == markdown

    [unverified] = env.json("verify", str(entry["id"]), "--undo", "--by", "ta1")  # type: ignore[misc]
    assert unverified["verified"] is False
    assert env.json("verify", str(entry["id"]))[0]["verified"] is True  # type: ignore[index]
    env.ok("hide", str(entry["id"]))
    assert "no entries yet" in env.ok("show", "basics").stdout
    assert env.json("show", "basics", "--all")["entries"][0]["hidden"] is True  # type: ignore[index]
    env.ok("hide", str(entry["id"]), "--undo")
    assert len(env.json("show", "basics")["entries"]) == 1  # type: ignore[index,arg-type]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["submit", "basics", "RUN"], "submitting needs a token"),
        (["submit", "basics", "RUN", "--token", "nope"], "this token is not valid"),
        (["submit", "nope", "RUN", "--token", "TOKEN"], "there is no board 'nope' (boards: basics)"),
        (["submit", "basics", "EMPTY", "--token", "TOKEN"], "has no model.safetensors"),
        (["submit", "basics", "RUN", "--token", "TOKEN", "--db", "DB", "--server", "http://x"], "not both"),
        (["show", "nope"], "there is no board 'nope'"),
        (["export", "basics", "--db", "mysql://x@y/z"], "runs on SQLite or PostgreSQL, not mysql"),
        (["verify", "999"], "there is no entry 999"),
        (["hide", "999", "--undo"], "there is no entry 999"),
        (["boards", "add", "nope"], "unit 'nope' is not enabled"),
        (["students", "add", "ann", " "], "display name must be 1 to 128 characters"),
    ],
)
def test_bad_input_exits_2_with_one_sentence(env: Env, tmp_path: Path, args: list[str], message: str) -> None:
    env.ok("boards", "add", "basics")
    token = env.token("ann", "Ann")
    (tmp_path / "empty").mkdir()
    substitutes = {"RUN": str(write_run(tmp_path / "run", seed=1)), "EMPTY": str(tmp_path / "empty"),
                   "TOKEN": token, "DB": env.db}
    result = env.run(*[substitutes.get(a, a) for a in args])
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert message in result.stderr
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1


def test_a_unit_without_a_leaderboard(env: Env) -> None:
    unit_yaml = env.course.root / "assignments" / "basics" / "unit.yaml"
    unit_yaml.write_text(unit_yaml.read_text(encoding="utf-8").split("leaderboard: {")[0], encoding="utf-8")
    result = env.run("boards", "add", "basics")
    assert result.exit_code == 2
    assert "unit 'basics' has no leaderboard: add a `leaderboard:` section to" in result.stderr


def test_the_quota_is_one_sentence(env: Env, tmp_path: Path) -> None:
    env.ok("boards", "add", "basics")
    token = env.token("ann", "Ann")
    for seed in range(RULES.daily_quota):
        env.submit(write_run(tmp_path / f"run{seed}", seed=seed), token)
    result = env.run("submit", "basics", write_run(tmp_path / "one-more", seed=99), "--token", token,
                     "--data-dir", env.data, "--device", "cpu")
    assert result.exit_code == 2
    assert f"you have used all {RULES.daily_quota} of today's submissions to board 'basics'" in result.stderr


@pytest.mark.parametrize("verb", ["submit", "show", "export", "verify", "hide", "serve", "boards", "boards add",
                                  "students", "students add"])
def test_every_verb_teaches_with_an_example(env: Env, verb: str) -> None:
    assert "lmcourse leaderboard " + verb in env.ok(*verb.split(), "--help").stdout


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_students_submit_to_a_served_board(env: Env, tmp_path: Path) -> None:
    """The real server in a child process; students and staff reach it only through the CLI's client."""
    env.ok("boards", "add", "basics")
    ann, staff = env.token("ann", "Ann"), env.token("ta1", "Course staff", "--staff")
    port = _free_port()
    server = f"http://127.0.0.1:{port}"
    serve = ("from lmcourse.grader.cli import cli; from lmcourse.grader.cli_leaderboard import leaderboard; "
             f"leaderboard(['serve', '--port', '{port}', '--data-dir', {str(env.data)!r}, '--device', 'cpu'])")
    child_env = {k: v for k, v in env.env.items() if v is not None}
    log = (tmp_path / "server.log").open("w")
    process = subprocess.Popen([sys.executable, "-c", serve], env={**_base_env(), **child_env}, stdout=log,
                               stderr=subprocess.STDOUT)
    try:
        _wait_until_up(server, process, tmp_path / "server.log")
        env.env["LMCOURSE_LEADERBOARD_SERVER"] = server
        env.env["LMCOURSE_LEADERBOARD_DB"] = None  # the student side has no database

        run = write_run(tmp_path / "run", seed=3)
        entry = env.json("submit", "basics", run, "--token", ann)
        assert entry["new"] is True and entry["name"] == "Ann"
        assert env.json("submit", "basics", run, "--token", ann)["new"] is False  # type: ignore[index]
        shown = env.json("show", "basics")["entries"]  # type: ignore[index]
        assert [(e["id"], e["rank"]) for e in shown] == [(entry["id"], 1)]  # type: ignore[index]

        refused = env.run("hide", str(entry["id"]), "--token", ann)
        assert refused.exit_code == 2 and "only staff may" in refused.stderr
        assert env.json("hide", str(entry["id"]), "--token", staff)[0]["hidden"] is True  # type: ignore[index]
        assert env.json("show", "basics")["entries"] == []  # type: ignore[index]

        wrong = env.run("submit", "basics", run, "--token", "nope")
        assert wrong.exit_code == 2 and "this token is not valid" in wrong.stderr
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def _base_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("LMCOURSE_")}


def _wait_until_up(server: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the server exited with {process.returncode}:\n{log.read_text()}")
        try:
            httpx.get(f"{server}/api/boards", timeout=1).raise_for_status()
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    pytest.fail(f"the server did not answer within 60 s:\n{log.read_text()}")


def test_the_group_is_part_of_lmcourse(tmp_path: Path) -> None:
    """`lmcourse leaderboard` in a child process, as a shell runs it (grader/cli.py registers the group)."""
    def lmcourse(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "lmcourse.grader", "leaderboard", *args], cwd=tmp_path,
                              env=_base_env(), capture_output=True, text=True, timeout=120, check=False)

    missing = lmcourse("boards")
    assert missing.returncode == 2 and missing.stdout == ""
    assert missing.stderr.startswith(f"error: there is no leaderboard database at {tmp_path / 'leaderboard.db'};")
    assert lmcourse("students", "add", "ann", "Ann").returncode == 0
    assert (tmp_path / "leaderboard.db").is_file()  # the default database: ./leaderboard.db
    listed = lmcourse("boards", "--json")
    assert listed.returncode == 0 and json.loads(listed.stdout) == []
