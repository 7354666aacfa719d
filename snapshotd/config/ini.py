"""Reading ``snapshots.config`` (INI) into :class:`Settings` and notification fallbacks.

Compatible with the script's files, with its defects fixed: interpolation is
off (``%`` in a URL works), ``\\n`` in templates becomes a newline without
mangling non-ASCII text, and numeric chat ids are plain strings.
"""

from __future__ import annotations

import configparser
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from snapshotd.config.model import RateLimit, Settings
from snapshotd.config.schema import INI_SCHEMA, did_you_mean, is_placeholder, plain_http_warning
from snapshotd.errors import ConfigError
from snapshotd.notify.templates import parse_json_object, unknown_placeholders
from snapshotd.schedule import CrontabError, parse_crontab

T = TypeVar("T")
_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_PERIODS = {"second": 1.0, "minute": 60.0, "hour": 3600.0, "day": 86400.0}


@dataclass(frozen=True)
class ChannelDefaults:
    """The [TELEGRAM] or [WEBHOOK] section: fallbacks for every server."""

    enabled: bool
    values: Mapping[str, Any]  # credentials and templates; unset values are absent
    timeout: float
    retries: int
    base_delay: float


@dataclass(frozen=True)
class MainConfig:
    settings: Settings
    telegram: ChannelDefaults
    webhook: ChannelDefaults
    warnings: tuple[str, ...]
    secrets: tuple[str, ...]


def read_main_config(
    path: Path | None, base_dir: Path, environ: Mapping[str, str] | None = None
) -> MainConfig:
    """Parse ``path`` (or use built-in defaults when it is None)."""
    env = os.environ if environ is None else environ
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    warnings: list[str] = []
    if path is not None:
        try:
            with path.open(encoding="utf-8") as handle:
                parser.read_file(handle)
        except (configparser.Error, UnicodeDecodeError) as exc:
            raise ConfigError(f"not a valid INI file: {exc}", file=path) from None
        except OSError as exc:
            raise ConfigError(f"cannot read: {exc.strerror}", file=path) from None
        warnings.extend(_unknown_keys(parser, path))
    reader = _Reader(parser, path)

    explicit_logs = reader.explicit("DIRECTORIES", "logs_dir")
    configs_dir = _resolve(base_dir, reader.text("DIRECTORIES", "configs_dir"))
    if explicit_logs is None and env.get("LOGS_DIRECTORY"):
        logs_dir = Path(env["LOGS_DIRECTORY"].split(":")[0])
    else:
        logs_dir = _resolve(base_dir, reader.text("DIRECTORIES", "logs_dir"))
    state_text = reader.text("STATE", "state_dir")
    if state_text:
        state_dir = _resolve(base_dir, state_text)
    elif env.get("STATE_DIRECTORY"):
        state_dir = Path(env["STATE_DIRECTORY"].split(":")[0])
    else:
        state_dir = logs_dir

    poll_interval = reader.number("TIMING", "poll_interval", float, minimum=0.01)
    poll_interval_max = reader.number("TIMING", "poll_interval_max", float, minimum=0.01)
    if poll_interval_max < poll_interval:
        raise ConfigError(
            f"must be at least poll_interval ({poll_interval:g})",
            file=path,
            key="[TIMING] poll_interval_max",
        )
    level = reader.text("LOGGING", "level").upper()
    if level not in _LEVELS:
        raise ConfigError(
            f"'{level}' is not a log level; use one of {', '.join(_LEVELS)}",
            file=path,
            key="[LOGGING] level",
        )

    settings = Settings(
        ini_path=path,
        base_dir=base_dir,
        configs_dir=configs_dir,
        logs_dir=logs_dir,
        log_file=reader.text("FILES", "log_file"),
        lock_file=reader.text("FILES", "lock_file"),
        state_dir=state_dir,
        snapshot_creation_timeout=reader.number(
            "TIMING", "snapshot_creation_timeout", float, minimum=1
        ),
        poll_interval=poll_interval,
        poll_interval_max=poll_interval_max,
        request_timeout=reader.number("TIMING", "request_timeout", float, minimum=0.1),
        delay_between_servers=reader.number("TIMING", "delay_between_servers", float, minimum=0),
        log_max_bytes=reader.number("LOGGING", "max_bytes", int, minimum=0),
        log_backup_count=reader.number("LOGGING", "backup_count", int, minimum=0),
        log_level=level,
        default_schedule=reader.schedule("SCHEDULER", "default_schedule"),
        timezone=reader.timezone("SCHEDULER", "timezone"),
        max_concurrent_jobs=reader.number("SCHEDULER", "max_concurrent_jobs", int, minimum=1),
        jitter_seconds=reader.number("SCHEDULER", "jitter_seconds", int, minimum=0),
        catch_up=reader.boolean("SCHEDULER", "catch_up"),
        stop_timeout=reader.number("SCHEDULER", "stop_timeout", float, minimum=0),
        rate_limits={
            provider: reader.rate_limits("RATE_LIMITS", provider)
            for provider in ("digitalocean", "hetzner")
        },
    )
    telegram = reader.channel(
        "TELEGRAM",
        credentials=("bot_token", "chat_id", "api_url"),
        templates=("message_success", "message_failure"),
    )
    webhook = reader.channel(
        "WEBHOOK",
        credentials=("url", "secret"),
        templates=("payload_success", "payload_failure"),
    )
    fallback_urls = [("[TELEGRAM] api_url", str(telegram.values.get("api_url", "")))]
    webhook_urls = re.split(r"[\s,]+", str(webhook.values.get("url", "")))
    fallback_urls += [("[WEBHOOK] url", url) for url in webhook_urls]
    for where, url in fallback_urls:
        warning = plain_http_warning(f"{path}: {where}", url)
        if warning:
            warnings.append(warning)
    if reader.explicit("TIMING", "delay_between_servers") is not None:
        warnings.append(
            f"{path}: [TIMING] delay_between_servers is accepted but has no effect; "
            "the per-token rate limiter paces requests instead"
        )
    secrets = [str(telegram.values.get("bot_token", "")), str(webhook.values.get("secret", ""))]
    if path is not None and any(secrets):
        warnings.extend(permission_warning(path))
    return MainConfig(settings, telegram, webhook, tuple(warnings), tuple(s for s in secrets if s))


