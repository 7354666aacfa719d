"""The simulator's state: accounts, servers, snapshots, actions, rate limits and faults.

Everything is guarded by one lock; time is real (monotonic for durations, UTC
wall time for timestamps), so a snapshotd process talking to the simulator
over loopback sees the same clock.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

PROVIDERS = ("digitalocean", "hetzner")


@dataclass
class SimServer:
    provider: str
    id: int
    name: str
    token: str


@dataclass
class SimSnapshot:
    provider: str
    id: int
    name: str  # DigitalOcean name / Hetzner description
    server_id: int
    created: datetime
    token: str
    kind: str = "snapshot"  # or "backup"
    status: str = "available"  # Hetzner: creating / available
    labels: dict[str, str] = field(default_factory=dict)
    protected: bool = False


@dataclass
class SimAction:
    provider: str
    id: int
    server_id: int
    token: str
    name: str
    started: datetime
    started_mono: float
    duration: float
    image_id: int | None = None
    outcome: str = "success"  # or "error"
    finished: datetime | None = None

    def state(self, now_mono: float) -> str:
        if self.finished is not None:
            return "done"
        return "running" if now_mono - self.started_mono < self.duration else "finishing"

    def progress(self, now_mono: float) -> int:
        if self.finished is not None or self.duration <= 0:
            return 100
        return max(0, min(99, int((now_mono - self.started_mono) / self.duration * 100)))


@dataclass
class Fault:
    """Misbehave on the next ``times`` requests matching ``method`` and ``path`` (a regex)."""

    method: str
    path: str
    # status | retry_after | malformed | truncated | drop | drop_before | delay (before
    # processing) | delay_response (after processing) | loop_next (pagination never ends)
    kind: str
    times: int = 1
    status: int = 500
    seconds: float = 0.0
    code: str = "server_error"

    def matches(self, method: str, path: str) -> bool:
        return (
            self.times > 0
            and self.method in (method, "*")
            and re.search(self.path, path) is not None
        )


class TokenBucket:
    """Hetzner-style bucket: ``limit`` requests, refilled evenly over ``period`` seconds."""

    def __init__(self, limit: int, period: float) -> None:
        self.limit = limit
        self.period = period
        self.tokens = float(limit)
        self.updated = time.monotonic()

    def take(self) -> tuple[bool, int, int]:
        now = time.monotonic()
        rate = self.limit / self.period
        self.tokens = min(self.limit, self.tokens + (now - self.updated) * rate)
        self.updated = now
        allowed = self.tokens >= 1
        if allowed:
            self.tokens -= 1
        remaining = int(self.tokens)
        reset = int(time.time() + (self.limit - self.tokens) / rate) + 1
        return allowed, remaining, reset

    def retry_after(self) -> int:
        return max(1, int((1 - self.tokens) / (self.limit / self.period)) + 1)


@dataclass
class Logged:
    provider: str
    method: str
    path: str
    query: dict[str, str]
    status: int
    token_hash: str
    body: Any = None
    at: float = 0.0


class Cloud:
    def __init__(self, *, snapshot_seconds: float = 0.5) -> None:
        self.lock = threading.RLock()
        self.snapshot_seconds = snapshot_seconds
        self.servers: dict[tuple[str, int], SimServer] = {}
        self.snapshots: dict[tuple[str, int], SimSnapshot] = {}
        self.actions: dict[tuple[str, int], SimAction] = {}
        self.tokens: dict[str, str] = {}  # token -> provider
        self.faults: list[Fault] = []
        self.log: list[Logged] = []
        self.rate_limits: dict[str, tuple[int, float]] = {}
        self.buckets: dict[str, TokenBucket] = {}
        self.error_actions: set[tuple[str, int]] = set()
        self.slow_servers: dict[tuple[str, int], float] = {}
        self._ids = itertools.count(100_001)

    # -- set-up -----------------------------------------------------------

    def add_server(self, provider: str, token: str, server_id: int, name: str) -> SimServer:
        with self.lock:
            self.tokens[token] = provider
            server = SimServer(provider, server_id, name, token)
            self.servers[(provider, server_id)] = server
            return server

    def add_snapshot(
        self,
        provider: str,
        server_id: int,
        name: str,
        *,
        age: timedelta = timedelta(0),
        token: str | None = None,
        kind: str = "snapshot",
        status: str = "available",
        labels: dict[str, str] | None = None,
        protected: bool = False,
    ) -> SimSnapshot:
        with self.lock:
            owner = token or self.servers[(provider, server_id)].token
            snapshot = SimSnapshot(
                provider=provider,
                id=self.next_id(),
                name=name,
                server_id=server_id,
                created=_now() - age,
                token=owner,
                kind=kind,
                status=status,
                labels=dict(labels or {}),
                protected=protected,
            )
            self.snapshots[(provider, snapshot.id)] = snapshot
            return snapshot

    def set_rate_limit(self, provider: str, limit: int, period: float) -> None:
        with self.lock:
            self.rate_limits[provider] = (limit, period)
            self.buckets = {k: v for k, v in self.buckets.items() if not k.startswith(provider)}

    def add_fault(self, method: str, path: str, kind: str, **options: Any) -> Fault:
        fault = Fault(method, path, kind, **options)
        with self.lock:
            self.faults.append(fault)
        return fault

    def fail_actions(self, provider: str, server_id: int) -> None:
        """Snapshot actions on this server end in an error."""
        with self.lock:
            self.error_actions.add((provider, server_id))

    def set_snapshot_seconds(self, provider: str, server_id: int, seconds: float) -> None:
        with self.lock:
            self.slow_servers[(provider, server_id)] = seconds

    # -- request-time helpers --------------------------------------------

    def next_id(self) -> int:
        return next(self._ids)

    def take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.matches(method, path):
                    fault.times -= 1
                    return fault
        return None

    def rate_limit(self, provider: str, token: str) -> tuple[bool, int, int, int, int]:
        """(allowed, limit, remaining, reset, retry_after) for one request."""
        limit, period = self.rate_limits.get(
            provider, (5000, 3600.0) if provider == "digitalocean" else (3600, 3600.0)
        )
        key = f"{provider}:{hashlib.sha256(token.encode()).hexdigest()}"
        with self.lock:
            bucket = self.buckets.setdefault(key, TokenBucket(limit, period))
            allowed, remaining, reset = bucket.take()
            return allowed, limit, remaining, reset, bucket.retry_after()

    def start_action(self, server: SimServer, name: str, image_id: int | None = None) -> SimAction:
        with self.lock:
            key = (server.provider, server.id)
            action = SimAction(
                provider=server.provider,
                id=self.next_id(),
                server_id=server.id,
                token=server.token,
                name=name,
                started=_now(),
                started_mono=time.monotonic(),
                duration=self.slow_servers.get(key, self.snapshot_seconds),
                image_id=image_id,
                outcome="error" if key in self.error_actions else "success",
            )
            self.actions[(server.provider, action.id)] = action
            return action

    def running_action(self, provider: str, server_id: int) -> SimAction | None:
        self.settle()
        with self.lock:
            for action in self.actions.values():
                if (
                    action.provider == provider
                    and action.server_id == server_id
                    and action.finished is None
                ):
                    return action
        return None

    def settle(self) -> None:
        """Finish actions whose time has come: their snapshots appear (or fail)."""
        now_mono = time.monotonic()
        with self.lock:
            for action in self.actions.values():
                if action.finished is not None or action.state(now_mono) != "finishing":
                    continue
                action.finished = _now()
                if action.provider == "digitalocean":
                    if action.outcome == "success":
                        snapshot = SimSnapshot(
                            "digitalocean",
                            self.next_id(),
                            action.name,
                            action.server_id,
                            action.started,
                            action.token,
                        )
                        self.snapshots[("digitalocean", snapshot.id)] = snapshot
                elif action.image_id is not None:
                    image = self.snapshots.get(("hetzner", action.image_id))
                    if image is not None:
                        if action.outcome == "success":
                            image.status = "available"
                        else:
                            del self.snapshots[("hetzner", action.image_id)]

    def record(self, entry: Logged) -> None:
        with self.lock:
            self.log.append(entry)

    # -- inspection for tests and the demo -------------------------------

    def snapshots_of(self, provider: str, server_id: int) -> list[SimSnapshot]:
        self.settle()
        with self.lock:
            return sorted(
                (
                    s
                    for s in self.snapshots.values()
                    if s.provider == provider and s.server_id == server_id
                ),
                key=lambda s: (s.created, s.id),
            )

    def requests(self, provider: str | None = None) -> list[Logged]:
        with self.lock:
            return [e for e in self.log if provider is None or e.provider == provider]

    def count_status(self, status: int) -> int:
        with self.lock:
            return sum(1 for e in self.log if e.status == status)


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def iso(moment: datetime | None) -> str | None:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment is not None else None
