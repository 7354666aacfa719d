"""Sending a job's result everywhere it should go. Never changes the job's outcome."""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from datetime import tzinfo
from urllib.parse import urlsplit

import requests

from snapshotd.clock import Clock
from snapshotd.config.model import ServerConfig
from snapshotd.notify.healthcheck import send_ping
from snapshotd.notify.telegram import send_telegram
from snapshotd.notify.templates import (
    DEFAULT_FAILURE_MESSAGE,
    DEFAULT_PAYLOAD,
    DEFAULT_SUCCESS_MESSAGE,
    render_payload,
    render_telegram,
)
from snapshotd.notify.values import template_values
from snapshotd.notify.webhook import send_webhook
from snapshotd.redact import Redactor
from snapshotd.result import JobResult, Status

log = logging.getLogger("snapshotd.notify")


class Notifier:
    def __init__(
        self,
        session: requests.Session,
        clock: Clock,
        redactor: Redactor,
        zone: tzinfo,
        hostname: str | None = None,
    ) -> None:
        self.session = session
        self.clock = clock
        self.redactor = redactor
        self.zone = zone
        self.hostname = hostname or socket.gethostname()

    def job_started(self, server: ServerConfig) -> None:
        if server.healthcheck_url:
            self._attempt(
                "health-check start",
                server,
                lambda: send_ping(
                    server.healthcheck_url or "",
                    "start",
                    "",
                    session=self.session,
                    clock=self.clock,
                    redactor=self.redactor,
                ),
            )

    def job_finished(self, result: JobResult) -> tuple[str, ...]:
        """Deliver every notification for ``result``; return one line per delivery."""
        if result.status is Status.LOCKED or result.dry_run:
            return ()
        server = result.server
        values = template_values(result, self.hostname, self.zone, self.redactor)
        success = result.status.ok
        outcomes: list[str] = []
        if server.telegram:
            target = server.telegram
            if success:
                template = target.message_success or DEFAULT_SUCCESS_MESSAGE
            else:
                template = target.message_failure or DEFAULT_FAILURE_MESSAGE
            text = render_telegram(template, values)
            outcomes.append(
                self._attempt(
                    "telegram",
                    server,
                    lambda: send_telegram(
                        target, text, session=self.session, clock=self.clock, redactor=self.redactor
                    ),
                )
            )
        if server.webhook:
            hook = server.webhook
            custom = hook.payload_success if success else hook.payload_failure
            template_payload = custom or DEFAULT_PAYLOAD
            payload = render_payload(template_payload, values)
            for endpoint in hook.endpoints:
                outcomes.append(
                    self._attempt(
                        f"webhook {_host(endpoint.url)}",
                        server,
                        lambda endpoint=endpoint: send_webhook(
                            endpoint,
                            payload,
                            timeout=hook.timeout,
                            retries=hook.retries,
                            base_delay=hook.base_delay,
                            session=self.session,
                            clock=self.clock,
                            redactor=self.redactor,
                        ),
                    )
                )
        if server.healthcheck_url:
            event = "success" if success else "fail"
            outcomes.append(
                self._attempt(
                    f"health-check {event}",
                    server,
                    lambda: send_ping(
                        server.healthcheck_url or "",
                        event,
                        result.summary(),
                        session=self.session,
                        clock=self.clock,
                        redactor=self.redactor,
                    ),
                )
            )
        return tuple(outcomes)

    def _attempt(self, channel: str, server: ServerConfig, send: Callable[[], str]) -> str:
        try:
            outcome = send()
        except Exception as exc:  # a notification must never fail the job
            message = self.redactor.redact(f"{channel}: failed: {exc}")
            log.warning("%s: %s", server.name, message, extra={"server": server.key})
            return message
        log.info("%s: %s: %s", server.name, channel, outcome, extra={"server": server.key})
        return f"{channel}: {outcome}"


def _host(url: str) -> str:
    return urlsplit(url).netloc.rsplit("@", 1)[-1]