def permission_warning(path: Path) -> list[str]:
    """A warning when a file holding secrets is readable beyond its owner.

    Group access is fine when the group is snapshotd's own (``root:snapshotd 0640``,
    the layout the systemd unit documents); any other group or others is not.
    """
    try:
        info = path.stat()
    except OSError:
        return []
    mode = info.st_mode
    loose = mode & 0o007 or (mode & 0o070 and info.st_gid != os.getegid())
    if loose:
        return [
            f"{path}: holds a secret but is readable by group or others "
            f"(mode {mode & 0o777:o}); run: chmod 600 {path}"
        ]
    return []


def decode_newlines(text: str) -> str:
    r"""Turn the two characters ``\n`` into a newline; leave every other character alone."""
    return text.replace("\\n", "\n")


def _resolve(base_dir: Path, value: str) -> Path:
    candidate = Path(value).expanduser()
    return candidate if candidate.is_absolute() else base_dir / candidate


def _unknown_keys(parser: configparser.ConfigParser, path: Path) -> list[str]:
    warnings: list[str] = []
    sections = list(INI_SCHEMA)
    for section in parser.sections():
        if section not in INI_SCHEMA:
            hint = did_you_mean(section, sections)
            warnings.append(f"{path}: unknown section [{section}] is ignored{hint}")
            continue
        known = list(INI_SCHEMA[section])
        for key in parser[section]:
            if key not in INI_SCHEMA[section] and key not in parser.defaults():
                hint = did_you_mean(key, known)
                warnings.append(f"{path}: unknown key '{key}' in [{section}] is ignored{hint}")
    return warnings


