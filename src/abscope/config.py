"""Settings, read from ``ABSCOPE_*`` environment variables by a factory, never at import.

``ABSCOPE_REDIS_URL`` set means Redis (``redis://...``; ``ABSCOPE_REDIS_CLUSTER=true`` for
a Redis Cluster); otherwise the embedded SQLite store at ``ABSCOPE_DB_PATH``.

The three API keys (``ABSCOPE_ADMIN_API_KEY``, ``ABSCOPE_INGEST_API_KEY``,
``ABSCOPE_READ_API_KEY``) are each unset or at least :data:`MIN_KEY_LENGTH` characters: an
empty or short key is an error naming its setting, never a key that a guess can match.
Which routes each key opens is :mod:`abscope.api.auth`.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["KEY_SETTINGS", "MIN_KEY_LENGTH", "Settings", "get_settings", "setting_errors"]

MIN_KEY_LENGTH = 16
"""The shortest API key accepted, in characters."""

KEY_SETTINGS = ("ABSCOPE_ADMIN_API_KEY", "ABSCOPE_INGEST_API_KEY", "ABSCOPE_READ_API_KEY")
"""The environment variables of the three API keys."""


GC_THRESHOLD = 20_000
"""Allocations between two young-generation collections in a serving process (Python's
default is 700): the hot paths make short-lived objects by the thousand per batch, and each
young collection also walks whatever survived the last. Measured in ``make bench``."""


class Settings(BaseSettings):
    """Service configuration. Tests build ``create_app(Settings(...))`` directly."""

    # hide_input_in_errors: an invalid key must not be printed in the error.
    model_config = SettingsConfigDict(
        env_prefix="ABSCOPE_", extra="ignore", hide_input_in_errors=True
    )

    redis_url: str | None = None
    redis_cluster: bool = False
    db_path: Path = Path("abscope.db")
    admin_api_key: SecretStr | None = Field(
        default=None, description="The admin role's key: every route."
    )
    ingest_api_key: SecretStr | None = Field(
        default=None, description="The ingest role's key: route, log and events."
    )
    read_api_key: SecretStr | None = Field(
        default=None,
        description="The read role's key: experiments, results, charts, explain, and the"
        " planner's and simulator's calculations.",
    )
    cors_origins: list[str] = Field(default_factory=list)
    max_batch_size: int = Field(default=10_000, ge=1, le=100_000)
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    config_refresh_seconds: float = Field(default=1.0, gt=0.0, le=60.0)
    bandit_refresh_seconds: float = Field(default=1.0, gt=0.0, le=60.0)
    store_retry_seconds: float = Field(
        default=1.0,
        gt=0.0,
        le=60.0,
        description="After a failed store call, routing serves from its last snapshot and"
        " calls the store again after this long.",
    )
    event_id_window_seconds: int = Field(
        default=7 * 24 * 3600,
        ge=60,
        le=366 * 24 * 3600,
        description="How long an applied event id is remembered: a retry within it is a"
        " duplicate. Per-user counts stay exact whatever the window.",
    )
    gc_threshold: int = Field(
        default=GC_THRESHOLD,
        ge=0,
        le=10_000_000,
        description="The collector's first-generation threshold while the app runs, after"
        " the objects made at start-up are frozen out of its scans (gc.freeze); 0 leaves"
        " Python's collector as it is.",
    )
    metrics: bool = Field(
        default=True,
        description="Serve GET /metrics (Prometheus) and count requests, events and store"
        " calls; off, none of that is measured or served.",
    )
    metrics_max_experiments: int = Field(
        default=100,
        ge=0,
        le=10_000,
        description="Running experiments whose users and conversions per variant /metrics"
        " reads from the store at each scrape (the oldest first); the rest are left out.",
    )
    log_format: Literal["text", "json"] = Field(
        default="text",
        description="text: uvicorn's lines; json: one JSON object per line, with the"
        " request's id (abscope serve).",
    )
    max_clock_skew_seconds: float = Field(
        default=300.0,
        ge=0.0,
        le=24 * 3600,
        description="Events stamped further than this in the future are refused.",
    )

    monitor: bool = Field(
        default=True,
        description="Run the guardrail monitor in the background: every running experiment's"
        " guardrails are judged each monitor_interval_seconds, by one worker at a time (the"
        " holder of the store's lease), and a breach pauses the experiment or alerts.",
    )
    monitor_interval_seconds: float = Field(
        default=60.0,
        gt=0.0,
        le=24 * 3600,
        description="Seconds between two looks of the guardrail monitor; its lease lasts three"
        " intervals, so another worker takes over within that long when the holder dies.",
    )
    guardrail_min_samples: int = Field(
        default=100,
        ge=2,
        le=10**9,
        description="Users per arm before a guardrail gives a verdict (a guardrail's own"
        " min_samples wins); below it the monitor reports 'inconclusive: too little data'"
        " and never acts.",
    )
    webhook_url: str | None = Field(
        default=None,
        description="Where the monitor POSTs a signed JSON notice of each guardrail breach"
        " (http or https); unset, no webhook is sent.",
    )
    webhook_secret: SecretStr | None = Field(
        default=None,
        description="The HMAC-SHA256 key of the webhook's X-Abscope-Signature header; unset,"
        " the notices are sent unsigned.",
    )

    @field_validator("admin_api_key", "ingest_api_key", "read_api_key")
    @classmethod
    def _long_enough(cls, key: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if key is None:
            return None
        value = key.get_secret_value()
        length = len(value)
        name = f"ABSCOPE_{(info.field_name or '').upper()}"
        if not (value.isascii() and value.isprintable()) or value != value.strip():
            # An HTTP header carries it: other characters or spaces at its ends never match.
            raise ValueError(f"{name} must be printable ASCII with no space at either end")
        if length < MIN_KEY_LENGTH:
            got = "an empty key" if length == 0 else f"{length} characters"
            raise ValueError(
                f"{name} must be at least {MIN_KEY_LENGTH} characters (got {got}); unset it"
                " to run without that key"
            )
        return key

    @field_validator("webhook_url")
    @classmethod
    def _http_url(cls, url: str | None) -> str | None:
        if url is None:
            return None
        if not url.startswith(("http://", "https://")) or len(url) <= len("https://"):
            raise ValueError("ABSCOPE_WEBHOOK_URL must be an http:// or https:// URL")
        return url

    @model_validator(mode="after")
    def _distinct_keys(self) -> Settings:
        keys = [k.get_secret_value() for k in self._key_values() if k is not None]
        if len(set(keys)) != len(keys):
            raise ValueError(
                f"{', '.join(KEY_SETTINGS)} must differ from each other: a key has one role"
            )
        return self

    def _key_values(self) -> tuple[SecretStr | None, ...]:
        return (self.admin_api_key, self.ingest_api_key, self.read_api_key)

    @property
    def has_keys(self) -> bool:
        """Whether any API key is set, and so every data route needs one."""
        return any(key is not None for key in self._key_values())


def setting_errors(error: ValidationError) -> list[str]:
    """One line per invalid setting, each naming its ``ABSCOPE_*`` variable; no input value."""
    lines = []
    for item in error.errors():
        message = str(item["msg"]).removeprefix("Value error, ")
        if not item["loc"] or message.startswith("ABSCOPE_"):  # names its settings itself
            lines.append(message)
            continue
        name = "ABSCOPE_" + "_".join(str(part) for part in item["loc"]).upper()
        lines.append(f"{name}: {message}")
    return lines


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once from the environment."""
    return Settings()
