"""``lmcourse leaderboard verify --top K``: re-run the best entries inline and through the real Slurm cluster."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from safetensors.torch import save

from lmcourse.grader.cli import cli  # noqa: F401  (imported first: cli_leaderboard imports from it)
from lmcourse.grader.cli_leaderboard import leaderboard
from lmcourse.leaderboard.checkpoint import SubmissionFiles, content_hash
from lmcourse.leaderboard.custom import evaluate_any
from lmcourse.leaderboard.store import Store

from .factories import RULES, TINY, FixedEvaluator, byte_tokenizer, course_with_board, tensors, write_validation_text
from .test_custom import REFERENCE_CODE


def write_files(runs: Path, sub: SubmissionFiles) -> None:
    """The entry's run folder as staff keep it: RUNS/<content hash>/."""
    folder = runs / content_hash(sub)
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(sub.weights)
    (folder / "model_config.json").write_text(sub.config.model_dump_json(), encoding="utf-8")
    (folder / "vocab.json").write_bytes(sub.vocab or b"")
    (folder / "merges.txt").write_bytes(sub.merges or b"")
    for path, data in (sub.code or {}).items():
        (folder / "code" / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / "code" / path).write_bytes(data)


@pytest.fixture
def board(tmp_path: Path) -> dict:
    """A custom-code board with three entries: honest trusted, honest custom (unverified), and a wrong number."""
    course = course_with_board(tmp_path / "course")
    data = tmp_path / "data"
    write_validation_text(data)
    url = f"sqlite:///{tmp_path / 'lb.db'}"
    vocab, merges = byte_tokenizer()
    subs = [SubmissionFiles(save(tensors(seed)), TINY, vocab, merges, code=code)
            for seed, code in ((1, None), (2, REFERENCE_CODE), (3, None))]
    ids = []
    with Store.open(url) as store:
        store.add_board("custom", "basics", RULES.model_copy(update={"allow_custom_code": True}))
        for number, sub in enumerate(subs):
            token = store.add_student(f"s{number}", f"Student {number}")
            evaluate = (FixedEvaluator(0.01) if number == 2  # a number the model did not earn, ranked first
                        else lambda f, r: evaluate_any(f, r, course, data_dir=data, sandbox="local"))
            entry = store.submit("custom", token, sub, evaluate)
            ids.append(entry.id)
            write_files(tmp_path / "runs", sub)
        store.set_verified(ids[0], False, by="test")  # under suspicion: staff re-run it
        store.set_verified(ids[2], False, by="test")
    env = {"LMCOURSE_COURSE": str(course.root), "LMCOURSE_LEADERBOARD_DB": url, "LMCOURSE_LEADERBOARD_SERVER": None}
    return {"url": url, "ids": ids, "env": env, "runs": tmp_path / "runs", "data": data, "tmp": tmp_path}


def run(board: dict, *args: str | Path) -> Result:
    return CliRunner().invoke(leaderboard, ["verify", *map(str, args)], env=board["env"], catch_exceptions=False)


def verified(board: dict) -> dict[int, bool]:
    with Store.open(board["url"]) as store:
        return {entry_id: store.entry(entry_id).entry.verified for entry_id in board["ids"]}


def test_inline_marks_the_entries_that_match_and_reports_the_wrong_number(board: dict) -> None:
    honest, custom, forged = board["ids"]
    result = run(board, "--top", 3, "--board", "custom", "--runs", board["runs"], "--data-dir", board["data"],
                 "--json")
    assert result.exit_code == 1, result.output
    report = {line["id"]: line for line in json.loads(result.output)["entries"]}
    assert set(report) == {honest, custom, forged}
    assert "differs from the stored" in report[forged]["message"]
    assert verified(board) == {honest: True, custom: True, forged: False}
    # Run again: only the wrong one is left to re-run; the manual mark still works beside --top.
    again = json.loads(run(board, "--top", 3, "--board", "custom", "--runs", board["runs"], "--data-dir",
                           board["data"], "--json").output)
    assert [line["id"] for line in again["entries"]] == [forged]
    assert run(board, str(forged)).exit_code == 0 and verified(board)[forged]


def test_missing_files_are_reported_and_left_unverified(board: dict) -> None:
    shutil.rmtree(board["runs"])
    board["runs"].mkdir()
    result = run(board, "--top", 1, "--board", "custom", "--runs", board["runs"], "--data-dir", board["data"])
    assert result.exit_code == 1
    assert "are not in" in result.output and "not verified" in result.output


@pytest.mark.skipif(shutil.which("sbatch") is None, reason="Slurm is not installed (scripts/install-slurm.sh)")
def test_slurm_runs_one_job_per_entry_and_gathers_the_results(board: dict) -> None:
    honest, custom, forged = board["ids"]
    with Store.open(board["url"]) as store:
        store.set_verified(custom, True, by="test")  # leave two trusted re-runs: one job each, no sandbox
    work = board["tmp"] / "work"
    result = run(board, "--top", 3, "--board", "custom", "--runs", board["runs"], "--data-dir", board["data"],
                 "--executor", "slurm", "--work", work, "--json")
    assert result.exit_code == 1, result.output
    report = {line["id"]: line for line in json.loads(result.output)["entries"]}
    assert set(report) == {honest, forged}
    assert report[honest]["verified"] and not report[forged]["verified"]
    assert verified(board) == {honest: True, custom: True, forged: False}
    assert len(list(work.glob("lmc-verify-*.sbatch"))) == 2 and len(list(work.glob("lmc-verify-*.json"))) == 2