class _Reader:
    """Typed access to INI values, with errors that name the file and key."""

    def __init__(self, parser: configparser.ConfigParser, path: Path | None) -> None:
        self.parser = parser
        self.path = path

    def explicit(self, section: str, key: str) -> str | None:
        if self.parser.has_section(section) and self.parser.has_option(section, key):
            value = self.parser.get(section, key).strip()
            return value or None
        return None

    def text(self, section: str, key: str) -> str:
        value = self.explicit(section, key)
        return value if value is not None else INI_SCHEMA[section][key].default

    def fail(self, section: str, key: str, message: str) -> ConfigError:
        return ConfigError(message, file=self.path, key=f"[{section}] {key}")

    def number(self, section: str, key: str, kind: Callable[[str], T], *, minimum: float) -> T:
        raw = self.text(section, key)
        try:
            value = kind(raw)
        except ValueError:
            noun = "a whole number" if kind is int else "a number"
            raise self.fail(section, key, f"'{raw}' is not {noun}") from None
        if value < minimum:  # type: ignore[operator]
            raise self.fail(section, key, f"must be at least {minimum:g}, got {raw}")
        return value

    def boolean(self, section: str, key: str) -> bool:
        raw = self.text(section, key).lower()
        states = configparser.ConfigParser.BOOLEAN_STATES
        if raw not in states:
            raise self.fail(section, key, f"'{raw}' is not a boolean; use true or false")
        return states[raw]

    def schedule(self, section: str, key: str) -> Any:
        try:
            return parse_crontab(self.text(section, key))
        except CrontabError as exc:
            raise self.fail(section, key, str(exc)) from None

    def timezone(self, section: str, key: str) -> ZoneInfo:
        name = self.text(section, key)
        if not name:
            return system_timezone()
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise self.fail(
                section, key, f"'{name}' is not an IANA time zone (e.g. Europe/Berlin, UTC)"
            ) from None

    def rate_limits(self, section: str, key: str) -> tuple[RateLimit, ...]:
        raw = self.text(section, key)
        limits: list[RateLimit] = []
        for part in re.split(r"[,;]", raw):
            match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d*\.?\d*)\s*([a-z]*)\s*", part)
            if not match or (not match.group(2) and not match.group(3)):
                raise self.fail(section, key, f"'{part.strip()}' is not like '250/minute'")
            count, amount, unit = match.groups()
            unit = unit.rstrip("s") or "second"
            if unit not in _PERIODS:
                raise self.fail(section, key, f"unknown unit '{unit}'; use second, minute, hour")
            period = float(amount or 1) * _PERIODS[unit]
            if int(count) < 1 or period <= 0:
                raise self.fail(section, key, "a limit needs at least 1 request per period")
            limits.append(RateLimit(int(count), period))
        return tuple(limits)

    def channel(
        self, section: str, *, credentials: tuple[str, ...], templates: tuple[str, ...]
    ) -> ChannelDefaults:
        values: dict[str, Any] = {}
        for key in credentials:
            raw = self.text(section, key)
            if raw and not is_placeholder(raw):
                values[key] = raw
        for key in templates:
            raw = self.explicit(section, key)
            if not raw:
                continue
            if key.startswith("payload"):
                try:
                    values[key] = parse_json_object(raw)
                except ValueError as exc:
                    raise self.fail(section, key, f"not a JSON object: {exc}") from None
            else:
                values[key] = decode_newlines(raw)
        return ChannelDefaults(
            enabled=self.boolean(section, "enabled"),
            values=values,
            timeout=self.number(section, "timeout", float, minimum=0.1),
            retries=self.number(section, "retries", int, minimum=0),
            base_delay=self.number(section, "base_delay_between_retries", float, minimum=0),
        )


def system_timezone() -> ZoneInfo:
    """The machine's local zone, falling back to UTC when it has no IANA name."""
    try:
        from tzlocal import get_localzone_name

        name = get_localzone_name()
        if name:
            return ZoneInfo(name)
    except Exception:  # tzlocal raises several types on odd systems
        pass
    return ZoneInfo("UTC")


def template_warnings(path: Path | None, defaults: ChannelDefaults, section: str) -> list[str]:
    warnings: list[str] = []
    for key, value in defaults.values.items():
        if isinstance(value, str) and key.startswith("message"):
            for name in unknown_placeholders(value):
                warnings.append(
                    f"{path}: [{section}] {key}: unknown placeholder {{{name}}} is sent as written"
                )
    return warnings
