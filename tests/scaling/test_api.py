"""The HTTP API under uvicorn on loopback, on SQLite and PostgreSQL: every endpoint, every refusal
as a 4xx with one sentence, and a seeded generator of malformed requests that must never get a 500.

Hypothesis is not installed in the toolkit's environment, so the generator is our own: it walks
the request bodies declared in the app's OpenAPI document and mutates a valid body in every way a
client can get wrong (missing, extra and mistyped fields, out-of-range and non-finite numbers,
wrong top-level types, broken or deeply nested JSON, wrong content types), plus malformed paths,
queries and Authorization headers.
"""

from __future__ import annotations

import json
import random
import re
from typing import Any

import httpx
import pytest

from lmcourse.grader.scaling.client import ScalingAPIError, ScalingClient

from .conftest import LiveServer

GOOD = {"d_model": 256, "num_layers": 4, "num_heads": 4, "batch_size": 32, "learning_rate": 2e-3, "train_tokens": 20_000_000}
SENTENCE = re.compile(r"[^\n]{3,400}\.")


def prediction_body(loss: float = 3.0) -> dict[str, Any]:
    n = 12 * 16 * 1024**2
    return {"config": {**GOOD, "d_model": 1024, "num_layers": 16, "num_heads": 16, "batch_size": 512,
                       "train_tokens": int(1e19 / (6 * n))}, "predicted_loss": loss}


def error_of(response: httpx.Response) -> str:
    """The one-sentence error of a refusal; fails the test if it is anything else."""
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    body = response.json()
    assert set(body) == {"error"}, body
    assert SENTENCE.fullmatch(body["error"]), body["error"]
    return body["error"]


@pytest.fixture
def keys(live_server: LiveServer) -> dict[str, str]:
    service = live_server.service
    return {"alice": service.add_student("alice"), "bob": service.add_student("bob"), "prof": service.add_student("prof", instructor=True)}


def test_a_students_session(live_server: LiveServer, keys: dict[str, str]) -> None:
    with ScalingClient(live_server.url, keys["alice"]) as client:
        info = client.info()
        assert info.backend == "simulated" and info.target_compute == 1e19
        first = client.submit(**GOOD)
        assert first.charged and first.experiment.status == "completed" and len(first.experiment.losses) == 10
        again = client.submit({**GOOD, "train_tokens": 2e7})
        assert not again.charged and again.experiment.id == first.experiment.id
        assert [e.id for e in client.experiments()] == [first.experiment.id]
        assert client.experiments("failed") == []
        assert client.experiment(first.experiment.id).final_loss == first.experiment.final_loss
        assert client.budget().spent == pytest.approx(first.experiment.cost)
        recorded = client.record_prediction(prediction_body()["config"], 3.05)
        assert recorded.revision == 1 and client.prediction().predicted_loss == 3.05
    with ScalingClient(live_server.url, keys["prof"]) as teacher:
        rows = {row.name: row for row in teacher.students()}
        assert rows["alice"].experiments["completed"] == 1 and rows["alice"].score is not None


def test_created_then_ok_for_a_duplicate(live_server: LiveServer, keys: dict[str, str]) -> None:
    headers = {"Authorization": f"Bearer {keys['alice']}"}
    with httpx.Client(base_url=live_server.url, headers=headers) as http:
        assert http.post("/v1/experiments", json=GOOD).status_code == 201
        assert http.post("/v1/experiments", json=GOOD).status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "body", "headers", "status", "words"),
    [
        ("GET", "/v1/budget", None, {}, 401, "missing API key"),
        ("GET", "/v1/budget", None, {"Authorization": "Bearer lmcs_wrong"}, 401, "unknown API key"),
        ("GET", "/v1/budget", None, {"Authorization": "Basic abc"}, 401, "must read 'Bearer <key>'"),
        ("GET", "/v1/instructor/students", None, "alice", 403, "only an instructor"),
        ("GET", "/v1/experiments/999", None, "alice", 404, "you have no experiment 999"),
        ("GET", "/v1/experiments/99999999999999999999999", None, "alice", 422, "less than or equal to"),
        ("GET", "/v1/experiments/abc", None, "alice", 422, "valid integer"),
        ("GET", "/v1/experiments?status=done", None, "alice", 422, "status"),
        ("GET", "/v1/prediction", None, "alice", 404, "not recorded a final prediction"),
        ("GET", "/v1/nowhere", None, "alice", 404, "is not an endpoint"),
        ("DELETE", "/v1/budget", None, "alice", 405, "not allowed"),
        ("POST", "/v1/experiments", {**GOOD, "num_heads": 3}, "alice", 422, "num_heads=3 does not divide d_model=256"),
        ("POST", "/v1/experiments", {**GOOD, "dropout": 0.1}, "alice", 422, "unknown field 'dropout'"),
        ("POST", "/v1/experiments", {k: v for k, v in GOOD.items() if k != "d_model"}, "alice", 422, "field 'd_model' is required"),
        ("POST", "/v1/experiments", {**GOOD, "d_model": 4096, "num_layers": 64, "train_tokens": 10**11}, "alice", 422,
         "largest allowed run"),
        ("POST", "/v1/experiments", b'{"d_model": 256,', "alice", 422, "not valid JSON"),
        ("POST", "/v1/experiments", b"[" * 5000, "alice", 400, "nested too deeply"),
        ("POST", "/v1/experiments", b'{"x": "' + b"a" * 70_000 + b'"}', "alice", 413, "larger than 64 KiB"),
        ("PUT", "/v1/prediction", {**prediction_body(), "predicted_loss": -1}, "alice", 422, "greater than 0"),
        ("PUT", "/v1/prediction", {"config": GOOD, "predicted_loss": 3.0}, "alice", 422, "but the target is"),
    ],
)
def test_refusals_are_4xx_with_one_sentence(
    live_server: LiveServer, keys: dict[str, str], method: str, path: str, body: Any, headers: Any, status: int, words: str
) -> None:
    if isinstance(headers, str):
        headers = {"Authorization": f"Bearer {keys[headers]}"}
    content = body if isinstance(body, bytes) else (json.dumps(body).encode() if body is not None else None)
    if content is not None:
        headers = {**headers, "Content-Type": "application/json"}
    response = httpx.request(method, live_server.url + path, content=content, headers=headers)
    assert response.status_code == status, response.text[:300]
    assert words in error_of(response)


