"""One job for one server: lock → create → wait → list → plan → delete → notify → record.

``run_job`` returns a :class:`JobResult` and never raises for expected
failures. It prunes only after the new snapshot is confirmed complete and only
from a listing that finished across all pages (DESIGN rules 2 and 4).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TypeVar

from snapshotd.clock import Clock
from snapshotd.config.model import ServerConfig, Settings
from snapshotd.errors import ProviderError
from snapshotd.http import HttpContext
from snapshotd.locks import ServerLock
from snapshotd.notify import Notifier
from snapshotd.providers import (
    Listing,
    PendingSnapshot,
    Provider,
    Snapshot,
    UnlabelledImageCache,
    make_provider,
)
from snapshotd.providers.base import name_time, snapshot_name
from snapshotd.redact import Redactor
from snapshotd.result import JobResult, Status
from snapshotd.retention import Plan, plan_retention
from snapshotd.state import History

log = logging.getLogger("snapshotd.pipeline")
T = TypeVar("T")


@dataclass
class JobContext:
    """Everything a job needs from outside; built once per process (or per reload)."""

    settings: Settings
    http: HttpContext
    clock: Clock
    redactor: Redactor
    notifier: Notifier | None = None
    history: History | None = None
    legacy_cache: UnlabelledImageCache | None = None
    deliveries: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def lock_dir(self) -> Path:
        return self.settings.state_dir / "locks"


def run_job(
    server: ServerConfig,
    ctx: JobContext,
    *,
    slot: datetime | None = None,
    dry_run: bool = False,
) -> JobResult:
    """Run the whole pipeline for ``server``; ``slot`` is the scheduled time, if any."""
    job = _Job(server, ctx, slot, dry_run)
    if dry_run:
        return job.plan_only()
    lock = ServerLock(ctx.lock_dir, server.key)
    if not lock.acquire():
        log.warning("%s: locked by another run; skipped", server.name, extra={"server": server.key})
        return job.finish(Status.LOCKED)
    try:
        return job.run()
    finally:
        lock.release()


class _Job:
    def __init__(
        self, server: ServerConfig, ctx: JobContext, slot: datetime | None, dry_run: bool
    ) -> None:
        self.server = server
        self.ctx = ctx
        self.slot = slot
        self.dry_run = dry_run
        self.started_at = ctx.clock.now()
        self.provider: Provider = make_provider(
            server, ctx.http, ctx.clock, ctx.settings, ctx.legacy_cache
        )
        self.run_id: int | None = None
        self.notes: list[str] = []
        self.timings: list[tuple[str, float]] = []
        self.fields: dict[str, object] = {}
        self.extra = {"server": server.key, "provider": server.provider}

    # -- entry points ----------------------------------------------------

    def run(self) -> JobResult:
        if self.ctx.notifier:
            self.ctx.notifier.job_started(self.server)
        if self.ctx.history:
            self.run_id = self.ctx.history.start_run(
                self.server.key, self.server.name, self.slot, self.started_at
            )
        log.info("%s: job started", self.server.name, extra=self.extra)
        try:
            result = self._run_steps()
        except Exception as exc:  # an unexpected bug must still be reported, not crash the daemon
            log.exception("%s: internal error", self.server.name, extra=self.extra)
            result = self.finish(
                Status.FAILURE, error=f"internal error: {type(exc).__name__}: {exc}"
            )
        return self._report(result)

    def plan_only(self) -> JobResult:
        name = snapshot_name(self.server.name, self.started_at)
        try:
            listing = self._timed("list", self.provider.list_snapshots)
        except ProviderError as exc:
            return self.finish(Status.FAILURE, error=exc.message)
        would_be = Snapshot("(new)", name, self.started_at, True, "would be created now")
        plan = self._plan(Listing((*listing.snapshots, would_be)))
        self.fields.update(snapshot_name=name, plan=plan)
        return self.finish(
            Status.SUCCESS,
            kept=plan.kept_names,
            managed_count=len(plan.keep),
        )

    # -- the steps ---------------------------------------------------------

    def _run_steps(self) -> JobResult:
        existing = self._existing_for_slot()
        if isinstance(existing, JobResult):
            return existing
        if existing is not None:
            snapshot, listing = existing
            self.notes.append(f"slot already has {snapshot.name}; creation skipped")
            log.info("%s: %s", self.server.name, self.notes[-1], extra=self.extra)
            return self._prune(snapshot, Status.SKIPPED, listing)

        pending = self._resume_in_flight()
        if pending is None:
            name = snapshot_name(self.server.name, self.ctx.clock.now())
            # Recorded before sending: a crash right after the provider accepts the create
            # must still leave a name the next run can look for.
            self._remember(PendingSnapshot(name))
            try:
                pending = self._timed("create", lambda: self.provider.start_snapshot(name))
            except ProviderError as exc:
                self._forget()
                return self.finish(Status.FAILURE, error=exc.message)
            if pending.adopted:
                self.notes.append(f"adopted {pending.name} after an unclear create reply")
        self.fields["snapshot_name"] = pending.name
        self._remember(pending)
        try:
            self._timed("wait", lambda: self.provider.wait(pending, self._progress))
        except ProviderError as exc:
            if exc.code != "timeout":
                self._forget()
            return self.finish(Status.FAILURE, error=exc.message)
        self._forget()
        self.fields.update(created=not pending.adopted, adopted=pending.adopted)
        log.info("%s: snapshot %s is complete", self.server.name, pending.name, extra=self.extra)
        try:
            snapshot, listing = self._timed("list", lambda: self.provider.find_completed(pending))
        except ProviderError as exc:
            return self.finish(
                Status.PARTIAL,
                error=f"{pending.name} completed, but listing failed; nothing pruned: "
                f"{exc.message}",
            )
        self.fields["snapshot_id"] = snapshot.id
        return self._prune(snapshot, Status.SUCCESS, listing)

    def _prune(self, newest: Snapshot, status: Status, listing: Listing | None = None) -> JobResult:
        """Delete what the plan drops, from a complete listing that shows ``newest``."""
        self.fields.setdefault("snapshot_name", newest.name)
        self.fields.setdefault("snapshot_id", newest.id)
        if listing is None:
            try:
                listing = self._timed("list", self.provider.list_snapshots)
            except ProviderError as exc:
                fail = Status.PARTIAL if status is Status.SUCCESS else Status.FAILURE
                return self.finish(fail, error=f"listing failed, nothing pruned: {exc.message}")
        shown = listing.by_id(newest.id)
        if shown is None or not shown.managed:
            return self.finish(
                Status.PARTIAL,
                error=f"{newest.name} is missing from the listing; nothing pruned",
            )
        plan = self._plan(listing)
        self.fields["plan"] = plan
        deleted: list[str] = []
        failures: list[str] = []
        started = time.monotonic()
        for decision in plan.delete:
            snapshot = decision.snapshot
            try:
                gone_now = self.provider.delete(snapshot)
            except ProviderError as exc:
                failures.append(f"{snapshot.name}: {exc.message}")
                log.error(
                    "%s: could not delete %s: %s",
                    self.server.name,
                    snapshot.name,
                    exc.message,
                    extra=self.extra,
                )
                continue
            deleted.append(snapshot.name)
            log.info(
                "%s: deleted %s (%s)%s",
                self.server.name,
                snapshot.name,
                "; ".join(decision.reasons),
                "" if gone_now else ", already gone",
                extra=self.extra,
            )
        self.timings.append(("delete", time.monotonic() - started))
        managed_after = len(listing.managed) - len(deleted)
        newest_at = max((s.created_at for s in listing.managed), default=None)
        if failures:
            status = Status.PARTIAL
        return self.finish(
            status,
            deleted=tuple(deleted),
            kept=plan.kept_names,
            managed_count=managed_after,
            newest_at=newest_at,
            error="; ".join(failures) or None,
        )

    def _existing_for_slot(self) -> tuple[Snapshot, Listing] | JobResult | None:
        """A managed snapshot already made for this scheduled slot (by anyone), if any."""
        if self.slot is None:
            return None
        try:
            listing = self.provider.list_snapshots()
        except ProviderError as exc:
            return self.finish(Status.FAILURE, error=f"listing before create failed: {exc.message}")
        window_start = self.slot - timedelta(seconds=1)
        for snapshot in sorted(listing.managed, key=Snapshot.sort_key, reverse=True):
            made = name_time(self.server.name, snapshot.name) or snapshot.created_at
            if made >= window_start:
                return snapshot, listing
        return None

    def _resume_in_flight(self) -> PendingSnapshot | None:
        """After a crash: keep waiting on the snapshot the last run started."""
        if not self.ctx.history:
            return None
        flight = self.ctx.history.in_flight(self.server.key)
        if flight is None:
            return None
        self.notes.append(f"resumed {flight.snapshot_name}, left in flight by an interrupted run")
        log.warning("%s: %s", self.server.name, self.notes[-1], extra=self.extra)
        if flight.action_id is None and flight.snapshot_id is None:
            found = self.provider.find_pending(flight.snapshot_name)
            if found is None:
                self.ctx.history.clear_in_flight(self.server.key)
                self.notes.append(f"{flight.snapshot_name} was never started; creating a new one")
                return None
            found.adopted = True
            return found
        return PendingSnapshot(
            name=flight.snapshot_name,
            action_id=flight.action_id,
            snapshot_id=flight.snapshot_id,
            adopted=True,
        )

    # -- helpers -----------------------------------------------------------

    def _plan(self, listing: Listing) -> Plan:
        return plan_retention(
            listing.snapshots,
            self.server.retention,
            self.ctx.clock.now(),
            self.ctx.settings.timezone,
        )

    def _remember(self, pending: PendingSnapshot) -> None:
        if self.ctx.history and self.run_id is not None:
            self.ctx.history.record_in_flight(
                self.server.key,
                self.run_id,
                pending.name,
                pending.action_id,
                pending.snapshot_id,
                self.ctx.clock.now(),
            )

    def _forget(self) -> None:
        if self.ctx.history:
            self.ctx.history.clear_in_flight(self.server.key)

    def _progress(self, percent: int) -> None:
        log.info("%s: snapshot %d%% done", self.server.name, percent, extra=self.extra)

    def _timed(self, step: str, call: Callable[[], T]) -> T:
        started = time.monotonic()
        try:
            return call()
        finally:
            self.timings.append((step, time.monotonic() - started))

    def finish(self, status: Status, **values: object) -> JobResult:
        merged = {**self.fields, **values}
        created = bool(merged.pop("created", False))
        adopted = bool(merged.pop("adopted", False))
        return JobResult(
            server=self.server,
            status=status,
            started_at=self.started_at,
            finished_at=self.ctx.clock.now(),
            created=created,
            adopted=adopted,
            requests=self.provider.client.requests_made,
            dry_run=self.dry_run,
            notes=tuple(self.notes),
            timings=tuple(self.timings),
            **merged,  # type: ignore[arg-type]
        )

    def _report(self, result: JobResult) -> JobResult:
        level = logging.INFO if result.status.ok else logging.ERROR
        log.log(
            level,
            "%s",
            result.summary(),
            extra={
                **self.extra,
                "status": result.status.value,
                "duration": round(result.duration, 3),
                "job_id": self.server.job_id,
            },
        )
        if self.ctx.notifier:
            self.ctx.deliveries[self.server.key] = self.ctx.notifier.job_finished(result)
        if self.ctx.history and self.run_id is not None:
            self.ctx.history.finish_run(self.run_id, result)
        return result
