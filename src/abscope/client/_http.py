"""What the sync and async clients share about HTTP: settings, headers, the management calls
as plain descriptions, and how an answer becomes data or an error. Pure: no I/O."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from abscope import __version__
from abscope.client._errors import ApiError, ServerUnavailable

__all__ = ["Call", "Options", "calls", "decode", "describe_failure"]

DEFAULT_TIMEOUT = 2.0


@dataclass(frozen=True, slots=True)
class Options:
    """A client's settings (see :class:`abscope.client.Client` for their meaning)."""

    url: str
    api_key: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    local_evaluation: bool = True
    refresh_interval: float = 10.0
    flush_interval: float = 0.5
    batch_size: int = 500
    max_queue: int = 100_000
    close_timeout: float = 5.0
    retry_seconds: float = 2.0

    @classmethod
    def make(cls, url: str | None, api_key: str | None, **options: Any) -> Options:
        url = url or os.environ.get("ABSCOPE_URL")
        if not url:
            raise ValueError("url must be given (or ABSCOPE_URL set), e.g. http://127.0.0.1:8000")
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"url must start with http:// or https://, got {url!r}")
        key = api_key if api_key is not None else os.environ.get("ABSCOPE_API_KEY") or None
        made = cls(url.rstrip("/"), key, **options)
        for name in ("timeout", "refresh_interval", "flush_interval", "close_timeout"):
            if not getattr(made, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(made, name)!r}")
        if made.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {made.batch_size}")
        return made

    def headers(self) -> dict[str, str]:
        headers = {"User-Agent": f"abscope-python/{__version__}"}
        if self.api_key:
            headers["X-API-Key"] = self.api_key
        return headers


@dataclass(frozen=True, slots=True)
class Call:
    """One management request."""

    method: str
    path: str
    json: Any = None
    params: dict[str, Any] = field(default_factory=dict)
    empty: bool = False  # a 204 answer


def _id(experiment_id: str) -> str:
    return quote(experiment_id, safe="")


class calls:  # noqa: N801 - a namespace of request builders
    """The management API as :class:`Call` values, built once for both clients."""

    @staticmethod
    def list_experiments(status: str | None = None) -> Call:
        return Call("GET", "/experiments", params={"status": status} if status else {})

    @staticmethod
    def get_experiment(experiment_id: str) -> Call:
        return Call("GET", f"/experiments/{_id(experiment_id)}")

    @staticmethod
    def create_experiment(spec: dict[str, Any]) -> Call:
        return Call("POST", "/experiments", json=spec)

    @staticmethod
    def update_experiment(experiment_id: str, changes: dict[str, Any]) -> Call:
        return Call("PATCH", f"/experiments/{_id(experiment_id)}", json=changes)

    @staticmethod
    def add_metric(experiment_id: str, metric: dict[str, Any]) -> Call:
        return Call("POST", f"/experiments/{_id(experiment_id)}/metrics", json=metric)

    @staticmethod
    def delete_experiment(experiment_id: str) -> Call:
        return Call("DELETE", f"/experiments/{_id(experiment_id)}", empty=True)

    @staticmethod
    def transition(experiment_id: str, action: str, winner: str | None = None) -> Call:
        body = {"winner": winner} if winner is not None else None
        return Call("POST", f"/experiments/{_id(experiment_id)}/{action}", json=body)

    @staticmethod
    def results(experiment_id: str, phase: int | None = None) -> Call:
        params = {"phase": phase} if phase is not None else {}
        return Call("GET", f"/experiments/{_id(experiment_id)}/results", params=params)

    @staticmethod
    def gate(experiment_id: str) -> Call:
        # report=true: always 200, the verdict in the body (a fail is an answer, not an error)
        return Call("GET", f"/experiments/{_id(experiment_id)}/gate", params={"report": "true"})

    @staticmethod
    def timeseries(experiment_id: str, phase: int | None = None) -> Call:
        params = {"phase": phase} if phase is not None else {}
        return Call("GET", f"/experiments/{_id(experiment_id)}/timeseries", params=params)

    @staticmethod
    def set_covariates(
        experiment_id: str, covariates: Mapping[str, float] | Iterable[tuple[str, float]]
    ) -> Call:
        pairs = covariates.items() if isinstance(covariates, Mapping) else covariates
        body = {"covariates": [{"user_id": user, "value": value} for user, value in pairs]}
        return Call("POST", f"/experiments/{_id(experiment_id)}/covariates", json=body)

    @staticmethod
    def simulate(spec: dict[str, Any]) -> Call:
        return Call("POST", "/charts/simulate", json=spec)


def decode(call: Call, response: httpx.Response) -> Any:
    """The answer's data, or the error it means.

    Raises
    ------
    ApiError
        A 4xx, with the body's message and the fields it names.
    ServerUnavailable
        A 5xx (with ``Retry-After`` in the message when the server gave one).
    """
    status = response.status_code
    if status >= 500:
        retry = response.headers.get("Retry-After")
        hint = f"; retry after {retry} s" if retry else ""
        raise ServerUnavailable(f"{status}: {_detail(response)}{hint}", status)
    if status >= 400:
        detail, fields = _problem(response)
        raise ApiError(status, detail, fields)
    if call.empty or status == 204:
        return None
    try:
        return response.json()
    except ValueError:
        raise ServerUnavailable(f"{status}: an answer that is not JSON", status) from None


def describe_failure(error: httpx.HTTPError) -> str:
    """A one-line description of a transport failure."""
    if isinstance(error, httpx.TimeoutException):
        return f"timed out ({type(error).__name__})"
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def _detail(response: httpx.Response) -> str:
    return _problem(response)[0]


def _problem(response: httpx.Response) -> tuple[str, tuple[str, ...]]:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or response.reason_phrase, ()
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, list):  # a validation error: one issue per field
        messages, fields = [], []
        for issue in detail:
            if not isinstance(issue, dict):
                continue
            where = ".".join(str(p) for p in issue.get("loc", []))
            fields.append(where)
            messages.append(f"{where}: {issue.get('msg')}")
        return "; ".join(messages) or "invalid request", tuple(fields)
    return str(detail) if detail is not None else response.reason_phrase, ()
