"""Telegram ``sendMessage`` with the script's legacy Markdown templates."""

from __future__ import annotations

import functools
import re

import requests

from snapshotd.clock import Clock
from snapshotd.config.model import TelegramTarget
from snapshotd.notify.delivery import Verdict, send_with_retries
from snapshotd.redact import Redactor


def send_telegram(
    target: TelegramTarget,
    text: str,
    *,
    session: requests.Session,
    clock: Clock,
    redactor: Redactor,
) -> str:
    """Send ``text``; if Telegram cannot parse the Markdown, send it once more as plain text."""
    url = f"{target.api_url}/bot{target.bot_token}/sendMessage"
    message: dict[str, object] = {
        "chat_id": _chat_id(target.chat_id),
        "text": text,
        "parse_mode": "Markdown",
        "disable_web_page_preview": True,
        "link_preview_options": {"is_disabled": True},
    }
    unparsable: list[bool] = []

    def verdict(response: requests.Response) -> Verdict:
        if response.ok:
            return Verdict("done")
        body = _json(response)
        description = str(body.get("description", ""))
        if response.status_code == 400 and "can't parse entities" in description.lower():
            unparsable.append(True)
            return Verdict("fail", reason="Markdown rejected")
        if response.status_code == 429:
            parameters = body.get("parameters") if isinstance(body.get("parameters"), dict) else {}
            wait = parameters.get("retry_after") if isinstance(parameters, dict) else None
            return Verdict(
                "retry", float(wait) if isinstance(wait, (int, float)) else None, "HTTP 429"
            )
        if response.status_code >= 500:
            return Verdict("retry", None, f"HTTP {response.status_code}")
        return Verdict("fail", reason=f"HTTP {response.status_code}: {description[:200]}")

    send = functools.partial(
        send_with_retries,
        session,
        url,
        clock=clock,
        redactor=redactor,
        retries=target.retries,
        base_delay=target.base_delay,
        timeout=target.timeout,
        verdict=verdict,
    )
    try:
        send(json=message)
        return "sent"
    except Exception:
        if not unparsable:
            raise
    send(json={k: v for k, v in message.items() if k != "parse_mode"})
    return "sent as plain text (Telegram rejected the Markdown)"


def _chat_id(value: str) -> int | str:
    return int(value) if re.fullmatch(r"-?\d+", value) else value


def _json(response: requests.Response) -> dict[str, object]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
