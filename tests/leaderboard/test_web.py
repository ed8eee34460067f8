"""The web app over HTTP, on SQLite and on PostgreSQL: submissions, refusals, staff switches, pages, curves."""

from __future__ import annotations

import html
import io
import json
import pickle
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image

from lmcourse.leaderboard.checkpoint import SubmissionFiles, submission_from_bytes
from lmcourse.leaderboard.config import BoardRules
from lmcourse.leaderboard.curves import EmptyLog, learning_curve_png, read_log
from lmcourse.leaderboard.evaluate import Evaluation, evaluate_submission
from lmcourse.leaderboard.store import Store
from lmcourse.leaderboard.web import create_app

from .factories import byte_tokenizer, course_with_board, write_validation_text
from .webkit import BOARD, RULES, PlantedScore, Roster, checkpoint, files, live_server, open_roster, ranking_rows

STUDENTS = {"s001": "Ada L.", "s002": "Grace H.", "s003": "Alan T."}


@pytest.fixture
def roster(store: Store) -> Roster:
    return open_roster(store, STUDENTS)


@pytest.fixture
def evaluator() -> PlantedScore:
    return PlantedScore()


@pytest.fixture
def client(roster: Roster, evaluator: PlantedScore) -> Iterator[TestClient]:
    with TestClient(create_app(roster.store, evaluator, title="CS336 leaderboards")) as test_client:
        yield test_client


def submit(client: TestClient, roster: Roster, student: str, parts: dict[str, bytes]) -> httpx.Response:
    return client.post(f"/api/boards/{BOARD}/submissions", files=files(parts), headers=roster.auth(student))


def public_ids(client: TestClient) -> list[int]:
    return [e["id"] for e in client.get(f"/api/boards/{BOARD}").json()["entries"]]


def stored(store: Store) -> int:
    """Submissions on the board (none of these tests hides one before counting)."""
    return store.board(BOARD).entries


# ------------------------------------------------------------------------------------ submissions


def test_a_submission_is_scored_by_the_real_evaluator(store: Store, tmp_path: Path) -> None:
    course = course_with_board(tmp_path / "course")
    data = tmp_path / "data"
    write_validation_text(data)
    roster = open_roster(store, STUDENTS)
    app = create_app(store, lambda sub, rules: evaluate_submission(sub, rules, course, data_dir=data, device="cpu"))
    parts = checkpoint(1.0, seed=3, tokenizer=True)
    with TestClient(app) as client:
        response = submit(client, roster, "s001", parts)
        assert response.status_code == 201, response.text
        entry = response.json()
        detail = client.get(f"/api/entries/{entry['id']}").json()

    sub = submission_from_bytes(parts["weights"], parts["config"], parts["vocab"], parts["merges"])
    direct = evaluate_submission(sub, RULES, course, data_dir=data, device="cpu")
    assert entry == {
        "rank": 1, "id": entry["id"], "board": BOARD, "name": "Ada L.", "student_id": "s001", "hidden": False,
        "bits_per_byte": direct.bits_per_byte, "loss": direct.loss, "perplexity": direct.perplexity,
        "parameters": direct.parameters, "submitted_at": entry["submitted_at"], "verified": True,
    }
    assert (detail["tokens"], detail["bytes"], detail["device"]) == (direct.tokens, direct.bytes, "cpu")
    assert detail["config"] == json.loads(parts["config"]) and detail["has_log"] is True
    assert "student_id" not in detail  # the public never sees student ids


def test_identical_weights_are_one_entry(client: TestClient, roster: Roster, evaluator: PlantedScore) -> None:
    first = submit(client, roster, "s001", checkpoint(1.2))
    again = submit(client, roster, "s001", checkpoint(1.2))
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert evaluator.calls == 1 and stored(roster.store) == 1


