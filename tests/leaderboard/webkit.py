"""What the web and browser tests share: checkpoints with a planted score, and a live server.

Where a test is about the web app, not about evaluation, the evaluator is :class:`PlantedScore`:
it reads the bits per byte the test planted in the checkpoint (the gain of ``ln_final``), so a
test decides the ranking by what it uploads. The checks before evaluation are the real ones.
"""

from __future__ import annotations

import json
import math
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from html.parser import HTMLParser

import uvicorn
from fastapi import FastAPI
from safetensors.torch import load, save

from lmcourse.leaderboard.checkpoint import SubmissionFiles
from lmcourse.leaderboard.config import BoardRules, ModelConfig
from lmcourse.leaderboard.evaluate import Evaluation
from lmcourse.leaderboard.store import Store

from .factories import TINY, byte_tokenizer, tensors

BOARD = "basics"
RULES = BoardRules(context_length=16, stride=8, daily_quota=5, max_eval_bytes=2000)


def training_log(steps: int = 20) -> bytes:
    """A log as reference/basics/train.py's RunLog writes it: validation loss every 5th step."""
    records = [
        {"step": s, "train_loss": 5.5 - s / 10, "val_loss": 5.6 - s / 10 if s % 5 == 0 else None, "lr": 1e-3}
        for s in range(1, steps + 1)
    ]
    return "".join(json.dumps(r) + "\n" for r in records).encode()


def checkpoint(bits_per_byte: float, seed: int = 0, *, config: ModelConfig = TINY, log: bool = True,
               tokenizer: bool = False) -> dict[str, bytes]:
    """The upload parts of a tiny reference model that :class:`PlantedScore` scores ``bits_per_byte``."""
    weights = tensors(seed, config)
    weights["ln_final.weight"].fill_(bits_per_byte)
    parts = {"weights": save(weights), "config": config.model_dump_json().encode()}
    if log:
        parts["log"] = training_log()
    if tokenizer:
        parts["vocab"], parts["merges"] = byte_tokenizer()
    return parts


def files(parts: dict[str, bytes]) -> dict[str, tuple[str, bytes]]:
    """httpx's ``files=`` for upload parts, under the file names a training run writes."""
    names = {"weights": "model.safetensors", "config": "model_config.json", "vocab": "vocab.json",
             "merges": "merges.txt", "log": "log.jsonl"}
    return {part: (names.get(part, part), data) for part, data in parts.items()}


class PlantedScore:
    """An evaluator that scores a checkpoint by its ``ln_final`` gain, counting its calls."""

    def __init__(self) -> None:
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self, sub: SubmissionFiles, rules: BoardRules) -> Evaluation:
        with self._lock:
            self.calls += 1
        weights = load(sub.weights)
        bits_per_byte = float(weights["ln_final.weight"][0])
        loss = bits_per_byte * math.log(2) * 4  # as if every token were 4 bytes of text
        return Evaluation(loss=loss, perplexity=math.exp(loss), bits_per_byte=bits_per_byte, tokens=1000,
                          bytes=4000, parameters=sum(t.numel() for t in weights.values()), seconds=0.01,
                          device="cpu")


@dataclass(frozen=True)
class Roster:
    """A board with students: their tokens by student id, the staff token, and the store."""

    store: Store
    tokens: dict[str, str]
    staff_token: str

    def auth(self, student_id: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[student_id]}"}

    @property
    def staff(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.staff_token}"}


def open_roster(store: Store, students: dict[str, str], *, rules: BoardRules = RULES) -> Roster:
    """Board ``basics`` on ``store``, the ``students`` (id -> display name) and one staff member."""
    store.add_board(BOARD, "basics", rules)
    tokens = {student_id: store.add_student(student_id, name) for student_id, name in students.items()}
    return Roster(store, tokens, store.add_student("ta01", "Teaching Assistant", staff=True))


@dataclass(frozen=True)
class LiveServer:
    url: str
    server: uvicorn.Server


@contextmanager
def live_server(app: FastAPI) -> Iterator[LiveServer]:
    """``app`` under a real uvicorn on a free loopback port, in a background thread, for the block."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))  # the kernel picks the port and it stays ours: no race with other tests
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        for _ in range(300):
            if server.started or not thread.is_alive():
                break
            threading.Event().wait(0.05)
        if not server.started:
            raise RuntimeError("uvicorn did not start within 15 s")
        yield LiveServer(f"http://127.0.0.1:{port}", server)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


class _TableReader(HTMLParser):
    """The text of every cell of the first ``<table class="ranking">``, row by row."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._depth = 0  # > 0 inside the ranking table
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table" and ("class", "ranking") in attrs and not self.rows:
            self._depth = 1
        elif self._depth and tag == "tr":
            self.rows.append([])
        elif self._depth and tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if self._depth and tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "table":
            self._depth = 0

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def ranking_rows(html: str) -> list[dict[str, str]]:
    """The ranking table of a board page as dicts keyed by column header (caption excluded)."""
    reader = _TableReader()
    reader.feed(html)
    if not reader.rows:
        return []
    header, *rows = reader.rows
    return [dict(zip(header, row, strict=True)) for row in rows]
