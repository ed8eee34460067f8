"""The trusted evaluator against the training script, brute force, and closed-form answers."""

from __future__ import annotations

import dataclasses
import importlib
import json
import math
import random
import shutil
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save

from lmcourse.grader.course import Course
from lmcourse.grader.errors import LmcourseError
from lmcourse.leaderboard.architecture import build_model, load_weights, reference_package, tensor_shapes
from lmcourse.leaderboard.checkpoint import (
    SubmissionFiles,
    SubmissionRejected,
    checked_tensors,
    read_submission,
    tokenizer_files,
)
from lmcourse.leaderboard.config import BoardRules, ModelConfig
from lmcourse.leaderboard.evaluate import (
    evaluate_submission,
    exact_fp32,
    score_stream,
    sliding_windows,
    token_stream,
    validation_documents,
    window_nats,
)

from ..helpers import REPO

EOT = "<|endoftext|>"
WORDS = ("the a cat dog bird sat ran flew on under over mat tree house big small red café naïve happy sad and "
         "then it was very quite — “yes” said 42 times").split()
CONTEXT = 32


def documents(count: int, seed: int) -> list[str]:
    """Short synthetic documents; some characters take two or three UTF-8 bytes."""
    rng = random.Random(seed)
    return [" ".join(" ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 10))).capitalize() + "."
                     for _ in range(rng.randint(2, 5)))
            for _ in range(count)]


def write_split(data_dir: Path, docs: list[str], dataset: str = "tiny") -> Path:
    """``docs`` as ``lmcourse data prepare`` writes a valid split."""
    folder = data_dir / dataset
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "valid.txt").write_text("".join(f"{doc}\n{EOT}\n" for doc in docs), encoding="utf-8")
    return data_dir


def board(**changes: Any) -> BoardRules:
    values = {"dataset": "tiny", "context_length": CONTEXT, "stride": CONTEXT // 2, "max_parameters": 10**7,
              "max_checkpoint_mb": 50, "max_eval_bytes": 10**6, "max_eval_seconds": 300}
    return BoardRules(**(values | changes))