def test_tokens_are_checked_before_anything_is_read(client: TestClient, roster: Roster,
                                                    evaluator: PlantedScore) -> None:
    url = f"/api/boards/{BOARD}/submissions"
    for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic czAwMTpwdw=="}):
        response = client.post(url, files=files(checkpoint(1.0)), headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["error"].endswith(".")
    assert evaluator.calls == 0 and stored(roster.store) == 0


def test_the_daily_quota_is_429(store: Store, evaluator: PlantedScore) -> None:
    roster = open_roster(store, STUDENTS, rules=RULES.model_copy(update={"daily_quota": 2}))
    with TestClient(create_app(store, evaluator)) as client:
        codes = [submit(client, roster, "s001", checkpoint(1.0 + i / 10, seed=i)).status_code for i in range(3)]
        refused = submit(client, roster, "s001", checkpoint(2.0, seed=9))
        other = submit(client, roster, "s002", checkpoint(2.0, seed=9))  # the quota is per student
    assert codes == [201, 201, 429] and refused.status_code == 429 and other.status_code == 201
    assert "all 2 of today's submissions" in refused.json()["error"]
    assert stored(store) == 3


def test_a_checkpoint_over_the_boards_limit_is_413(store: Store, evaluator: PlantedScore) -> None:
    roster = open_roster(store, STUDENTS, rules=RULES.model_copy(update={"max_checkpoint_mb": 0.02}))
    with TestClient(create_app(store, evaluator)) as client:
        response = submit(client, roster, "s001", checkpoint(1.0))  # ~43 KiB of weights
    assert response.status_code == 413
    assert response.json()["error"] == (
        f"model.safetensors is {len(checkpoint(1.0)['weights']) / 2**20:.1f} MiB; board 'basics' takes at most "
        "0.02 MiB."
    )
    assert evaluator.calls == 0 and stored(store) == 0


def test_an_endless_upload_is_cut_off_at_the_limit(tmp_path: Path, evaluator: PlantedScore) -> None:
    """The body limit holds while streaming: the server answers 413 long before the client is done."""
    with Store.open(f"sqlite:///{tmp_path / 'lb.db'}") as store:
        roster = open_roster(store, STUDENTS, rules=RULES.model_copy(update={"max_checkpoint_mb": 1}))
        with live_server(create_app(store, evaluator)) as server:
            status, body, sent = _stream_chunked(server.url, f"/api/boards/{BOARD}/submissions",
                                                 roster.tokens["s001"], offered=400 * 2**20)
        assert status == 413 and "checkpoints of at most 1 MiB" in json.loads(body)["error"]
        assert sent < 200 * 2**20  # the limit is 1 MiB plus 97 MiB for tokenizer, log and config
        assert evaluator.calls == 0 and stored(store) == 0


def _stream_chunked(base: str, path: str, token: str, *, offered: int) -> tuple[int, bytes, int]:
    """POST a multipart body of ``offered`` bytes in 1 MiB chunks until the server answers; (status, body, sent)."""
    host, port = base.removeprefix("http://").split(":")
    boundary = "lmcourse-test-boundary"
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="weights"; filename="model.safetensors"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n").encode()
    chunk = b"\0" * 2**20
    with socket.create_connection((host, int(port)), timeout=60) as conn:
        conn.sendall((f"POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
                      f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
                      "Transfer-Encoding: chunked\r\n\r\n").encode())
        sent = 0
        conn.setblocking(False)
        answer = b""
        for payload in [head, *([chunk] * (offered // len(chunk)))]:
            try:
                answer += conn.recv(65536)
                break  # the server has answered: stop sending
            except BlockingIOError:
                pass
            framed = f"{len(payload):x}\r\n".encode() + payload + b"\r\n"
            conn.settimeout(60)
            try:
                conn.sendall(framed)
            except (BrokenPipeError, ConnectionResetError):
                break
            conn.setblocking(False)
            sent += len(payload)
        conn.settimeout(60)
        while b"\r\n\r\n" not in answer or len(answer.split(b"\r\n\r\n", 1)[1]) < _length(answer):
            data = conn.recv(65536)
            if not data:
                break
            answer += data
    status = int(answer.split(b" ", 2)[1])
    return status, answer.split(b"\r\n\r\n", 1)[1], sent


def _length(answer: bytes) -> int:
    for line in answer.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


@pytest.mark.parametrize("case", ["pickle", "torch.save", "wrong shapes", "nan", "no config", "bad json"])
def test_bad_checkpoints_are_400_and_stored_nowhere(client: TestClient, roster: Roster, evaluator: PlantedScore,
                                                    case: str) -> None:
    parts = checkpoint(1.0)
    if case == "pickle":
        parts["weights"] = pickle.dumps({"token_embeddings.weight": [[0.0]]})
    elif case == "torch.save":
        buffer = io.BytesIO()
        torch.save({"w": torch.zeros(2)}, buffer)
        parts["weights"] = buffer.getvalue()
    elif case == "wrong shapes":
        parts["config"] = json.dumps(json.loads(parts["config"]) | {"d_ff": 64}).encode()
    elif case == "nan":
        from safetensors.torch import load, save

        weights = load(parts["weights"])
        weights["ln_final.weight"][3] = float("nan")
        parts["weights"] = save(weights)
    elif case == "no config":
        del parts["config"]
    else:
        parts["config"] = b"{vocab_size: 257"
    response = submit(client, roster, "s001", parts)
    assert response.status_code == 400, response.text
    message = response.json()["error"]
    assert message.endswith(".") and "\n" not in message and "Traceback" not in message
    expected = {"pickle": "pickle", "torch.save": "torch.save", "wrong shapes": "shape", "nan": "NaN",
                "no config": "no 'config' part", "bad json": "not valid JSON"}[case]
    assert expected in message
    assert evaluator.calls == 0 and stored(roster.store) == 0


def test_uploads_that_are_not_a_submission_are_400(client: TestClient, roster: Roster) -> None:
    url = f"/api/boards/{BOARD}/submissions"
    as_json = client.post(url, json={"weights": "x"}, headers=roster.auth("s001"))
    assert as_json.status_code == 400 and "multipart/form-data" in as_json.json()["error"]
    extra = submit(client, roster, "s001", checkpoint(1.0) | {"notes": b"hi"})
    assert extra.status_code == 400 and extra.json()["error"].startswith("unexpected part 'notes'")
    half_tokenizer = submit(client, roster, "s001", checkpoint(1.0) | {"vocab": byte_tokenizer()[0]})
    assert half_tokenizer.status_code == 400 and "merges.txt" in half_tokenizer.json()["error"]


def test_evaluations_queue_behind_the_bound(tmp_path: Path) -> None:
    """Twelve uploads at once through a real server: at most two evaluations run together, none is lost."""
    running, most = 0, 0
    lock = threading.Lock()
    planted = PlantedScore()

    def slow(sub: SubmissionFiles, rules: BoardRules) -> Evaluation:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        threading.Event().wait(0.2)
        with lock:
            running -= 1
        return planted(sub, rules)

    students = {f"s{i:03}": f"Student {i}" for i in range(12)}
    with Store.open(f"sqlite:///{tmp_path / 'lb.db'}") as store:
        roster = open_roster(store, students)
        with live_server(create_app(store, slow, concurrent_evaluations=2)) as server:
            codes: list[int] = []

            def upload(i: int, student: str) -> None:
                response = httpx.post(f"{server.url}/api/boards/{BOARD}/submissions", timeout=120,
                                      files=files(checkpoint(1 + i / 100, seed=i)), headers=roster.auth(student))
                codes.append(response.status_code)

            threads = [threading.Thread(target=upload, args=(i, s)) for i, s in enumerate(students)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=120)
        assert sorted(codes) == [201] * 12
        assert most <= 2 and planted.calls == 12 and stored(store) == 12


# ------------------------------------------------------------------------------------------ staff


def test_staff_verify_and_hide_students_get_403(client: TestClient, roster: Roster) -> None:
    entry = submit(client, roster, "s001", checkpoint(1.1)).json()
    submit(client, roster, "s002", checkpoint(1.3, seed=2))
    for action in ("verify", "hide"):
        url = f"/api/entries/{entry['id']}/{action}"
        assert client.post(url, json={"value": True}, headers=roster.auth("s001")).status_code == 403
        assert client.post(url, json={"value": True}).status_code == 401
        assert client.post(url, json={"value": "yes"}, headers=roster.staff).status_code == 400

    unverified = client.post(f"/api/entries/{entry['id']}/verify", json={"value": False}, headers=roster.staff)
    assert unverified.status_code == 200 and unverified.json()["verified"] is False
    assert client.get(f"/api/boards/{BOARD}").json()["entries"][0]["verified"] is False
    assert "unverified" in client.get(f"/boards/{BOARD}").text

    hidden = client.post(f"/api/entries/{entry['id']}/hide", json={"value": True}, headers=roster.staff)
    assert hidden.status_code == 200 and hidden.json()["hidden"] is True
    # Gone from everything public, and the rest of the board moves up ...
    public = client.get(f"/api/boards/{BOARD}").json()["entries"]
    assert [(e["rank"], e["name"]) for e in public] == [(1, "Grace H.")]
    assert "Ada L." not in client.get(f"/boards/{BOARD}").text
    for path in (f"/api/entries/{entry['id']}", f"/entries/{entry['id']}", f"/entries/{entry['id']}/curve.png"):
        assert client.get(path).status_code == 404, path
    assert client.get("/api/boards").json()[0]["entries"] == 1
    # ... while staff still see it, flagged, with student ids.
    staff_view = client.get(f"/api/boards/{BOARD}", headers=roster.staff).json()["entries"]
    assert [(e["student_id"], e["hidden"]) for e in staff_view] == [("s001", True), ("s002", False)]
    assert client.get(f"/api/entries/{entry['id']}", headers=roster.staff).json()["hidden"] is True

    client.post(f"/api/entries/{entry['id']}/hide", json={"value": False}, headers=roster.staff)
    assert [e["name"] for e in client.get(f"/api/boards/{BOARD}").json()["entries"]] == ["Ada L.", "Grace H."]


# ------------------------------------------------------------------------------------------ pages


def test_the_board_page_ranks_best_first_by_display_name(client: TestClient, roster: Roster) -> None:
    submit(client, roster, "s001", checkpoint(1.25, seed=1))
    submit(client, roster, "s002", checkpoint(0.75, seed=2))
    submit(client, roster, "s003", checkpoint(1.5, seed=3))
    submit(client, roster, "s003", checkpoint(1.0, seed=4))  # Alan's better second try is the one that counts
    page = client.get(f"/boards/{BOARD}")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    rows = ranking_rows(page.text)
    assert [(r["rank"], r["name"], r["bits/byte"]) for r in rows] == [
        ("1", "Grace H.", "0.7500"), ("2", "Alan T.", "1.0000"), ("3", "Ada L.", "1.2500")]
    assert rows[0]["loss"] == f"{0.75 * 4 * 0.6931471805599453:.4f}" and rows[0]["status"] == "verified"
    assert rows[0]["parameters"] == f"{roster.store.ranking(BOARD)[0].parameters:,}"
    assert '<th scope="col"' in page.text and "<caption>" in page.text
    assert not any(student in page.text for student in STUDENTS)  # ids never appear on public pages

    boards = client.get("/")
    assert f'href="/boards/{BOARD}"' in boards.text and "CS336 leaderboards" in boards.text
    assert client.get("/static/leaderboard.css").headers["content-type"].startswith("text/css")


def test_the_entry_page_shows_the_config_and_the_curve(client: TestClient, roster: Roster) -> None:
    entry = submit(client, roster, "s001", checkpoint(1.1)).json()
    page = client.get(f"/entries/{entry['id']}")
    assert page.status_code == 200
    assert f'src="/entries/{entry["id"]}/curve.png"' in page.text
    assert "<th scope=\"row\">d_model</th><td><code>16</code></td>" in page.text.replace("\n", "")
    curve = client.get(f"/entries/{entry['id']}/curve.png")
    assert curve.status_code == 200 and curve.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(curve.content))
    image.verify()
    assert image.format == "PNG" and image.size == (640, 400)


def test_an_entry_without_a_log_has_no_curve(client: TestClient, roster: Roster) -> None:
    entry = submit(client, roster, "s001", checkpoint(1.1, log=False)).json()
    assert "No training log was submitted" in client.get(f"/entries/{entry['id']}").text
    missing = client.get(f"/entries/{entry['id']}/curve.png")
    assert missing.status_code == 404 and "without a training log" in missing.text


def test_names_are_escaped(store: Store, evaluator: PlantedScore) -> None:
    roster = open_roster(store, {"s666": "<script>alert(1)</script>"})
    with TestClient(create_app(store, evaluator)) as client:
        submit(client, roster, "s666", checkpoint(1.0))
        page = client.get(f"/boards/{BOARD}").text
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_links_carry_the_prefix_behind_a_reverse_proxy(roster: Roster, evaluator: PlantedScore) -> None:
    with TestClient(create_app(roster.store, evaluator), root_path="/leaderboard") as client:
        entry = client.post(f"/leaderboard/api/boards/{BOARD}/submissions", files=files(checkpoint(1.0)),
                            headers=roster.auth("s001")).json()
        board = client.get(f"/leaderboard/boards/{BOARD}").text
        assert f'href="/leaderboard/entries/{entry["id"]}"' in board
        assert 'href="/leaderboard/static/leaderboard.css"' in board
        assert f'src="/leaderboard/entries/{entry["id"]}/curve.png"' in client.get(f"/leaderboard/entries/{entry['id']}").text
        assert client.get("/leaderboard/static/leaderboard.css").status_code == 200


MISSING = {
    "/boards/nope": "there is no board 'nope' (boards: basics).",
    "/entries/999999": "there is no entry 999999.",
    "/entries/abc": "there is no page at /entries/abc.",
    "/entries/999999/curve.png": "there is no entry 999999.",
    "/nowhere": "there is no page at /nowhere.",
    "/api/boards/nope": "there is no board 'nope' (boards: basics).",
    "/api/entries/999999": "there is no entry 999999.",
    "/api/entries/abc": "there is no page at /api/entries/abc.",
    "/api/nowhere": "there is no page at /api/nowhere.",
}


def test_missing_things_are_404_and_say_what_is_missing(client: TestClient) -> None:
    for path, message in MISSING.items():
        response = client.get(path)
        assert response.status_code == 404, path
        if path.startswith("/api/"):
            assert response.json() == {"error": message}
        else:  # a page, the sentence capitalised
            assert response.headers["content-type"].startswith("text/html")
            assert message[0].upper() + message[1:] in html.unescape(response.text), path


def test_submitting_to_an_unknown_board_is_404(client: TestClient, roster: Roster) -> None:
    response = client.post("/api/boards/nope/submissions", files=files(checkpoint(1.0)), headers=roster.auth("s001"))
    assert response.status_code == 404 and response.json()["error"].startswith("there is no board 'nope'")


# ----------------------------------------------------------------------------------------- curves


def test_curves_skip_and_count_lines_they_cannot_read() -> None:
    good = [{"step": s, "train_loss": 4.0 - s / 10, "val_loss": 4.2 - s / 10 if s % 2 == 0 else None} for s in range(6)]
    lines = [json.dumps(r) for r in good] + ["not json", "[1, 2]", '{"step": "x", "train_loss": 1}',
                                             '{"step": 7, "train_loss": NaN}', ""]
    curves = read_log("\n".join(lines))
    assert curves.train == [(float(s), 4.0 - s / 10) for s in range(6)]
    assert curves.validation == [(float(s), 4.2 - s / 10) for s in (0, 2, 4)]
    assert curves.skipped == 4
    png = learning_curve_png("\n".join(lines).encode())
    assert Image.open(io.BytesIO(png)).size == (640, 400)
    with pytest.raises(EmptyLog, match=r"no record with a step and a loss \(2 lines unreadable\)"):
        learning_curve_png("garbage\n{}\n")
