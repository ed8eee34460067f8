"""Reading submissions: every bad one is refused in one sentence, nothing is ever unpickled."""

from __future__ import annotations

import importlib
import io
import json
import os
import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import save

from lmcourse.grader.course import Course
from lmcourse.leaderboard.architecture import build_model, parameter_count, reference_package, tensor_shapes
from lmcourse.leaderboard.checkpoint import (
    SubmissionFiles,
    SubmissionRejected,
    check_submission,
    content_hash,
    read_submission,
    submission_from_bytes,
    tokenizer_files,
    training_log,
)
from lmcourse.leaderboard.config import BoardRules, ModelConfig

from ..helpers import REPO

CONFIG = ModelConfig(vocab_size=300, context_length=32, d_model=16, num_layers=2, num_heads=2, d_ff=32, rope_theta=1e4)
RULES = BoardRules(dataset="tiny", context_length=32, stride=16, max_parameters=100_000, max_checkpoint_mb=1)
CONFIG_JSON = CONFIG.model_dump_json().encode()


def weights(config: ModelConfig = CONFIG, dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return {name: (torch.randn(shape, generator=generator) * 0.1).to(dtype)
            for name, shape in tensor_shapes(config).items()}


def submission(tensors: dict[str, torch.Tensor] | None = None, config: ModelConfig = CONFIG,
               **files: bytes) -> SubmissionFiles:
    return SubmissionFiles(save(weights(config) if tensors is None else tensors), config, **files)


def assert_one_sentence(message: str) -> None:
    assert "\n" not in message and "Traceback" not in message
    assert message.endswith(".") and ". " not in message, message


def rejection(sub: SubmissionFiles, rules: BoardRules = RULES) -> str:
    with pytest.raises(SubmissionRejected) as info:
        check_submission(sub, rules)
    assert_one_sentence(str(info.value))
    return str(info.value)


class WouldRunCode:
    """Unpickling this makes a folder: proof that nothing unpickles a submission."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.mkdir, (str(self.marker),)


def test_a_good_submission_passes_and_reads_back_from_a_folder(tmp_path: Path) -> None:
    sub = submission(log=b'{"step": 10, "train_loss": 5.0, "val_loss": null}\n{"step": 20, "train_loss": 4.0}\n')
    check_submission(sub, RULES)
    (tmp_path / "model.safetensors").write_bytes(sub.weights)
    (tmp_path / "model_config.json").write_text('{"vocab_size": 300, "context_length": 32, "d_model": 16, '
                                                '"num_layers": 2, "num_heads": 2, "d_ff": 32, "rope_theta": 10000.0}')
    (tmp_path / "log.jsonl").write_bytes(sub.log or b"")
    (tmp_path / "checkpoint.pt").write_bytes(b"ignored: never read")
    read = read_submission(tmp_path)
    assert read == sub
    assert [r["step"] for r in training_log(read)] == [10, 20]
    assert "weights" not in repr(read)  # megabytes of bytes stay out of reprs and logs


@pytest.mark.parametrize("kind", ["pickle", "torch.save", "legacy torch.save"])
def test_pickles_are_refused_without_being_opened(tmp_path: Path, kind: str) -> None:
    marker = tmp_path / "unpickled"
    payload = {"model": weights(), "trap": WouldRunCode(marker)}
    buffer = io.BytesIO()
    if kind == "pickle":
        buffer.write(pickle.dumps(payload, protocol=4))
    else:
        torch.save(payload, buffer, _use_new_zipfile_serialization=kind == "torch.save")
    folder = tmp_path / "sub"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(buffer.getvalue())
    (folder / "model_config.json").write_bytes(CONFIG_JSON)
    sub = read_submission(folder)
    message = rejection(sub)
    expected = ("a zip archive (what torch.save writes)" if kind == "torch.save"
                else "a Python pickle, which is never loaded")
    assert message.startswith(f"model.safetensors is {expected}, not safetensors: save the weights with "
                              "safetensors.torch.save_file")
    with pytest.raises(SubmissionRejected):
        content_hash(sub)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "does not start with a valid header length"),
        (b"hello, these are not weights at all", "does not start with a valid header length"),
        ((5).to_bytes(8, "little") + b"[1,2]", "its header is not a JSON object"),
        ((2).to_bytes(8, "little") + b"{}" + b"extra", "its size does not match its header"),
    ],
)
def test_garbage_is_not_safetensors(data: bytes, expected: str) -> None:
    assert expected in rejection(submission_from_bytes(data, CONFIG_JSON))


def test_truncated_and_doctored_headers_are_refused() -> None:
    data = save(weights())
    assert "is not a valid safetensors file" in rejection(submission_from_bytes(data[:-4], CONFIG_JSON))
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + size])
    header["ln_final.weight"]["data_offsets"][1] += 4  # claims more bytes than its shape needs
    doctored = json.dumps(header).encode()
    doctored_file = len(doctored).to_bytes(8, "little") + doctored + data[8 + size :]
    assert rejection(submission_from_bytes(doctored_file, CONFIG_JSON)) == (
        "model.safetensors is not a valid safetensors file (the entry of tensor 'ln_final.weight' is malformed)."
    )


def test_integer_weights_are_refused() -> None:
    tensors = weights()
    tensors["ln_final.weight"] = torch.ones(16, dtype=torch.int64)
    assert rejection(submission(tensors)) == (
        "Tensor 'ln_final.weight' in model.safetensors is I64; weights must be F32, F16 or BF16."
    )


def test_half_precision_weights_are_accepted() -> None:
    check_submission(submission(weights(dtype=torch.bfloat16)), RULES)
    check_submission(submission(weights(dtype=torch.float16)), RULES)


def test_weights_that_do_not_match_the_config() -> None:
    wider = weights(CONFIG.model_copy(update={"d_model": 32}))
    assert rejection(submission(wider)) == (
        "Tensor 'token_embeddings.weight' has shape (300, 32), but model_config.json implies (300, 16); "
        "and 20 more mismatches."
    )
    tensors = weights()
    del tensors["layers.1.ffn.w3.weight"]
    assert rejection(submission(tensors)) == "Tensor 'layers.1.ffn.w3.weight' is missing from model.safetensors, but " \
        "model_config.json implies it."
    tensors = weights()
    tensors["layers.2.ln1.weight"] = torch.ones(16)
    assert rejection(submission(tensors)) == "model.safetensors has a tensor 'layers.2.ln1.weight' that " \
        "model_config.json does not imply."


def test_tied_embeddings_and_lm_head_must_agree() -> None:
    tied = CONFIG.model_copy(update={"tie_embeddings": True})
    untied_weights = weights()
    assert "a tied model stores only token_embeddings.weight" in rejection(submission(untied_weights, tied))
    del untied_weights["lm_head.weight"]
    assert "set tie_embeddings to true" in rejection(submission(untied_weights, CONFIG))
    check_submission(submission(untied_weights, tied), RULES)


@pytest.mark.parametrize(("value", "dtype"), [(float("nan"), torch.float32), (float("inf"), torch.bfloat16)])
def test_nan_and_infinite_weights_are_refused(value: float, dtype: torch.dtype) -> None:
    tensors = weights(dtype=dtype)
    tensors["layers.1.ffn.w2.weight"][3, 4] = value
    assert rejection(submission(tensors)) == "Tensor 'layers.1.ffn.w2.weight' in model.safetensors holds NaN or " \
        "infinite values."


def test_limits_on_size_parameters_and_context() -> None:
    sub = submission()
    assert parameter_count(CONFIG) == 300 * 16 * 2 + 2 * (2 * 16 + 4 * 16 * 16 + 3 * 16 * 32) + 16
    small = RULES.model_copy(update={"max_checkpoint_mb": 0.01})
    assert rejection(sub, small) == f"model.safetensors is {len(sub.weights) / 2**20:,.1f} MiB, over the board's " \
        "limit of 0.01 MiB."
    few = RULES.model_copy(update={"max_parameters": 1000})
    assert rejection(sub, few) == (
        f"The model has {parameter_count(CONFIG):,} parameters, over the board's limit of 1,000."
    )
    longer = RULES.model_copy(update={"context_length": 64, "stride": 64})
    assert rejection(sub, longer) == (
        "The model's context_length is 32, shorter than the 64 tokens the board evaluates at."
    )


def edited(old: bytes, new: bytes) -> bytes:
    assert old in CONFIG_JSON
    return CONFIG_JSON.replace(old, new)


@pytest.mark.parametrize(
    ("config_json", "expected"),
    [
        (b"{not json", "model_config.json is not valid JSON (Expecting property name enclosed in double quotes: "
         "line 1 column 2 (char 1))."),
        (b"[1, 2]", "model_config.json must hold a JSON object of model settings, not list."),
        (edited(b'"d_ff":32,', b""), "model_config.json: field 'd_ff' is required but missing."),
        (edited(b"{", b'{"dropout": 0.1, '), "model_config.json: unknown field 'dropout'."),
        (edited(b'"d_model":16', b'"d_model":"16"'),
         "model_config.json: field 'd_model': input should be a valid integer (got '16')."),
        (edited(b'"num_heads":2', b'"num_heads":3'), "model_config.json: d_model=16 is not divisible by num_heads=3."),
        (edited(b'"rope_theta":10000.0', b'"rope_theta":NaN'),
         "model_config.json: field 'rope_theta': input should be a finite number (got nan)."),
        (edited(b'"norm":"pre"', b'"norm":"sandwich"'),
         "model_config.json: field 'norm': input should be 'pre' or 'post' (got 'sandwich')."),
    ],
)
def test_bad_configs_are_one_sentence(config_json: bytes, expected: str) -> None:
    with pytest.raises(SubmissionRejected) as info:
        submission_from_bytes(save(weights()), config_json)
    assert str(info.value) == expected


def test_tokenizer_files_are_checked_against_the_model() -> None:
    vocab = {chr(i): i for i in range(33, 127)} | {"<|endoftext|>": 299}
    sub = submission(vocab=json.dumps(vocab).encode(), merges=b"#version: 0.2\n")
    check_submission(sub, RULES)
    too_big = json.dumps(vocab | {"<|endoftext|>": 300}).encode()
    assert rejection(submission(vocab=too_big, merges=b"")) == "vocab.json has ids from 33 to 300, but the model's " \
        "vocab_size is 300 (ids 0 to 299)."
    no_eot = json.dumps({chr(i): i for i in range(33, 127)}).encode()
    assert rejection(submission(vocab=no_eot, merges=b"")) == "vocab.json has no '<|endoftext|>' token, which the " \
        "evaluator puts between documents."
    assert rejection(submission(vocab=b'{"a": "1"}', merges=b"")) == "vocab.json must map each token to an integer " \
        "id, as GPT-2's encoder.json does."
    with pytest.raises(SubmissionRejected, match="^A tokenizer needs both vocab.json and merges.txt, but the "
                                                 "submission has vocab.json without merges.txt.$"):
        submission_from_bytes(save(weights()), CONFIG_JSON, vocab=json.dumps(vocab).encode())


def test_a_malformed_log_is_refused() -> None:
    assert rejection(submission(log=b'{"step": 1}\nnot json\n')) == "Line 2 of log.jsonl is not a JSON object with " \
        "an integer 'step', as train.py writes."


def test_reading_a_folder_that_lacks_files(tmp_path: Path) -> None:
    with pytest.raises(SubmissionRejected, match="is not a folder"):
        read_submission(tmp_path / "nowhere")
    (tmp_path / "model.safetensors").write_bytes(save(weights()))
    with pytest.raises(SubmissionRejected, match="has no model_config.json.$"):
        read_submission(tmp_path)


def test_content_hash_follows_the_weights_not_the_file_layout() -> None:
    tensors = weights()
    base = content_hash(submission(tensors))
    reordered = dict(reversed(list(tensors.items())))
    relabelled = SubmissionFiles(save(reordered, metadata={"note": "same weights"}), CONFIG, log=b'{"step": 1}\n')
    assert content_hash(relabelled) == base
    changed = dict(tensors)
    changed["ln_final.weight"] = tensors["ln_final.weight"].clone()
    changed["ln_final.weight"][0] += 1
    assert content_hash(submission(changed)) != base
    assert content_hash(submission(tensors, CONFIG.model_copy(update={"norm": "post"}))) != base
    assert content_hash(submission(tensors, vocab=b"{}", merges=b"")) != base
    assert content_hash(submission(tensors, vocab=b"", merges=b"{}")) != content_hash(submission(tensors, vocab=b"{}",
                                                                                                 merges=b""))


def test_the_expected_tensors_are_the_reference_models() -> None:
    course = Course.load(REPO)
    for config in (CONFIG, CONFIG.model_copy(update={"tie_embeddings": True, "norm": "post"})):
        model = build_model(config, course)
        state = {name: tuple(t.shape) for name, t in model.state_dict().items()}
        if config.tie_embeddings:
            assert model.lm_head.weight is model.token_embeddings.weight
            del state["lm_head.weight"]
        assert state == tensor_shapes(config)
        assert sum(p.numel() for p in model.parameters()) == parameter_count(config)


def test_tokenizer_files_round_trip_through_the_reference_tokenizer(tmp_path: Path) -> None:
    package = reference_package(Course.load(REPO))
    tokenizer_module = importlib.import_module(f"{package.__name__}.tokenizer")
    corpus = tmp_path / "corpus.txt"
    text = "the café serves naïve tea\n\nthe cat sat<|endoftext|>the dog ran — 12 times!\n" * 20
    corpus.write_text(text, encoding="utf-8")
    vocab, merges = package.train_bpe(corpus, 290, ["<|endoftext|>"], num_workers=1)
    vocab_json, merges_txt = tokenizer_files(vocab, merges)
    (tmp_path / "vocab.json").write_bytes(vocab_json)
    (tmp_path / "merges.txt").write_bytes(merges_txt)
    loaded = tokenizer_module.Tokenizer.from_files(tmp_path / "vocab.json", tmp_path / "merges.txt", ["<|endoftext|>"])
    direct = tokenizer_module.Tokenizer(vocab, merges, ["<|endoftext|>"])
    assert loaded.encode(text) == direct.encode(text)
    assert loaded.vocab == direct.vocab
    spell = tokenizer_module.gpt2_bytes_to_unicode()
    assert json.loads(vocab_json) == {"".join(spell[b] for b in token): i for i, token in vocab.items()}
