"""The student's Python client of the training API (httpx; no server dependencies).

    from lmcourse.grader.scaling.client import ScalingClient

    client = ScalingClient.from_env()            # $LMCOURSE_SCALING_URL, $LMCOURSE_SCALING_KEY
    run = client.submit(d_model=256, num_layers=4, num_heads=4, batch_size=64,
                        learning_rate=2e-3, train_tokens=50_000_000)
    print(run.experiment.final_loss, client.budget().remaining)

Every refusal of the server raises :class:`ScalingAPIError` with the server's sentence and
status; an unreachable server raises :class:`ScalingAPIError` too, with status 0.
"""

from __future__ import annotations

import os
import time
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, TypeAdapter

from ..errors import LmcourseError
from .config import ExperimentConfig
from .schemas import BudgetView, ExperimentView, InfoView, PredictionView, StudentOverview, SubmitResult

URL_ENV = "LMCOURSE_SCALING_URL"
KEY_ENV = "LMCOURSE_SCALING_KEY"
DEFAULT_URL = "http://127.0.0.1:8100"

T = TypeVar("T")


class ScalingAPIError(LmcourseError):
    """The server refused a request (``status`` is its HTTP status) or could not be reached (``status`` 0)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class ScalingClient:
    def __init__(self, url: str, key: str | None, timeout: float = 30.0, transport: httpx.BaseTransport | None = None) -> None:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.url = url.rstrip("/")
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout, transport=transport)

    @classmethod
    def from_env(cls, url: str | None = None, key: str | None = None) -> ScalingClient:
        """A client for ``url`` and ``key``, else ``$LMCOURSE_SCALING_URL`` and ``$LMCOURSE_SCALING_KEY``."""
        key = key or os.environ.get(KEY_ENV)
        if not key:
            raise LmcourseError(f"no API key: pass --key or set ${KEY_ENV} to the key the staff gave you.")
        return cls(url or os.environ.get(URL_ENV) or DEFAULT_URL, key)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> ScalingClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(self, method: str, path: str, as_type: type[T] | Any, json: Any = None) -> T:
        try:
            response = self.http.request(method, path, json=json)
        except httpx.HTTPError as exc:
            raise ScalingAPIError(f"cannot reach the scaling server at {self.url} ({type(exc).__name__}: {exc}).", 0) from None
        if response.status_code >= 400:
            try:
                message = response.json()["error"]
            except (ValueError, KeyError, TypeError):
                message = f"the server answered {response.status_code} {response.reason_phrase}."
            raise ScalingAPIError(message, response.status_code)
        return TypeAdapter(as_type).validate_python(response.json())

    # ---- students ----

    def info(self) -> InfoView:
        return self._request("GET", "/v1/info", InfoView)

    def submit(self, config: ExperimentConfig | dict[str, Any] | None = None, **fields: Any) -> SubmitResult:
        """Submit a config (an :class:`ExperimentConfig`, a dict, or keyword fields); see :class:`SubmitResult`."""
        body = _dump(config) if config is not None else fields
        return self._request("POST", "/v1/experiments", SubmitResult, json=body)

    def experiments(self, status: str | None = None) -> list[ExperimentView]:
        path = "/v1/experiments" + (f"?status={status}" if status else "")
        return self._request("GET", path, list[ExperimentView])

    def experiment(self, experiment_id: int) -> ExperimentView:
        return self._request("GET", f"/v1/experiments/{int(experiment_id)}", ExperimentView)

    def wait(self, experiment_id: int, timeout: float = 3600.0, poll: float = 2.0) -> ExperimentView:
        """Poll until the experiment is completed or failed; ScalingAPIError after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            experiment = self.experiment(experiment_id)
            if experiment.done:
                return experiment
            if time.monotonic() > deadline:
                raise ScalingAPIError(f"experiment {experiment_id} is still {experiment.status} after {timeout:g} s.", 0)
            time.sleep(poll)

    def budget(self) -> BudgetView:
        return self._request("GET", "/v1/budget", BudgetView)

    def record_prediction(self, config: ExperimentConfig | dict[str, Any], predicted_loss: float) -> PredictionView:
        """Record the final prediction; it replaces any earlier one."""
        body = {"config": _dump(config), "predicted_loss": predicted_loss}
        return self._request("PUT", "/v1/prediction", PredictionView, json=body)

    def prediction(self) -> PredictionView:
        return self._request("GET", "/v1/prediction", PredictionView)

    # ---- instructors ----

    def students(self) -> list[StudentOverview]:
        return self._request("GET", "/v1/instructor/students", list[StudentOverview])


def _dump(config: BaseModel | dict[str, Any]) -> dict[str, Any]:
    return config.model_dump(mode="json") if isinstance(config, BaseModel) else dict(config)

