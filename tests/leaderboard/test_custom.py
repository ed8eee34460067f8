"""Custom model code: run in the real local sandbox, scored by the trusted side, stored unverified.

Each sandboxed evaluation starts a worker that imports torch, so the tests keep to a handful of them.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from safetensors.torch import save

from lmcourse.leaderboard.checkpoint import SubmissionFiles, SubmissionRejected, content_hash, read_submission
from lmcourse.leaderboard.custom import UNVERIFIED_REASON, evaluate_any
from lmcourse.leaderboard.store import Store

from .factories import REPO, RULES, TINY, byte_tokenizer, course_with_board, tensors, write_validation_text

CUSTOM_RULES = RULES.model_copy(update={"allow_custom_code": True})
# The reference model, sent as the student's own code: its numbers must equal the trusted evaluator's.
REFERENCE_CODE = {
    "model.py": (REPO / "reference/basics/model.py").read_bytes()
    + b"\n\ndef build_model(config):\n"
    b"    keys = ('vocab_size', 'context_length', 'd_model', 'num_layers', 'num_heads', 'd_ff', 'rope_theta')\n"
    b"    return TransformerLM(**{k: config[k] for k in keys})\n",
    "nn_utils.py": (REPO / "reference/basics/nn_utils.py").read_bytes(),
}
# Tries to read what the sandbox hides, then forges its loss by monkeypatching torch's cross-entropy to 0.
HOSTILE = b'''
import torch
import torch.nn.functional as F
from . import reference

SECRETS = %r

def build_model(config):
    for path in SECRETS:
        try:
            open(path, "rb").read(1)
        except OSError:
            continue
        raise RuntimeError("read " + path)
    F.cross_entropy = lambda logits, targets, reduction="mean": torch.zeros(targets.shape)
    return reference.build_model(config)
'''


@pytest.fixture
def env(tmp_path: Path) -> dict:
    course = course_with_board(tmp_path / "course")
    write_validation_text(tmp_path / "data")
    store = Store.open(f"sqlite:///{tmp_path / 'lb.db'}")
    store.add_board("basics", "basics", RULES)
    store.add_board("custom", "basics", CUSTOM_RULES)
    token = store.add_student("jdoe", "Jane Doe")

    def evaluator(files: SubmissionFiles, rules: object) -> object:
        return evaluate_any(files, rules, course, data_dir=tmp_path / "data", device="cpu", sandbox="local")

    yield {"store": store, "token": token, "evaluate": evaluator, "tmp": tmp_path}
    store.close()


def files(code: dict[str, bytes] | None, seed: int = 0) -> SubmissionFiles:
    vocab, merges = byte_tokenizer()
    return SubmissionFiles(save(tensors(seed)), TINY, vocab, merges, code=code)


def test_reference_code_in_the_sandbox_scores_as_the_trusted_evaluator_and_stays_unverified(env: dict) -> None:
    store: Store = env["store"]
    trusted = store.submit("custom", env["token"], files(None), env["evaluate"])
    custom = store.submit("custom", env["token"], files(REFERENCE_CODE), env["evaluate"])
    assert custom.id != trusted.id  # code is part of the content hash
    assert math.isclose(custom.loss, trusted.loss, rel_tol=1e-6)
    assert math.isclose(custom.bits_per_byte, trusted.bits_per_byte, rel_tol=1e-6)
    assert trusted.verified and not custom.verified
    assert store.entry(custom.id).unverified_reason == UNVERIFIED_REASON


def test_a_board_without_custom_code_refuses_code_in_one_sentence_and_stores_nothing(env: dict) -> None:
    store: Store = env["store"]
    with pytest.raises(SubmissionRejected, match=r"^This board does not accept model code: .*\.$"):
        store.submit("basics", env["token"], files(REFERENCE_CODE), env["evaluate"])
    assert store.ranking("basics") == []


def test_hostile_code_reads_nothing_outside_and_its_forged_loss_stays_unverified(env: dict) -> None:
    store: Store = env["store"]
    secrets = [str(env["tmp"] / "lb.db"), "/etc/shadow", str(REPO / "leaderboard" / "store.py"), "/root/.bashrc"]
    code = {"model.py": HOSTILE % secrets, "reference.py": REFERENCE_CODE["model.py"].replace(
        b"from .nn_utils", b"from custom_model.nn_utils"), "nn_utils.py": REFERENCE_CODE["nn_utils.py"]}
    entry = store.submit("custom", env["token"], files(code), env["evaluate"])
    # Every read failed (else build_model raised and nothing was stored); the forged 0 nats got through,
    # as anything computed next to the student's code can: which is why the entry waits for staff.
    assert entry.loss == 0.0 and entry.perplexity == 1.0
    assert not entry.verified
    assert store.entry(entry.id).unverified_reason == UNVERIFIED_REASON


@pytest.mark.parametrize("attack", [
    "import os; os._exit(0)",  # the worker dies mid-call: no number at all
    "raise SystemExit(0)",  # a clean exit is an error, not a result
    "F.cross_entropy = lambda logits, targets, reduction='mean': -torch.ones(targets.shape)",  # negative nats
])
def test_exits_and_impossible_losses_are_refused_and_stored_nowhere(env: dict, attack: str) -> None:
    store: Store = env["store"]
    code = dict(REFERENCE_CODE)
    code["model.py"] += (b"\nimport torch.nn.functional as F\n_forward = TransformerLM.forward\n"
                         b"def _attack(self, x):\n    " + attack.encode() + b"\n    return _forward(self, x)\n"
                         b"TransformerLM.forward = _attack\n")
    with pytest.raises(SubmissionRejected, match=r"^The custom model"):
        store.submit("custom", env["token"], files(code), env["evaluate"])
    assert store.ranking("custom") == []


def test_a_run_folder_carries_its_code(tmp_path: Path) -> None:
    vocab, merges = byte_tokenizer()
    (tmp_path / "code" / "layers").mkdir(parents=True)
    (tmp_path / "model.safetensors").write_bytes(save(tensors(0)))
    (tmp_path / "model_config.json").write_text(TINY.model_dump_json(), encoding="utf-8")
    (tmp_path / "code" / "model.py").write_bytes(REFERENCE_CODE["model.py"])
    (tmp_path / "code" / "layers" / "extra.py").write_text("X = 1\n", encoding="utf-8")
    sub = read_submission(tmp_path)
    assert sub.code is not None and set(sub.code) == {"model.py", "layers/extra.py"}
    assert content_hash(sub) != content_hash(SubmissionFiles(sub.weights, sub.config))
    (tmp_path / "code" / "run.sh").write_text("rm -rf /\n", encoding="utf-8")
    with pytest.raises(SubmissionRejected, match=r"run.sh is not a \.py, \.json, \.txt file"):
        read_submission(tmp_path)


def test_code_uploaded_through_the_web_api_runs_in_the_sandbox_and_waits_for_staff(env: dict) -> None:
    from fastapi.testclient import TestClient

    from lmcourse.leaderboard.client import read_run
    from lmcourse.leaderboard.web.app import create_app

    run = env["tmp"] / "run"
    (run / "code").mkdir(parents=True)
    sub = files(REFERENCE_CODE)
    (run / "model.safetensors").write_bytes(sub.weights)
    (run / "model_config.json").write_text(sub.config.model_dump_json())
    (run / "vocab.json").write_bytes(sub.vocab)
    (run / "merges.txt").write_bytes(sub.merges)
    for name, data in REFERENCE_CODE.items():
        (run / "code" / name).write_bytes(data)
    parts = read_run(run)
    assert {"code/model.py", "code/nn_utils.py"} <= set(parts)
    upload = {part: (part.rpartition("/")[2], data) for part, data in parts.items()}
    auth = {"Authorization": f"Bearer {env['token']}"}
    with TestClient(create_app(env["store"], env["evaluate"])) as client:
        refused = client.post("/api/boards/basics/submissions", files=upload, headers=auth)
        assert refused.status_code == 400 and "does not accept model code" in refused.json()["error"]
        accepted = client.post("/api/boards/custom/submissions", files=upload, headers=auth)
    assert accepted.status_code == 201, accepted.text
    entry = env["store"].entry(accepted.json()["id"])
    assert not entry.entry.verified and entry.unverified_reason == UNVERIFIED_REASON
