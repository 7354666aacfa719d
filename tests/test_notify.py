"""Notification delivery rules, in-process against the simulator's sinks."""

from __future__ import annotations

import pytest
import requests

from snapshotd.clock import Clock
from snapshotd.config.model import TelegramTarget, WebhookEndpoint
from snapshotd.notify.delivery import DeliveryError
from snapshotd.notify.healthcheck import ping_url
from snapshotd.notify.telegram import send_telegram
from snapshotd.notify.webhook import send_webhook
from snapshotd.redact import Redactor
from snapshotd.simulator import Simulator

BOT = "4242:AAnotifyTESTbotTOKEN"


class NoSleep(Clock):
    def __init__(self) -> None:
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


def target(sim: Simulator, retries: int = 3) -> TelegramTarget:
    return TelegramTarget(BOT, "-100123", sim.telegram_url, 5.0, retries, 2.0, None, None)


def test_telegram_other_4xx_is_not_retried_and_the_error_hides_the_token(sim: Simulator) -> None:
    sim.cloud.add_fault("POST", r"^/telegram/", "status", status=401, times=5)
    with pytest.raises(DeliveryError) as caught:
        send_telegram(
            target(sim), "hi", session=requests.Session(), clock=NoSleep(), redactor=Redactor([BOT])
        )
    assert len(sim.received("telegram")) == 1
    assert "HTTP 401" in str(caught.value) and BOT not in str(caught.value)


def test_telegram_5xx_is_retried_with_exponential_backoff(sim: Simulator) -> None:
    sim.cloud.add_fault("POST", r"^/telegram/", "status", status=502, times=2)
    clock = NoSleep()
    outcome = send_telegram(
        target(sim), "hi", session=requests.Session(), clock=clock, redactor=Redactor()
    )
    assert outcome == "sent"
    assert len(sim.received("telegram")) == 3
    assert clock.slept == [2.0, 4.0]


def test_telegram_gives_up_after_the_configured_retries(sim: Simulator) -> None:
    sim.cloud.add_fault("POST", r"^/telegram/", "status", status=500, times=10)
    with pytest.raises(DeliveryError, match="after 2 attempts"):
        send_telegram(
            target(sim, retries=1),
            "hi",
            session=requests.Session(),
            clock=NoSleep(),
            redactor=Redactor(),
        )
    assert len(sim.received("telegram")) == 2


def test_webhook_429_honours_retry_after_and_keeps_the_delivery_id(sim: Simulator) -> None:
    sim.cloud.add_fault("POST", r"^/webhook/", "status", status=429)
    clock = NoSleep()
    send_webhook(
        WebhookEndpoint(sim.webhook_url(), None),
        {"a": "b"},
        timeout=5,
        retries=2,
        base_delay=2,
        session=requests.Session(),
        clock=clock,
        redactor=Redactor(),
    )
    first, second = sim.received("webhook")
    assert first.headers["x-snapshotd-delivery"] == second.headers["x-snapshotd-delivery"]
    assert "x-snapshotd-signature" not in first.headers  # unsigned without a secret
    assert second.json == {"a": "b"}
    assert clock.slept == [2.0]  # the simulator's 429 carries no Retry-After: backoff


def test_webhook_4xx_is_not_retried(sim: Simulator) -> None:
    sim.cloud.add_fault("POST", r"^/webhook/", "status", status=404, times=3)
    with pytest.raises(DeliveryError, match="HTTP 404"):
        send_webhook(
            WebhookEndpoint(sim.webhook_url(), "k"),
            {},
            timeout=5,
            retries=3,
            base_delay=1,
            session=requests.Session(),
            clock=NoSleep(),
            redactor=Redactor(),
        )
    assert len(sim.received("webhook")) == 1


def test_ping_urls_for_healthchecks_and_uptime_kuma() -> None:
    assert ping_url("https://hc-ping.com/abc", "start") == "https://hc-ping.com/abc/start"
    assert ping_url("https://hc-ping.com/abc/", "fail") == "https://hc-ping.com/abc/fail"
    assert ping_url("https://hc-ping.com/abc", "success") == "https://hc-ping.com/abc"
    kuma = ping_url("https://kuma.example/api/push/tok?status=up&msg=OK", "fail", "web: FAILURE")
    assert kuma == "https://kuma.example/api/push/tok?status=down&msg=web%3A+FAILURE"
