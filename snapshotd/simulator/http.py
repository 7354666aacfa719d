"""The simulator's HTTP server: routing, rate limits, fault switches. Loopback only."""

from __future__ import annotations

import contextlib
import hashlib
import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

PREFIXES = {"digitalocean": "/digitalocean/v2", "hetzner": "/hetzner/v1"}


@dataclass
class SimRequest:
    method: str
    path: str  # below the provider prefix
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    base_url: str  # scheme, host and provider prefix

    @property
    def token(self) -> str | None:
        auth = self.headers.get("authorization", "")
        return auth[7:] if auth.lower().startswith("bearer ") else None

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"null")
        except ValueError:
            return None


@dataclass
class SimResponse:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


Route = Callable[[SimRequest], SimResponse]


class SimulatorServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, host: str, port: int, dispatch: Callable[[Handler], None]) -> None:
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the simulator binds loopback addresses only")
        self.dispatch = dispatch
        super().__init__((host, port), Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, name="simulator", daemon=True)
        thread.start()
        return thread


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: SimulatorServer

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        self.server.dispatch(self)

    do_POST = do_GET
    do_DELETE = do_GET
    do_PUT = do_GET

    def read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def split(self) -> tuple[str, dict[str, str]]:
        parts = urlsplit(self.path)
        return parts.path, dict(parse_qsl(parts.query, keep_blank_values=True))

    def send(self, response: SimResponse) -> None:
        payload = b""
        if isinstance(response.body, (bytes, bytearray)):
            payload = bytes(response.body)
        elif response.body is not None:
            payload = json.dumps(response.body).encode()
        self.send_response(response.status)
        if response.body is not None and not isinstance(response.body, (bytes, bytearray)):
            self.send_header("Content-Type", "application/json")
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if payload:
            self.wfile.write(payload)

    def drop(self) -> None:
        """Close the connection without an answer (a reset as the client sees it)."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def send_truncated(self, body: dict[str, Any]) -> None:
        full = json.dumps(body).encode()
        cut = full[: max(1, len(full) // 2)]
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(cut)))
        self.end_headers()
        self.wfile.write(cut)
        self.close_connection = True


def token_hash(token: str | None) -> str:
    return hashlib.sha256((token or "").encode()).hexdigest()[:12]


def now() -> float:
    return time.time()
