"""Sending one notification request with bounded retries. Shared by every channel."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import requests

from snapshotd.clock import Clock
from snapshotd.redact import Redactor

MAX_SERVER_WAIT = 300.0  # never let a receiver's Retry-After hold a job longer than this


class DeliveryError(Exception):
    """A notification that could not be delivered (the job's outcome is unaffected)."""


@dataclass(frozen=True)
class Verdict:
    """What to do with a response: done, retry after ``wait`` (None = backoff), or fail."""

    action: str  # "done" | "retry" | "fail"
    wait: float | None = None
    reason: str = ""


def default_verdict(response: requests.Response) -> Verdict:
    if response.ok:
        return Verdict("done")
    if response.status_code == 429:
        return Verdict("retry", _retry_after(response.headers), "HTTP 429")
    if response.status_code >= 500:
        return Verdict("retry", None, f"HTTP {response.status_code}")
    return Verdict("fail", reason=f"HTTP {response.status_code}")


def send_with_retries(
    session: requests.Session,
    url: str,
    *,
    clock: Clock,
    redactor: Redactor,
    retries: int,
    base_delay: float,
    timeout: float,
    body: bytes | None = None,
    json: Any = None,
    headers: Mapping[str, str] | None = None,
    verdict: Callable[[requests.Response], Verdict] = default_verdict,
) -> requests.Response:
    """POST until a verdict says done; raise :class:`DeliveryError` when it fails or runs out."""
    attempt = 0
    while True:
        try:
            response = session.post(
                url, data=body, json=json, headers=dict(headers or {}), timeout=timeout
            )
        except requests.RequestException as exc:
            outcome = Verdict("retry", None, f"{type(exc).__name__}")
        else:
            outcome = verdict(response)
            if outcome.action == "done":
                return response
        if outcome.action == "fail" or attempt >= retries:
            tries = attempt + 1
            raise DeliveryError(
                redactor.redact(f"{outcome.reason} after {tries} attempt{'s' * (tries > 1)}")
            )
        wait = outcome.wait if outcome.wait is not None else base_delay * (2**attempt)
        clock.sleep(min(wait, MAX_SERVER_WAIT))
        attempt += 1


def _retry_after(headers: Mapping[str, str]) -> float | None:
    try:
        return float(headers.get("Retry-After", ""))
    except ValueError:
        return None
