"""The value one job produces; what notifications, history and the CLI report."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

from snapshotd.config.model import ServerConfig
from snapshotd.retention import Plan


class Status(str, enum.Enum):
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    PARTIAL = "PARTIAL"  # the snapshot was made, but something after it failed
    SKIPPED = "SKIPPED"  # this slot already had its snapshot; pruning still ran
    LOCKED = "LOCKED"  # another run holds this server; nothing was done

    @property
    def ok(self) -> bool:
        return self in (Status.SUCCESS, Status.SKIPPED)


@dataclass(frozen=True)
class JobResult:
    server: ServerConfig
    status: Status
    started_at: datetime
    finished_at: datetime
    snapshot_name: str | None = None
    snapshot_id: str | None = None
    created: bool = False
    adopted: bool = False
    deleted: tuple[str, ...] = ()
    kept: tuple[str, ...] = ()
    managed_count: int | None = None
    newest_at: datetime | None = None
    error: str | None = None
    requests: int = 0
    dry_run: bool = False
    plan: Plan | None = field(default=None, compare=False)
    notes: tuple[str, ...] = ()
    timings: tuple[tuple[str, float], ...] = ()

    @property
    def duration(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()

    def summary(self) -> str:
        """One line, for stdout, logs, health-check bodies and STATUS=."""
        who = f"{self.server.name} ({self.server.provider} {self.server.id})"
        if self.status is Status.LOCKED:
            return f"{who}: LOCKED, another run is working on this server"
        parts = [f"{who}: {self.status.value}"]
        if self.snapshot_name:
            verb = "adopted" if self.adopted else ("created" if self.created else "kept")
            if self.dry_run:
                verb = "would create"
            parts.append(f"{verb} {self.snapshot_name}")
        if self.managed_count is not None:
            parts.append(f"{self.managed_count} managed")
        if self.deleted:
            parts.append(f"deleted {len(self.deleted)}")
        parts.append(f"{self.duration:.1f}s, {self.requests} requests")
        line = ", ".join(parts)
        return f"{line}; error: {self.error}" if self.error else line
