"""Packed instruction-tuning data: every document formatted, tokenized and concatenated, then cut
into fixed-length windows, so no token of a batch is padding."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from .prompts import instruction_prompt


class PackedSFTDataset(Dataset):
    """Windows of ``seq_length`` tokens over the concatenated documents of a JSONL file.

    Each line holds ``{"prompt", "response"}``; a document is the instruction template around
    them followed by the end-of-sequence token. Window i holds ``input_ids`` = tokens
    [i·L, (i+1)·L) and ``labels`` = the same shifted by one; the tail that does not fill a window
    is dropped. ``shuffle`` shuffles the documents (seeded) before concatenation.
    """

    def __init__(self, tokenizer: Any, dataset_path: str | Path, seq_length: int, shuffle: bool, seed: int = 0) -> None:
        if seq_length < 1:
            raise ValueError(f"seq_length must be positive, not {seq_length}")
        if tokenizer.eos_token_id is None:
            raise ValueError("packing needs a tokenizer with an end-of-sequence token between documents")
        # BEGIN SOLUTION problem=packed_sft_dataset
        with open(dataset_path, encoding="utf-8") as file:
            examples = [json.loads(line) for line in file if line.strip()]
        if shuffle:
            random.Random(seed).shuffle(examples)
        texts = [instruction_prompt(e["prompt"]) + e["response"] for e in examples]
        stream: list[int] = []
        for ids in tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else []:
            stream.extend(ids)
            stream.append(tokenizer.eos_token_id)
        self.tokens = torch.tensor(stream, dtype=torch.long)
        self.seq_length = seq_length
        # END SOLUTION

    def __len__(self) -> int:
        # BEGIN SOLUTION problem=packed_sft_dataset
        return max(len(self.tokens) - 1, 0) // self.seq_length
        # END SOLUTION

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        # BEGIN SOLUTION problem=packed_sft_dataset
        if not 0 <= i < len(self):
            raise IndexError(f"window {i} out of range for {len(self)} windows")
        start = i * self.seq_length
        return {
            "input_ids": self.tokens[start : start + self.seq_length],
            "labels": self.tokens[start + 1 : start + self.seq_length + 1],
        }
        # END SOLUTION


def iterate_batches(dataset: Dataset, batch_size: int, shuffle: bool) -> Iterator[dict[str, Tensor]]:
    """One epoch of batches of ``dataset`` (the last may be smaller); ``len`` = ceil(N / batch_size)."""
    # BEGIN SOLUTION problem=packed_sft_dataset
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle)
    # END SOLUTION
