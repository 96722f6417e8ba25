"""Settings, read from ``ABSCOPE_*`` environment variables by a factory, never at import.

``ABSCOPE_REDIS_URL`` set means Redis (``redis://...``; ``ABSCOPE_REDIS_CLUSTER=true`` for
a Redis Cluster); otherwise the embedded SQLite store at ``ABSCOPE_DB_PATH``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "get_settings"]


GC_THRESHOLD = 20_000
"""Allocations between two young-generation collections in a serving process (Python's
default is 700): the hot paths make short-lived objects by the thousand per batch, and each
young collection also walks whatever survived the last. Measured in ``make bench``."""


class Settings(BaseSettings):
    """Service configuration. Tests build ``create_app(Settings(...))`` directly."""

    model_config = SettingsConfigDict(env_prefix="ABSCOPE_", extra="ignore")

    redis_url: str | None = None
    redis_cluster: bool = False
    db_path: Path = Path("abscope.db")
    admin_api_key: SecretStr | None = Field(
        default=None, description="Required for configuration changes when set."
    )
    ingest_api_key: SecretStr | None = Field(
        default=None, description="Required for route, log and events when set."
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
    max_clock_skew_seconds: float = Field(
        default=300.0,
        ge=0.0,
        le=24 * 3600,
        description="Events stamped further than this in the future are refused.",
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once from the environment."""
    return Settings()