def test_over_budget_is_409_and_the_client_raises_it(live_server: LiveServer) -> None:
    key = live_server.service.add_student("poor", budget=1.0)
    with ScalingClient(live_server.url, key) as client, pytest.raises(ScalingAPIError) as caught:
        client.submit(**GOOD)
    assert caught.value.status == 409 and "of your budget remain" in str(caught.value)


def test_an_unreachable_server_is_one_sentence() -> None:
    with ScalingClient("http://127.0.0.1:9", "lmcs_x", timeout=2) as client, pytest.raises(ScalingAPIError) as caught:
        client.budget()
    assert caught.value.status == 0 and "cannot reach the scaling server" in str(caught.value)


# ---- generated bad input ----

WEIRD_VALUES: list[Any] = [
    None, True, False, "", "256", "NaN", -1, 0, 1, 2**31, 2**63, 10**30, -(10**30), 1e308, -1e-308, 0.5, 3.7,
    [], [1, 2], {}, {"a": 1}, "é\u0000\ud7ff", "x" * 1000,
]
RAW_BODIES = [
    b"", b"null", b"[]", b"42", b'"text"', b"{", b'{"d_model": NaN}', b'{"d_model": Infinity}', b"\xff\xfe\x00",
    b'{"d_model": 1e999}', b"{" * 3000, b'{"a":' * 2000, b'{"d_model": 256, "d_model": 512}',
]


def mutations(valid: dict[str, Any], rng: random.Random, count: int) -> list[bytes]:
    """``count`` request bodies, each a valid body with one to three things wrong, as JSON bytes."""
    bodies = []
    for _ in range(count):
        body: Any = json.loads(json.dumps(valid))
        for _ in range(rng.randint(1, 3)):
            target = body["config"] if isinstance(body, dict) and "config" in body and rng.random() < 0.5 else body
            if not isinstance(target, dict):
                break
            kind = rng.choice(["drop", "extra", "retype", "retype", "scale", "wrap"])
            key = rng.choice(sorted(target)) if target else "x"
            if kind == "drop":
                target.pop(key, None)
            elif kind == "extra":
                target[rng.choice(["dropout", "", "é", "d_model ", "__class__"])] = rng.choice(WEIRD_VALUES)
            elif kind == "retype":
                target[key] = rng.choice(WEIRD_VALUES)
            elif kind == "scale" and isinstance(target.get(key), int | float) and not isinstance(target.get(key), bool):
                target[key] = target[key] * rng.choice([-1, 0, 1e-9, 1e9, 1e300])
            elif kind == "wrap":
                body = rng.choice([[body], {"config": body}, json.dumps(body)])
        bodies.append(json.dumps(body).encode())
    return bodies


def test_generated_bad_requests_never_get_a_500(live_server: LiveServer, keys: dict[str, str]) -> None:
    rng = random.Random(1234)
    auth = {"Authorization": f"Bearer {keys['alice']}"}
    with httpx.Client(base_url=live_server.url, timeout=30) as http:
        spec = http.get("/openapi.json").json()
        valid = {"/v1/experiments": GOOD, "/v1/prediction": prediction_body()}
        requests: list[tuple[str, str, bytes | None, dict[str, str]]] = []
        for path, operations in spec["paths"].items():
            for method, operation in operations.items():
                if "requestBody" in operation:
                    json_header = {**auth, "Content-Type": "application/json"}
                    requests += [(method, path, body, json_header) for body in mutations(valid[path], rng, 150)]
                    requests += [(method, path, body, json_header) for body in RAW_BODIES]
                    requests += [(method, path, json.dumps(valid[path]).encode(), {**auth, "Content-Type": ct})
                                 for ct in ("text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin-1")]
        for raw in ["0", "-1", "1.5", "1e3", "%00", "9" * 40, "é", "1;drop", "%20"]:
            requests.append(("get", f"/v1/experiments/{raw}", None, auth))
            requests.append(("get", f"/v1/experiments?status={raw}", None, auth))
        for header in [b"", b"Bearer", b"bearer x", "Bearer \u00e9\u00e9".encode(), b"Bearer \xff", b"Token abc", b"Bearer " + b"k" * 5000]:
            requests.append(("get", "/v1/budget", None, {"Authorization": header}))  # type: ignore[dict-item]
        statuses: dict[int, int] = {}
        for method, path, body, headers in requests:
            response = http.request(method.upper(), path, content=body, headers=headers)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            assert response.status_code < 500, (method, path, body[:200] if body else None, response.text[:300])
            if response.status_code >= 400:
                error_of(response)
    assert len(requests) > 350
    assert statuses.get(422, 0) > 200 and statuses.get(401, 0) >= 6  # the generator reaches validation and auth
