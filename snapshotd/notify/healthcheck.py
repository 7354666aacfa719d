"""Monitoring pings: healthchecks.io-style (``/start``, ``/fail``) and Uptime Kuma push URLs."""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit, urlunsplit

import requests

from snapshotd.clock import Clock
from snapshotd.notify.delivery import send_with_retries
from snapshotd.redact import Redactor

PING_TIMEOUT = 10.0
PING_RETRIES = 2


def ping_url(base: str, event: str, summary: str = "") -> str:
    """The URL for ``event`` ('start', 'success' or 'fail')."""
    parts = urlsplit(base)
    if "/api/push/" in parts.path:  # Uptime Kuma: status in the query; it has no 'start'
        status = "down" if event == "fail" else "up"
        query = urlencode({"status": status, "msg": summary[:200] or event})
        return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))
    suffix = {"start": "/start", "fail": "/fail"}.get(event, "")
    return urlunsplit(
        (parts.scheme, parts.netloc, parts.path.rstrip("/") + suffix, parts.query, "")
    )


def send_ping(
    base: str,
    event: str,
    summary: str,
    *,
    session: requests.Session,
    clock: Clock,
    redactor: Redactor,
) -> str:
    if event == "start" and "/api/push/" in urlsplit(base).path:
        return "not sent (Uptime Kuma has no start signal)"
    send_with_retries(
        session,
        ping_url(base, event, summary),
        body=summary.encode("utf-8"),
        headers={"Content-Type": "text/plain; charset=utf-8"},
        clock=clock,
        redactor=redactor,
        retries=PING_RETRIES,
        base_delay=1.0,
        timeout=PING_TIMEOUT,
    )
    return "sent"
