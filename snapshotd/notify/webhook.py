"""Webhook delivery: rendered JSON, an optional HMAC signature, a stable delivery id."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from typing import Any

import requests

from snapshotd import __version__
from snapshotd.clock import Clock
from snapshotd.config.model import WebhookEndpoint
from snapshotd.notify.delivery import send_with_retries
from snapshotd.redact import Redactor

SIGNATURE_HEADER = "X-Snapshotd-Signature"
DELIVERY_HEADER = "X-Snapshotd-Delivery"


def encode_payload(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def signature(secret: str, body: bytes) -> str:
    """``sha256=<hex HMAC-SHA256 of the exact body>``, as receivers verify it."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def send_webhook(
    endpoint: WebhookEndpoint,
    payload: Any,
    *,
    timeout: float,
    retries: int,
    base_delay: float,
    session: requests.Session,
    clock: Clock,
    redactor: Redactor,
) -> str:
    body = encode_payload(payload)
    delivery = str(uuid.uuid4())  # the same on every retry, so receivers can deduplicate
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": f"snapshotd/{__version__}",
        DELIVERY_HEADER: delivery,
    }
    if endpoint.secret:
        headers[SIGNATURE_HEADER] = signature(endpoint.secret, body)
    send_with_retries(
        session,
        endpoint.url,
        body=body,
        headers=headers,
        clock=clock,
        redactor=redactor,
        retries=retries,
        base_delay=base_delay,
        timeout=timeout,
    )
    return f"delivered ({delivery})"
