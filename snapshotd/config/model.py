"""Immutable configuration objects: what the rest of snapshotd sees.

Every fallback (per-server JSON → ``snapshots.config`` → built-in default) is
resolved once, when these are built, so no other module consults the files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from snapshotd.schedule import Crontab

PROVIDERS = ("digitalocean", "hetzner")
TOP_LEVEL_KEYS = {"digitalocean": "digitalocean_droplet", "hetzner": "hetzner_cloud_server"}
PROVIDER_LABELS = {"digitalocean": "DigitalOcean", "hetzner": "Hetzner Cloud"}
DEFAULT_API_URLS = {
    "digitalocean": "https://api.digitalocean.com/v2",
    "hetzner": "https://api.hetzner.cloud/v1",
}


@dataclass(frozen=True)
class RateLimit:
    """At most ``requests`` in any ``period`` seconds, per API token."""

    requests: int
    period: float


@dataclass(frozen=True)
class RetentionPolicy:
    """restic-style ``forget --keep-*`` counts; a snapshot is kept if any rule keeps it."""

    last: int = 0
    hourly: int = 0
    daily: int = 0
    weekly: int = 0
    monthly: int = 0
    yearly: int = 0

    def describe(self) -> str:
        parts = [
            f"{name} {count}"
            for name, count in (
                ("last", self.last),
                ("hourly", self.hourly),
                ("daily", self.daily),
                ("weekly", self.weekly),
                ("monthly", self.monthly),
                ("yearly", self.yearly),
            )
            if count
        ]
        return ", ".join(parts) or "newest only"


@dataclass(frozen=True)
class TelegramTarget:
    bot_token: str
    chat_id: str
    api_url: str
    timeout: float
    retries: int
    base_delay: float
    message_success: str | None
    message_failure: str | None


@dataclass(frozen=True)
class WebhookEndpoint:
    url: str
    secret: str | None


@dataclass(frozen=True)
class WebhookTarget:
    endpoints: tuple[WebhookEndpoint, ...]
    timeout: float
    retries: int
    base_delay: float
    payload_success: dict[str, Any] | None
    payload_failure: dict[str, Any] | None


@dataclass(frozen=True)
class ServerConfig:
    """One configured server, with every fallback already applied."""

    file: Path
    provider: str
    id: str
    name: str
    api_token: str = field(repr=False)
    api_url: str
    retention: RetentionPolicy
    schedule: Crontab
    healthcheck_url: str | None = field(repr=False)
    telegram: TelegramTarget | None = field(repr=False)
    webhook: WebhookTarget | None = field(repr=False)
    notes: tuple[str, ...] = ()  # why a notification channel is off, for --check

    @property
    def key(self) -> str:
        """Stable identity: ``<provider>:<id>``; used for locks, history and job ids."""
        return f"{self.provider}:{self.id}"

    @property
    def job_id(self) -> str:
        return f"snapshot:{self.provider}:{self.id}"

    def secrets(self) -> tuple[str, ...]:
        values = [self.api_token]
        if self.healthcheck_url:
            values.append(self.healthcheck_url)
        if self.telegram:
            values.append(self.telegram.bot_token)
        if self.webhook:
            values.extend(e.secret for e in self.webhook.endpoints if e.secret)
        return tuple(values)


@dataclass(frozen=True)
class Settings:
    """Process-wide settings from ``snapshots.config`` (or built-in defaults)."""

    ini_path: Path | None
    base_dir: Path
    configs_dir: Path
    logs_dir: Path
    log_file: str
    lock_file: str
    state_dir: Path
    snapshot_creation_timeout: float
    poll_interval: float
    poll_interval_max: float
    request_timeout: float
    delay_between_servers: float
    log_max_bytes: int
    log_backup_count: int
    log_level: str
    default_schedule: Crontab
    timezone: ZoneInfo
    max_concurrent_jobs: int
    jitter_seconds: int
    catch_up: bool
    stop_timeout: float
    rate_limits: dict[str, tuple[RateLimit, ...]] = field(hash=False)

    @property
    def log_path(self) -> Path:
        return self.logs_dir / self.log_file


@dataclass(frozen=True)
class Problem:
    """A file that could not be used; reported and skipped, never fatal for the others."""

    file: Path
    message: str


@dataclass(frozen=True)
class LoadedConfig:
    settings: Settings
    servers: tuple[ServerConfig, ...]
    problems: tuple[Problem, ...]
    warnings: tuple[str, ...]
    global_secrets: tuple[str, ...] = ()

    def secrets(self) -> tuple[str, ...]:
        values = list(self.global_secrets)
        for server in self.servers:
            values.extend(server.secrets())
        return tuple(values)
