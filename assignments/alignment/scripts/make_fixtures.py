"""Build the unit's fixtures offline: a character-level tokenizer and two tiny Llama models.

    python assignments/alignment/scripts/make_fixtures.py

- ``fixtures/tiny_tokenizer/`` (``tokenizer.json``, ``tokenizer_config.json``): one token per printable ASCII character and
  newline, plus ``<pad>`` (0) and ``<eos>`` (1); built with ``tokenizers``, no download.
- ``fixtures/tiny_llama/`` and ``fixtures/tiny_llama_ref/``: ``LlamaForCausalLM`` with 2 layers of
  width 32 over that vocabulary, random weights from seeds 0 and 1, as ``config.json`` +
  ``model.safetensors`` (~120 KB each). Tests load the weights instead of re-initializing from a
  seed, so they do not depend on how a transformers version initializes.
- ``fixtures/sft_tiny.jsonl``: instruction/response pairs for the packed SFT dataset.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SPECIALS = ["<pad>", "<eos>"]


def build_tokenizer() -> Tokenizer:
    vocab = {token: i for i, token in enumerate(SPECIALS)}
    for char in ["\n", *map(chr, range(32, 127))]:
        vocab[char] = len(vocab)
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<pad>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Split("", behavior="isolated")
    tokenizer.decoder = decoders.Fuse()
    tokenizer.add_special_tokens(SPECIALS)
    return tokenizer


def build_model(vocab_size: int, seed: int) -> LlamaForCausalLM:
    config = LlamaConfig(
        vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=1024, pad_token_id=0, eos_token_id=1, bos_token_id=1,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    return LlamaForCausalLM(config)


SFT_EXAMPLES = [
    {"prompt": "What is 2 + 3?", "response": "2 + 3 = 5. The answer is 5."},
    {"prompt": "Name a prime number.", "response": "7 is prime."},
    {"prompt": "Double 21.", "response": "21 * 2 = 42"},
    {"prompt": "Say hello.", "response": "Hello!"},
    {"prompt": "What comes after Monday?", "response": "Tuesday comes after Monday."},
    {"prompt": "Spell cat backwards.", "response": "tac"},
]


def main() -> None:
    (FIXTURES / "tiny_tokenizer").mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer()
    # save_pretrained also writes tokenizer_config.json, so AutoTokenizer (the training scripts) loads it.
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="<pad>", eos_token="<eos>").save_pretrained(
        FIXTURES / "tiny_tokenizer"
    )
    for name, seed in (("tiny_llama", 0), ("tiny_llama_ref", 1)):
        build_model(tokenizer.get_vocab_size(), seed).save_pretrained(FIXTURES / name)
    with open(FIXTURES / "sft_tiny.jsonl", "w", encoding="utf-8") as file:
        for example in SFT_EXAMPLES:
            file.write(json.dumps(example) + "\n")


if __name__ == "__main__":
    main()
