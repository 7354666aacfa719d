"""Reading one ``configs/*.json`` server file into a :class:`ServerConfig`.

The file format is the script's: one top-level key (``digitalocean_droplet``
or ``hetzner_cloud_server``) holding ``provider``, ``id``, ``name``,
``api_token``, ``retain_last_snapshots`` and optional ``telegram`` and
``webhook`` blocks. snapshotd's additions are optional keys in the same block.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from snapshotd.config.ini import ChannelDefaults, MainConfig, permission_warning
from snapshotd.config.model import (
    DEFAULT_API_URLS,
    PROVIDERS,
    TOP_LEVEL_KEYS,
    RetentionPolicy,
    ServerConfig,
    TelegramTarget,
    WebhookEndpoint,
    WebhookTarget,
)
from snapshotd.config.schema import (
    RETENTION_KEYS,
    SERVER_KEYS,
    TELEGRAM_KEYS,
    WEBHOOK_KEYS,
    did_you_mean,
    is_placeholder,
    plain_http_warning,
)
from snapshotd.errors import ConfigError
from snapshotd.notify.templates import (
    parse_json_object,
    payload_placeholders,
    unknown_placeholders,
)
from snapshotd.schedule import CrontabError, parse_crontab

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")


@dataclass(frozen=True)
class ServerFile:
    server: ServerConfig
    warnings: tuple[str, ...]


def read_server_file(
    path: Path, main: MainConfig, environ: Mapping[str, str] | None = None
) -> ServerFile:
    """Parse and validate one server file; raise :class:`ConfigError` naming file and key."""
    env = os.environ if environ is None else environ
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError("is not UTF-8 text", file=path) from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", file=path) from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}", file=path
        ) from None
    return _Builder(path, main, env).build(document)


class _Builder:
    def __init__(self, path: Path, main: MainConfig, env: Mapping[str, str]) -> None:
        self.path = path
        self.main = main
        self.env = env
        self.warnings: list[str] = []
        self.notes: list[str] = []

    def fail(self, key: str | None, message: str) -> ConfigError:
        return ConfigError(message, file=self.path, key=key)

    def warn(self, message: str) -> None:
        self.warnings.append(f"{self.path}: {message}")

    def build(self, document: Any) -> ServerFile:
        if not isinstance(document, dict):
            raise self.fail(None, "must be a JSON object with one key: " + _top_keys())
        found = [k for k in document if k in TOP_LEVEL_KEYS.values()]
        if not found:
            hint = did_you_mean(next(iter(document), ""), list(TOP_LEVEL_KEYS.values()))
            raise self.fail(None, f"needs a top-level key {_top_keys()}{hint}")
        if len(found) > 1:
            raise self.fail(None, "holds more than one server; use one file per server")
        top = found[0]
        for extra in document:
            if extra != top:
                self.warn(f"unknown top-level key '{extra}' is ignored")
        block = document[top]
        if not isinstance(block, dict):
            raise self.fail(top, "must be a JSON object")
        self._unknown_keys(block, list(SERVER_KEYS), prefix=top)

        provider = self._provider(block, top)
        server_id = self._server_id(block, top)
        name = self._name(block, top)
        token = self._token(block, top)
        retention = self._retention(block, top)
        schedule = self.main.settings.default_schedule
        if "schedule" in block:
            raw = self._string(block, top, "schedule")
            try:
                schedule = parse_crontab(raw)
            except CrontabError as exc:
                raise self.fail(f"{top}.schedule", str(exc)) from None
        api_url = self._optional_url(block, top, "api_url") or DEFAULT_API_URLS[provider]
        healthcheck = self._optional_url(block, top, "healthcheck_url")
        telegram = self._telegram(block.get("telegram"), top)
        webhook = self._webhook(block.get("webhook"), top)
        urls = [("api_url", api_url), ("healthcheck_url", healthcheck or "")]
        urls += [("webhook.url", e.url) for e in (webhook.endpoints if webhook else ())]
        for key, url in urls:
            warning = plain_http_warning(f"{top}.{key}", url)
            if warning:
                self.warn(warning)
        server = ServerConfig(
            file=self.path,
            provider=provider,
            id=server_id,
            name=name,
            api_token=token,
            api_url=api_url.rstrip("/"),
            retention=retention,
            schedule=schedule,
            healthcheck_url=healthcheck,
            telegram=telegram,
            webhook=webhook,
            notes=tuple(self.notes),
        )
        return ServerFile(server, tuple(self.warnings))

    # -- required fields -------------------------------------------------

    def _provider(self, block: dict[str, Any], top: str) -> str:
        if "provider" not in block:
            raise self.fail(f"{top}.provider", "missing required field; use " + _providers())
        provider = block["provider"]
        if not isinstance(provider, str) or provider.strip().lower() not in PROVIDERS:
            raise self.fail(
                f"{top}.provider", f"unknown provider {json.dumps(provider)}; use {_providers()}"
            )
        provider = provider.strip().lower()
        if TOP_LEVEL_KEYS[provider] != top:
            raise self.fail(
                f"{top}.provider",
                f"says '{provider}' but the top-level key is '{top}'; "
                f"use '{TOP_LEVEL_KEYS[provider]}' for {provider} servers",
            )
        return provider

    def _server_id(self, block: dict[str, Any], top: str) -> str:
        if "id" not in block:
            raise self.fail(f"{top}.id", "missing required field: the droplet or server id")
        raw = block["id"]
        if isinstance(raw, bool) or not isinstance(raw, (int, str)):
            raise self.fail(f"{top}.id", "must be a number or a string")
        value = str(raw).strip()
        if not value:
            raise self.fail(f"{top}.id", "is empty")
        if not value.isdigit():
            self.warn(f"{top}.id '{value}' is not numeric; provider ids are numbers")
        return value

    def _name(self, block: dict[str, Any], top: str) -> str:
        if "name" not in block:
            raise self.fail(f"{top}.name", "missing required field: the server name")
        raw = block["name"]
        if not isinstance(raw, str) or not raw.strip():
            raise self.fail(f"{top}.name", "must be a non-empty string")
        if not NAME_PATTERN.fullmatch(raw):
            raise self.fail(
                f"{top}.name",
                f"{json.dumps(raw)} cannot form a snapshot name: use letters, digits, "
                "'.', '_' and '-' (starting with a letter or digit, at most 200)",
            )
        return raw

    def _token(self, block: dict[str, Any], top: str) -> str:
        sources = [k for k in ("api_token", "api_token_file", "api_token_env") if k in block]
        if not sources:
            raise self.fail(
                f"{top}.api_token",
                "missing required field; set api_token, api_token_file or api_token_env",
            )
        if len(sources) > 1:
            raise self.fail(f"{top}.{sources[1]}", f"set only one of {', '.join(sources)}")
        key = sources[0]
        raw = self._string(block, top, key)
        if key == "api_token":
            if is_placeholder(raw):
                self.warn(f"{top}.api_token looks like a sample placeholder; set your real token")
            self.warnings.extend(permission_warning(self.path))
            return raw.strip()
        if key == "api_token_env":
            value = self.env.get(raw, "").strip()
            if not value:
                raise self.fail(f"{top}.api_token_env", f"environment variable {raw} is not set")
            return value
        return self._token_from_file(raw, top)

    def _token_from_file(self, name: str, top: str) -> str:
        candidates: list[Path] = []
        given = Path(name).expanduser()
        if given.is_absolute():
            candidates.append(given)
        else:
            credentials = self.env.get("CREDENTIALS_DIRECTORY")
            if credentials:
                candidates.append(Path(credentials) / given)
            candidates.append(self.path.parent / given)
        for candidate in candidates:
            if candidate.is_file():
                try:
                    value = candidate.read_text(encoding="utf-8").strip()
                except (OSError, UnicodeDecodeError) as exc:
                    raise self.fail(
                        f"{top}.api_token_file", f"cannot read {candidate}: {exc}"
                    ) from None
                if not value:
                    raise self.fail(f"{top}.api_token_file", f"{candidate} is empty")
                self.warnings.extend(permission_warning(candidate))
                return value
        tried = ", ".join(str(c) for c in candidates)
        raise self.fail(f"{top}.api_token_file", f"cannot read the token file (tried {tried})")

    def _retention(self, block: dict[str, Any], top: str) -> RetentionPolicy:
        last: int | None = None
        if "retain_last_snapshots" in block:
            last = self._count(block["retain_last_snapshots"], f"{top}.retain_last_snapshots", 1)
        if "retention" not in block:
            if last is None:
                raise self.fail(
                    f"{top}.retain_last_snapshots",
                    "missing required field: how many snapshots to keep (an integer >= 1)",
                )
            return RetentionPolicy(last=last)
        spec = block["retention"]
        key = f"{top}.retention"
        if not isinstance(spec, dict):
            raise self.fail(key, 'must be an object such as {"daily": 7, "weekly": 4}')
        self._unknown_keys(spec, list(RETENTION_KEYS), prefix=key)
        counts = {
            name: self._count(spec[name], f"{key}.{name}", 0)
            for name in RETENTION_KEYS
            if name in spec
        }
        if last is not None:
            counts.setdefault("last", last)
        if not any(counts.values()):
            raise self.fail(key, "keeps nothing; set at least one count above 0")
        return RetentionPolicy(**counts)

    def _count(self, raw: Any, key: str, minimum: int) -> int:
        if isinstance(raw, str) and raw.strip().isdigit():
            raw = int(raw.strip())
        if isinstance(raw, bool) or not isinstance(raw, int) or raw < minimum:
            raise self.fail(key, f"must be an integer >= {minimum}, got {json.dumps(raw)}")
        return raw

    # -- notifications ---------------------------------------------------

    def _telegram(self, spec: Any, top: str) -> TelegramTarget | None:
        defaults = self.main.telegram
        values = self._channel_values(spec, f"{top}.telegram", TELEGRAM_KEYS, defaults)
        if values is None:
            return None
        bot_token, chat_id = values.get("bot_token"), values.get("chat_id")
        if not bot_token or not chat_id:
            missing = " and ".join(k for k in ("bot_token", "chat_id") if not values.get(k))
            self.notes.append(f"telegram enabled but {missing} not set: skipped")
            return None
        for key in ("message_success", "message_failure"):
            template = values.get(key)
            for name in unknown_placeholders(template) if isinstance(template, str) else []:
                self.warn(
                    f"{top}.telegram.{key}: unknown placeholder {{{name}}} is sent as written"
                )
        return TelegramTarget(
            bot_token=str(bot_token),
            chat_id=str(chat_id),
            api_url=str(defaults.values.get("api_url", "https://api.telegram.org")).rstrip("/"),
            timeout=defaults.timeout,
            retries=defaults.retries,
            base_delay=defaults.base_delay,
            message_success=values.get("message_success"),
            message_failure=values.get("message_failure"),
        )

    def _webhook(self, spec: Any, top: str) -> WebhookTarget | None:
        defaults = self.main.webhook
        values = self._channel_values(spec, f"{top}.webhook", WEBHOOK_KEYS, defaults)
        if values is None:
            return None
        endpoints = self._endpoints(values.get("url"), values.get("secret"), f"{top}.webhook")
        if not endpoints:
            self.notes.append("webhook enabled but url not set: skipped")
            return None
        payloads: dict[str, dict[str, Any] | None] = {}
        for key in ("payload_success", "payload_failure"):
            raw = values.get(key)
            if isinstance(raw, str):
                try:
                    raw = parse_json_object(raw)
                except ValueError as exc:
                    raise self.fail(f"{top}.webhook.{key}", f"not a JSON object: {exc}") from None
            if raw is not None and not isinstance(raw, dict):
                raise self.fail(f"{top}.webhook.{key}", "must be a JSON object")
            for name in payload_placeholders(raw) if raw else []:
                self.warn(f"{top}.webhook.{key}: unknown placeholder {{{name}}} is sent as written")
            payloads[key] = raw
        return WebhookTarget(
            endpoints=endpoints,
            timeout=defaults.timeout,
            retries=defaults.retries,
            base_delay=defaults.base_delay,
            payload_success=payloads["payload_success"],
            payload_failure=payloads["payload_failure"],
        )

    def _channel_values(
        self, spec: Any, key: str, known: tuple[str, ...], defaults: ChannelDefaults
    ) -> dict[str, Any] | None:
        """Merge per-server values over the INI fallbacks; None when the channel is off."""
        own: dict[str, Any] = {}
        if spec is not None:
            if not isinstance(spec, dict):
                raise self.fail(key, "must be a JSON object")
            self._unknown_keys(spec, list(known), prefix=key)
            own = spec
        enabled = own.get("enabled", defaults.enabled)
        if not isinstance(enabled, bool):
            raise self.fail(f"{key}.enabled", f"must be true or false, got {json.dumps(enabled)}")
        if not enabled:
            return None
        merged = dict(defaults.values)
        for name in known:
            if name == "enabled" or name not in own:
                continue
            value = own[name]
            if isinstance(value, bool) or (
                value is not None and not isinstance(value, (str, int, dict, list))
            ):
                raise self.fail(f"{key}.{name}", "has the wrong type")
            if isinstance(value, int):
                value = str(value)
            if isinstance(value, str) and (not value.strip() or is_placeholder(value)):
                continue
            if value is None:
                continue
            merged[name] = value
        return merged

    def _endpoints(self, raw: Any, secret: Any, key: str) -> tuple[WebhookEndpoint, ...]:
        if raw is None:
            return ()
        items: list[Any] = re.split(r"[\s,]+", raw.strip()) if isinstance(raw, str) else raw
        if not isinstance(items, list):
            raise self.fail(f"{key}.url", "must be a URL or a list of URLs")
        default_secret = str(secret) if secret else None
        endpoints: list[WebhookEndpoint] = []
        for item in items:
            if isinstance(item, dict):
                url, own_secret = item.get("url"), item.get("secret", default_secret)
            else:
                url, own_secret = item, default_secret
            if not isinstance(url, str) or not url:
                raise self.fail(f"{key}.url", "each entry must be a URL string")
            if is_placeholder(url):
                continue
            if not re.match(r"https?://", url):
                raise self.fail(f"{key}.url", f"'{url}' is not an http(s) URL")
            endpoints.append(WebhookEndpoint(url, str(own_secret) if own_secret else None))
        return tuple(endpoints)

    # -- helpers ----------------------------------------------------------

    def _string(self, block: dict[str, Any], top: str, key: str) -> str:
        value = block[key]
        if not isinstance(value, str) or not value.strip():
            raise self.fail(f"{top}.{key}", "must be a non-empty string")
        return value

    def _optional_url(self, block: dict[str, Any], top: str, key: str) -> str | None:
        if key not in block or block[key] in (None, ""):
            return None
        value = self._string(block, top, key)
        if is_placeholder(value):
            return None
        if not re.match(r"https?://", value):
            raise self.fail(f"{top}.{key}", f"'{value}' is not an http(s) URL")
        return value

    def _unknown_keys(self, block: dict[str, Any], known: list[str], prefix: str) -> None:
        for key in block:
            if key not in known:
                self.warn(f"unknown key '{prefix}.{key}' is ignored{did_you_mean(key, known)}")


def _top_keys() -> str:
    return " or ".join(f"'{k}'" for k in TOP_LEVEL_KEYS.values())


def _providers() -> str:
    return " or ".join(f"'{p}'" for p in PROVIDERS)