def random_weights(config: ModelConfig, seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {name: torch.randn(shape, generator=generator) * 0.2 for name, shape in tensor_shapes(config).items()}


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny models gain nothing from threads, and on a loaded machine OpenMP's spinning barriers make them crawl."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def course() -> Course:
    return Course.load(REPO)


@pytest.fixture(scope="module")
def reference(course: Course) -> types.ModuleType:
    return reference_package(course)


@pytest.fixture(scope="module")
def bpe(tmp_path_factory: pytest.TempPathFactory, reference: types.ModuleType) -> tuple[bytes, bytes, Any]:
    """vocab.json and merges.txt of a 300-token BPE trained by the reference on synthetic text, and its Tokenizer."""
    folder = tmp_path_factory.mktemp("bpe")
    (folder / "corpus.txt").write_text(EOT.join(documents(60, seed=1)), encoding="utf-8")
    vocab, merges = reference.train_bpe(folder / "corpus.txt", 300, [EOT], num_workers=1)
    vocab_json, merges_txt = tokenizer_files(vocab, merges)
    return vocab_json, merges_txt, reference.Tokenizer(vocab, merges, [EOT])


def byte_tokenizer() -> tuple[bytes, bytes]:
    """A tokenizer without merges: one token per byte, and <|endoftext|> (257 ids)."""
    return tokenizer_files({b: bytes([b]) for b in range(256)} | {256: EOT.encode()}, [])


def train(reference: types.ModuleType, out: Path, train_ids: list[int], val_ids: list[int]) -> float:
    """Train a tiny model with reference/basics/train.py; the validation loss its last log line reports."""
    out.mkdir()
    np.array(train_ids, dtype=np.uint16).tofile(out / "train.bin")
    np.array(val_ids, dtype=np.uint16).tofile(out / "valid.bin")
    settings = {"train_data": out / "train.bin", "val_data": out / "valid.bin", "out_dir": out, "vocab_size": 300,
                "context_length": CONTEXT, "d_model": 32, "num_layers": 2, "num_heads": 2, "d_ff": 64, "steps": 40,
                "batch_size": 8, "warmup_steps": 5, "max_lr": 3e-3, "eval_interval": 40, "eval_batches": 3,
                "log_interval": 20, "checkpoint_interval": 40, "device": "cpu", "dtype": "float32", "compile": "false"}
    importlib.import_module(f"{reference.__name__}.train").main([f"--{k}={v}" for k, v in settings.items()])
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    return records[-1]["val_loss"]


def test_loss_equals_the_training_scripts_validation_loss(tmp_path: Path, course: Course, reference: Any,
                                                          bpe: tuple[bytes, bytes, Any]) -> None:
    vocab_json, merges_txt, tokenizer = bpe
    train_ids, _ = token_stream(tokenizer, documents(40, seed=2))
    # A validation document of CONTEXT - 1 tokens: EOT + it + EOT is one window of CONTEXT + 1 tokens, the only
    # one train.py's get_batch can draw, and exactly the targets the evaluator scores.
    text = " ".join(documents(10, seed=3))
    document = next(text[:end] for end in range(1, len(text)) if text[end - 1] != " "
                    and len(tokenizer.encode(text[:end])) == CONTEXT - 1)
    val_ids, _ = token_stream(tokenizer, [document])
    assert len(val_ids) == CONTEXT + 1
    val_loss = train(reference, tmp_path / "run", train_ids.tolist(), val_ids.tolist())
    assert val_loss < math.log(300) - 1  # it learned something: equality below is not between two uniform guesses

    (tmp_path / "run" / "vocab.json").write_bytes(vocab_json)
    (tmp_path / "run" / "merges.txt").write_bytes(merges_txt)
    sub = read_submission(tmp_path / "run")  # model.safetensors, model_config.json and log.jsonl as train.py wrote them
    evaluation = evaluate_submission(sub, board(), course, data_dir=write_split(tmp_path / "data", [document]),
                                     device="cpu")
    assert evaluation.tokens == CONTEXT
    assert evaluation.loss == pytest.approx(val_loss, abs=1e-4)


def test_scoring_the_windows_train_py_draws_gives_its_validation_loss(tmp_path: Path, course: Course, reference: Any,
                                                                     bpe: tuple[bytes, bytes, Any]) -> None:
    tokenizer = bpe[2]
    train_ids, _ = token_stream(tokenizer, documents(40, seed=2))
    val_ids, _ = token_stream(tokenizer, documents(8, seed=4))
    val_loss = train(reference, tmp_path / "run", train_ids.tolist(), val_ids.tolist())
    sub = read_submission(tmp_path / "run")
    model = load_weights(build_model(sub.config, course), sub.config, checked_tensors(sub, board()))
    tokens = reference.load_tokens(tmp_path / "run" / "valid.bin")
    generator = torch.Generator().manual_seed(0)  # train.py's evaluate(): the run's seed, 3 batches of 8
    nats = count = 0.0
    for _ in range(3):
        x, y = reference.get_batch(tokens, 8, CONTEXT, "cpu", generator)
        nats += window_nats(model, x, y, torch.ones_like(x, dtype=torch.bool))
        count += x.numel()
    assert nats / count == pytest.approx(val_loss, abs=1e-4)


@pytest.mark.parametrize(
    ("num_targets", "context", "stride"),
    [(1, 4, 2), (4, 4, 2), (5, 4, 2), (10, 4, 4), (11, 4, 1), (100, 32, 16), (101, 32, 7), (3, 32, 16)],
)
def test_sliding_windows_score_every_target_once_with_enough_context(num_targets: int, context: int,
                                                                     stride: int) -> None:
    length = min(context, num_targets)
    scored: list[int] = []
    for start, count in sliding_windows(num_targets, context, stride):
        assert 0 <= start and start + length <= num_targets  # reads stream[start : start + length + 1]
        for target in range(start + length - count, start + length):
            assert target - start + 1 >= min(target + 1, context - stride + 1)  # tokens it is predicted from
            scored.append(target)
    assert scored == list(range(num_targets))


def test_score_stream_equals_scoring_every_token_on_its_own(course: Course) -> None:
    config = ModelConfig(vocab_size=50, context_length=8, d_model=16, num_layers=2, num_heads=2, d_ff=24,
                         rope_theta=1e4)
    model = load_weights(build_model(config, course), config, random_weights(config))
    stream = torch.randint(50, (33,), generator=torch.Generator().manual_seed(0))

    def nats(inputs: torch.Tensor, target: torch.Tensor) -> float:
        return F.cross_entropy(model(inputs[None])[0, -1:], target[None]).item()

    # stride 1: target j is predicted from the context_length tokens before it (all of them at first)
    alone = sum(nats(stream[max(0, j + 1 - 8) : j + 1], stream[j + 1]) for j in range(32))
    assert score_stream(model, stream, 8, 1) == pytest.approx(alone, rel=1e-5)
    # stride = context on 4 x 8 targets: four disjoint windows, each scoring all its targets
    chunks = sum(F.cross_entropy(model(stream[k : k + 8][None])[0], stream[k + 1 : k + 9], reduction="sum").item()
                 for k in range(0, 32, 8))
    assert score_stream(model, stream, 8, 8) == pytest.approx(chunks, rel=1e-5)


@pytest.mark.parametrize("tokenizer", ["bytes", "bpe"])
def test_bits_per_byte_of_a_uniform_model(tmp_path: Path, course: Course, bpe: tuple[bytes, bytes, Any],
                                          tokenizer: str) -> None:
    vocab_json, merges_txt = byte_tokenizer() if tokenizer == "bytes" else bpe[:2]
    vocab_size = 257 if tokenizer == "bytes" else 300
    config = ModelConfig(vocab_size=vocab_size, context_length=CONTEXT, d_model=16, num_layers=1, num_heads=2,
                         d_ff=32, rope_theta=1e4)
    weights = random_weights(config)
    weights["lm_head.weight"].zero_()  # every logit 0: each token costs ln(vocab_size) nats
    docs = documents(6, seed=5)
    sub = SubmissionFiles(save(weights), config, vocab_json, merges_txt)
    evaluation = evaluate_submission(sub, board(), course, data_dir=write_split(tmp_path, docs), device="cpu")
    num_bytes = sum(len(doc.encode("utf-8")) for doc in docs)
    assert num_bytes > sum(map(len, docs))  # multi-byte characters: bytes, not characters, are counted
    assert evaluation.bytes == num_bytes
    assert evaluation.loss == pytest.approx(math.log(vocab_size), rel=1e-6)
    assert evaluation.perplexity == pytest.approx(vocab_size, rel=1e-5)
    assert evaluation.bits_per_byte == pytest.approx(evaluation.tokens * math.log2(vocab_size) / num_bytes, rel=1e-6)
    if tokenizer == "bytes":  # every byte is a token, and so is the end of every document
        assert evaluation.tokens == num_bytes + len(docs)
        assert evaluation.bits_per_byte == pytest.approx(math.log2(257) * (num_bytes + len(docs)) / num_bytes)
    else:  # merges compress: fewer tokens, so fewer bits per byte for the same uniform guess per token
        assert evaluation.tokens < 0.7 * num_bytes
        assert evaluation.bits_per_byte < math.log2(257)


def test_tied_embeddings_evaluate_like_an_untied_copy(tmp_path: Path, course: Course,
                                                      bpe: tuple[bytes, bytes, Any]) -> None:
    tied = ModelConfig(vocab_size=300, context_length=CONTEXT, d_model=16, num_layers=2, num_heads=2, d_ff=32,
                       rope_theta=1e4, tie_embeddings=True)
    weights = random_weights(tied)
    untied = tied.model_copy(update={"tie_embeddings": False})
    copied = weights | {"lm_head.weight": weights["token_embeddings.weight"].clone()}
    data_dir = write_split(tmp_path, documents(5, seed=6))
    results = [evaluate_submission(SubmissionFiles(save(w), config, *bpe[:2]), board(), course, data_dir=data_dir)
               for w, config in ((weights, tied), (copied, untied))]
    assert results[0].loss == results[1].loss
    assert results[0].parameters == results[1].parameters - 300 * 16


def test_post_norm_blocks_normalise_after_each_residual(tmp_path: Path, course: Course,
                                                        bpe: tuple[bytes, bytes, Any]) -> None:
    post = ModelConfig(vocab_size=300, context_length=128, d_model=16, num_layers=2, num_heads=2, d_ff=32,
                       rope_theta=1e4, norm="post")
    weights = random_weights(post)
    docs = documents(1, seed=7)
    stream, _ = token_stream(bpe[2], docs)
    assert len(stream) <= 129  # one window: the loss is that of the whole stream
    model = load_weights(build_model(post, course), post, dict(weights))
    x, y = stream[None, :-1], stream[1:]
    hidden = model.token_embeddings(x)
    for block in model.layers:
        hidden = block.ln1(hidden + block.attn(hidden))
        hidden = block.ln2(hidden + block.ffn(hidden))
    logits = model.lm_head(model.ln_final(hidden))
    assert torch.equal(model(x), logits)
    pre = post.model_copy(update={"norm": "pre"})
    assert not torch.allclose(load_weights(build_model(pre, course), pre, dict(weights))(x), logits)
    evaluation = evaluate_submission(SubmissionFiles(save(weights), post, *bpe[:2]),
                                     board(context_length=128, stride=64), course, data_dir=write_split(tmp_path, docs))
    assert evaluation.loss == pytest.approx(F.cross_entropy(logits[0], y).item(), rel=1e-6)


def test_two_evaluations_give_the_same_digits(tmp_path: Path, course: Course, bpe: tuple[bytes, bytes, Any]) -> None:
    config = ModelConfig(vocab_size=300, context_length=CONTEXT, d_model=32, num_layers=2, num_heads=4, d_ff=64,
                         rope_theta=1e4)
    sub = SubmissionFiles(save(random_weights(config)), config, *bpe[:2])
    data_dir = write_split(tmp_path, documents(30, seed=8))
    first, second = (dataclasses.replace(evaluate_submission(sub, board(), course, data_dir=data_dir), seconds=0.0)
                     for _ in range(2))
    assert first == second
    assert first.tokens > 4 * CONTEXT  # several batches of overlapping windows
    assert first.device == "cpu"


def test_the_boards_gpt2_tokenizer_is_used_when_a_submission_brings_none(tmp_path: Path, course: Course,
                                                                          reference: Any) -> None:
    fixtures = REPO / "assignments" / "basics" / "fixtures"  # GPT-2's encoder.json and vocab.bpe
    (tmp_path / "gpt2-tokenizer").mkdir()
    shutil.copy(fixtures / "gpt2_vocab.json", tmp_path / "gpt2-tokenizer" / "encoder.json")
    shutil.copy(fixtures / "gpt2_merges.txt", tmp_path / "gpt2-tokenizer" / "vocab.bpe")
    docs = documents(3, seed=9)
    write_split(tmp_path, docs)
    config = ModelConfig(vocab_size=50257, context_length=CONTEXT, d_model=8, num_layers=1, num_heads=2, d_ff=16,
                         rope_theta=1e4)
    evaluation = evaluate_submission(SubmissionFiles(save(random_weights(config)), config), board(), course,
                                     data_dir=tmp_path)
    gpt2 = reference.Tokenizer.from_files(fixtures / "gpt2_vocab.json", fixtures / "gpt2_merges.txt", [EOT])
    assert evaluation.tokens == sum(len(gpt2.encode(doc)) + 1 for doc in docs)

    small = config.model_copy(update={"vocab_size": 300})
    with pytest.raises(SubmissionRejected, match=r"^The submission brings no tokenizer, and the board's "
                                                 r"\(gpt2-tokenizer\) has 50,257 ids, more than the model's vocab_size "
                                                 r"of 300; submit your vocab.json and merges.txt.$"):
        evaluate_submission(SubmissionFiles(save(random_weights(small)), small), board(), course, data_dir=tmp_path)
    shutil.rmtree(tmp_path / "gpt2-tokenizer")
    with pytest.raises(LmcourseError, match="run `lmcourse data prepare gpt2-tokenizer"):
        evaluate_submission(SubmissionFiles(save(random_weights(config)), config), board(), course, data_dir=tmp_path)


def test_bad_tokenizers_missing_data_and_the_time_limit(tmp_path: Path, course: Course,
                                                        bpe: tuple[bytes, bytes, Any]) -> None:
    config = ModelConfig(vocab_size=300, context_length=CONTEXT, d_model=16, num_layers=1, num_heads=2, d_ff=32,
                         rope_theta=1e4)
    weights = save(random_weights(config))
    with pytest.raises(LmcourseError, match=r"tiny/valid.txt does not exist; run `lmcourse data prepare tiny"):
        evaluate_submission(SubmissionFiles(weights, config, *bpe[:2]), board(), course, data_dir=tmp_path)
    write_split(tmp_path, documents(20, seed=10))
    with pytest.raises(SubmissionRejected, match=r"^vocab.json and merges.txt do not make a byte-level BPE tokenizer "
                                                 r"\(Merge 0 .* uses a token missing from the vocabulary\).$"):
        evaluate_submission(SubmissionFiles(weights, config, bpe[0], b"#version: 0.2\nq \xc4\xa0zz\n"), board(), course,
                            data_dir=tmp_path)
    with pytest.raises(SubmissionRejected, match=r"^The evaluation ran past the board's limit of 1e-06 s after "
                                                 r"\d+ of \d+ windows.$"):
        evaluate_submission(SubmissionFiles(weights, config, *bpe[:2]), board(max_eval_seconds=1e-6), course,
                            data_dir=tmp_path)


def test_the_evaluated_text_is_a_fixed_sample_within_the_byte_cap(tmp_path: Path) -> None:
    docs = documents(12, seed=11) + ["é" * 50]
    write_split(tmp_path, docs)
    path = tmp_path / "tiny" / "valid.txt"
    everything = validation_documents(path, 10**6)
    assert sorted(everything) == sorted(docs) and everything != docs  # all of them, in sha256 order
    cap = sum(len(doc.encode()) for doc in everything[:3]) + 1
    assert validation_documents(path, cap) == everything[:3]
    write_split(tmp_path, ["é" * 50], dataset="accents")  # 100 bytes: a cap of 99 cuts its last character off
    assert validation_documents(tmp_path / "accents" / "valid.txt", 99) == ["é" * 49]
    with pytest.raises(LmcourseError, match="max_eval_bytes=1 is smaller than the first character"):
        validation_documents(tmp_path / "accents" / "valid.txt", 1)


def test_numeric_switches_hold_while_any_evaluation_runs_and_come_back_after() -> None:
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("high")  # what train.py sets: TF32 where the hardware has it
    try:
        with exact_fp32(torch.device("cpu")):
            with exact_fp32(torch.device("cpu")):  # a second evaluation, as the web server runs them in threads
                assert torch.get_float32_matmul_precision() == "highest"
            assert torch.get_float32_matmul_precision() == "highest"  # the first one is still running
        assert torch.get_float32_matmul_precision() == "high"
    finally:
        torch.set_float32_matmul_precision(before)
