"""Every configuration key snapshotd knows, with its default and meaning.

This table is the one source for validation (unknown keys, did-you-mean), the
README's configuration reference and the sample files; a test checks that they
agree.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Key:
    default: str
    doc: str
    since_script: bool = True  # False for keys snapshotd added


INI_SCHEMA: dict[str, dict[str, Key]] = {
    "DIRECTORIES": {
        "configs_dir": Key("configs", "Folder of server JSON files, relative to this file."),
        "logs_dir": Key(
            "logs",
            "Folder for the log file, relative to this file ($LOGS_DIRECTORY under systemd).",
        ),
    },
    "FILES": {
        "log_file": Key("snapshots.log", "Log file name inside logs_dir (JSON lines, rotated)."),
        "lock_file": Key(
            "snapshots.lock",
            "Accepted for compatibility; snapshotd locks each server in state_dir/locks instead.",
        ),
    },
    "TIMING": {
        "delay_between_servers": Key(
            "20", "Accepted for compatibility, no effect: the per-token rate limiter replaces it."
        ),
        "snapshot_creation_timeout": Key(
            "900", "Seconds to wait for a snapshot to complete before the job fails."
        ),
        "poll_interval": Key("5", "First delay between status polls, in seconds.", False),
        "poll_interval_max": Key("60", "The poll delay doubles up to this many seconds.", False),
        "request_timeout": Key(
            "30", "Seconds to wait for each API response (connecting has its own 10 s).", False
        ),
    },
    "LOGGING": {
        "max_bytes": Key("5242880", "Rotate the log file at this size."),
        "backup_count": Key("5", "Rotated log files to keep."),
        "level": Key("DEBUG", "Log file level: DEBUG, INFO, WARNING, ERROR or CRITICAL."),
    },
    "TELEGRAM": {
        "enabled": Key("true", "Fallback for servers whose JSON does not say."),
        "bot_token": Key("", "Fallback bot token."),
        "chat_id": Key("", "Fallback chat id (numeric ids work)."),
        "timeout": Key("10", "Seconds per request."),
        "retries": Key("3", "Retries after a failed send (5xx, network, 429)."),
        "base_delay_between_retries": Key("2", "Backoff base in seconds: 2, 4, 8 …"),
        "message_success": Key("", "Fallback template for SUCCESS/SKIPPED; \\n is a newline."),
        "message_failure": Key("", "Fallback template for FAILURE/PARTIAL; \\n is a newline."),
        "api_url": Key("https://api.telegram.org", "Bot API base URL.", False),
    },
    "WEBHOOK": {
        "enabled": Key("false", "Fallback for servers whose JSON does not say."),
        "url": Key("", "Fallback URL; several may be given, separated by spaces or commas."),
        "timeout": Key("10", "Seconds per request."),
        "retries": Key("3", "Retries after a failed delivery (5xx, network, 429)."),
        "base_delay_between_retries": Key("2", "Backoff base in seconds."),
        "payload_success": Key("", "Fallback payload: a JSON object as a string."),
        "payload_failure": Key("", "Fallback payload: a JSON object as a string."),
        "secret": Key("", "HMAC-SHA256 key for the X-Snapshotd-Signature header.", False),
    },
    "SCHEDULER": {
        "default_schedule": Key("0 6 * * *", "Crontab for servers without 'schedule'.", False),
        "timezone": Key("", "IANA zone for schedules and retention; empty = system zone.", False),
        "max_concurrent_jobs": Key("4", "Jobs that may run at once.", False),
        "jitter_seconds": Key("0", "Random delay of up to this many seconds per run.", False),
        "catch_up": Key("true", "Run a slot missed while stopped, once, soon after start.", False),
        "stop_timeout": Key(
            "600", "Seconds running jobs get to finish on stop; keep below TimeoutStopSec.", False
        ),
    },
    "STATE": {
        "state_dir": Key(
            "", "Run history and locks; empty = $STATE_DIRECTORY, else logs_dir.", False
        ),
    },
    "RATE_LIMITS": {
        "digitalocean": Key("250/minute, 5000/hour", "Per-token request budget.", False),
        "hetzner": Key("3600/hour", "Per-token request budget.", False),
    },
}

TELEGRAM_KEYS = ("enabled", "bot_token", "chat_id", "message_success", "message_failure")
WEBHOOK_KEYS = ("enabled", "url", "secret", "payload_success", "payload_failure")
SERVER_KEYS: dict[str, str] = {
    "provider": "'digitalocean' or 'hetzner'.",
    "id": "Droplet or server id (number or string).",
    "name": "Server name; snapshots are named <name>-YYYYMMDDHHMMSS (UTC).",
    "api_token": "Provider API token (or use api_token_file / api_token_env).",
    "api_token_file": "File holding the token; relative names are looked up in "
    "$CREDENTIALS_DIRECTORY first, then next to this file.",
    "api_token_env": "Environment variable holding the token.",
    "retain_last_snapshots": "Keep this many managed snapshots, the new one included.",
    "retention": "Optional GFS policy: {last, hourly, daily, weekly, monthly, yearly}.",
    "schedule": "Crontab for this server; default [SCHEDULER] default_schedule.",
    "api_url": "Provider API base URL including the version (proxies, simulator).",
    "healthcheck_url": "Ping URL: /start at job start, itself on success, /fail on failure.",
    "telegram": "Per-server Telegram settings: " + ", ".join(TELEGRAM_KEYS) + ".",
    "webhook": "Per-server webhook settings: " + ", ".join(WEBHOOK_KEYS) + ".",
}
RETENTION_KEYS = ("last", "hourly", "daily", "weekly", "monthly", "yearly")

_PLACEHOLDER = re.compile(r"^(?:[a-z]+://)?your[-_]", re.IGNORECASE)


def plain_http_warning(where: str, url: str) -> str | None:
    """A warning for ``http://`` to a host other than this machine: tokens would travel in clear."""
    match = re.match(r"http://(?:[^@/]*@)?(\[[^\]]+\]|[^:/]+)", url, re.IGNORECASE)
    if not match:
        return None
    host = match.group(1).strip("[]").lower()
    if host in ("localhost", "::1") or host.startswith("127."):
        return None
    return f"{where} uses plain http:// to {host}; credentials and data travel unencrypted"


def is_placeholder(value: str) -> bool:
    """Sample values such as ``your_telegram_bot_token_here`` count as unset."""
    return bool(_PLACEHOLDER.match(value.strip()))


def did_you_mean(word: str, choices: list[str] | tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""
