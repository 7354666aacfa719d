"""A loopback imitation of the DigitalOcean and Hetzner Cloud APIs, plus notification sinks.

It powers ``snapshotd --demo`` and the test suite::

    sim = Simulator().start()
    sim.cloud.add_server("hetzner", "token", 42, "web")
    ... point a server's api_url at sim.api_url("hetzner") ...
    sim.stop()

Routes: ``/digitalocean/v2/…``, ``/hetzner/v1/…``, ``/telegram/bot<token>/sendMessage``,
``/webhook/<name>`` and ``/ping/<name>[/start|/fail]``.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from snapshotd.simulator import digitalocean, hetzner
from snapshotd.simulator.cloud import Cloud, Fault, Logged
from snapshotd.simulator.http import (
    PREFIXES,
    Handler,
    SimRequest,
    SimResponse,
    SimulatorServer,
    token_hash,
)

__all__ = ["Cloud", "Delivery", "Fault", "Simulator"]

_ROUTES = {"digitalocean": digitalocean.handle, "hetzner": hetzner.handle}


@dataclass
class Delivery:
    """One request a notification sink received."""

    kind: str  # telegram | webhook | ping
    path: str
    headers: dict[str, str]
    body: bytes
    json: Any = None
    at: float = field(default_factory=time.time)


class Simulator:
    def __init__(self, *, snapshot_seconds: float = 0.5, host: str = "127.0.0.1", port: int = 0):
        self.cloud = Cloud(snapshot_seconds=snapshot_seconds)
        self.deliveries: list[Delivery] = []
        self._lock = threading.Lock()
        self._server = SimulatorServer(host, port, self._dispatch)

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> Simulator:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return self._server.url

    def api_url(self, provider: str) -> str:
        return self.url + PREFIXES[provider]

    @property
    def telegram_url(self) -> str:
        return self.url + "/telegram"

    def webhook_url(self, name: str = "hook") -> str:
        return f"{self.url}/webhook/{name}"

    def ping_url(self, name: str = "check") -> str:
        return f"{self.url}/ping/{name}"

    def received(self, kind: str) -> list[Delivery]:
        with self._lock:
            return [d for d in self.deliveries if d.kind == kind]

    # -- dispatch ------------------------------------------------------------

    def _dispatch(self, handler: Handler) -> None:
        path, query = handler.split()
        body = handler.read_body()
        headers = {k.lower(): v for k, v in handler.headers.items()}
        target = path + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")
        fault = self.cloud.take_fault(handler.command, target)
        if fault is not None and fault.kind == "delay":
            time.sleep(fault.seconds)
            fault = None
        if fault is not None and fault.kind == "drop_before":
            handler.drop()
            return
        for provider, prefix in PREFIXES.items():
            if path.startswith(prefix + "/"):
                self._provider(handler, provider, prefix, path, query, headers, body, fault)
                return
        self._sink(handler, path, headers, body, fault)

    def _provider(
        self,
        handler: Handler,
        provider: str,
        prefix: str,
        path: str,
        query: dict[str, str],
        headers: dict[str, str],
        body: bytes,
        fault: Fault | None,
    ) -> None:
        host = headers.get("host", self.url.split("://", 1)[1])
        request = SimRequest(
            method=handler.command,
            path=path[len(prefix) :],
            query=query,
            headers=headers,
            body=body,
            base_url=f"http://{host}{prefix}",
        )
        token = request.token or ""
        allowed, limit, remaining, reset, retry_after = self.cloud.rate_limit(provider, token)
        if not allowed:
            response = _error(provider, 429, "rate_limit_exceeded", "API rate limit exceeded")
            response.headers["Retry-After"] = str(retry_after)
        elif fault is not None and fault.kind in ("status", "retry_after"):
            response = _error(provider, fault.status, fault.code, "simulated failure")
            if fault.kind == "retry_after":
                response.status = 429
                response.headers["Retry-After"] = str(int(fault.seconds))
        else:
            response = _ROUTES[provider](self.cloud, request)
        names = ("ratelimit-limit", "ratelimit-remaining", "ratelimit-reset")
        if provider == "hetzner":
            names = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")
        response.headers.update(zip(names, (str(limit), str(remaining), str(reset)), strict=True))
        self.cloud.record(
            Logged(
                provider,
                request.method,
                request.path,
                query,
                response.status,
                token_hash(token),
                request.json() if body else None,
                time.time(),
            )
        )
        if fault is not None and fault.kind == "loop_next" and isinstance(response.body, dict):
            links = response.body.get("links")
            if isinstance(links, dict):  # DigitalOcean: a next link back to this very page
                links["pages"] = {"next": request.base_url + request.path + "?" + _query(query)}
            meta = response.body.get("meta", {}).get("pagination")
            if isinstance(meta, dict):  # Hetzner: next_page pointing at the current page
                meta["next_page"] = meta["page"]
        if fault is not None and fault.kind == "delay_response":
            time.sleep(fault.seconds)  # processed already: the client times out, the work is done
        if fault is not None and fault.kind == "drop":
            handler.drop()
        elif fault is not None and fault.kind == "malformed" and response.status < 300:
            handler.send(
                SimResponse(200, b"<html>502 Bad Gateway</html>", {"Content-Type": "text/html"})
            )
        elif fault is not None and fault.kind == "truncated" and isinstance(response.body, dict):
            handler.send_truncated(response.body)
        else:
            handler.send(response)

    def _sink(
        self, handler: Handler, path: str, headers: dict[str, str], body: bytes, fault: Fault | None
    ) -> None:
        kind = path.split("/")[1] if path.count("/") >= 1 else ""
        if kind not in ("telegram", "webhook", "ping"):
            handler.send(SimResponse(404, {"error": "unknown route"}))
            return
        delivery = Delivery(kind, path, headers, body)
        try:
            import json

            delivery.json = json.loads(body) if body and kind != "ping" else None
        except ValueError:
            delivery.json = None
        with self._lock:
            self.deliveries.append(delivery)
        if fault is not None:
            if fault.kind == "drop":
                handler.drop()
                return
            if kind == "telegram" and fault.status == 429:
                handler.send(
                    SimResponse(
                        429,
                        {
                            "ok": False,
                            "error_code": 429,
                            "description": "Too Many Requests: retry later",
                            "parameters": {"retry_after": int(fault.seconds) or 1},
                        },
                    )
                )
                return
            handler.send(
                SimResponse(
                    fault.status,
                    {"ok": False, "error_code": fault.status, "description": "simulated failure"},
                )
            )
            return
        if kind == "telegram":
            handler.send(_telegram_reply(delivery.json))
            return
        handler.send(SimResponse(200, {"ok": True}))


def _query(query: dict[str, str]) -> str:
    from urllib.parse import urlencode

    return urlencode(query)


def _error(provider: str, status: int, code: str, message: str) -> SimResponse:
    if provider == "digitalocean":
        do_codes = {"rate_limit_exceeded": "too_many_requests", "server_error": "server_error"}
        return digitalocean.error(status, do_codes.get(code, code), message)
    return hetzner.error(status, code, message)


def _telegram_reply(message: Any) -> SimResponse:
    if not isinstance(message, dict) or "chat_id" not in message or not message.get("text"):
        return SimResponse(
            400,
            {"ok": False, "error_code": 400, "description": "Bad Request: message text is empty"},
        )
    if len(str(message["text"])) > 4096:
        return SimResponse(
            400, {"ok": False, "error_code": 400, "description": "Bad Request: message is too long"}
        )
    if message.get("parse_mode") == "Markdown":
        problem = markdown_problem(str(message["text"]))
        if problem is not None:
            return SimResponse(
                400,
                {
                    "ok": False,
                    "error_code": 400,
                    "description": f"Bad Request: can't parse entities: {problem}",
                },
            )
    return SimResponse(200, {"ok": True, "result": {"message_id": 1, "text": message["text"]}})


def markdown_problem(text: str) -> str | None:
    """Where Telegram's legacy Markdown parser would reject ``text``, or None."""
    closing = {"*": "*", "_": "_", "`": "`"}
    index = 0
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text) and text[index + 1] in "_*`[":
            index += 2
            continue
        if text.startswith("```", index):
            end = text.find("```", index + 3)
            if end < 0:
                return f"Can't find end of the entity starting at byte offset {index}"
            index = end + 3
            continue
        if char in closing:
            end = text.find(closing[char], index + 1)
            if end < 0:
                return f"Can't find end of the entity starting at byte offset {index}"
            index = end + 1
            continue
        if char == "[":
            match = re.compile(r"\[[^\]]*\]\([^)]*\)").match(text, index)
            if not match:
                return f"Can't find end of the entity starting at byte offset {index}"
            index = match.end()
            continue
        index += 1
    return None
