"""What every provider shares: snapshot values, naming, ownership, create and wait.

Ownership (DESIGN rule 1): a snapshot counts, and may be deleted, only when it
belongs to this server *and* was made by snapshotd or by the script it
replaces (labels on Hetzner, or a name of exactly ``<name>-YYYYMMDDHHMMSS``).
Anything else is listed as ignored, with the reason, and never touched.
"""

from __future__ import annotations

import logging
import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from snapshotd.clock import Clock
from snapshotd.config.model import PROVIDER_LABELS, ServerConfig
from snapshotd.errors import ProviderError
from snapshotd.http import ApiClient

NAME_TIME_FORMAT = "%Y%m%d%H%M%S"
MAX_PAGES = 500
ADOPT_WINDOW = 60.0  # seconds to look for a snapshot whose create reply was lost

log = logging.getLogger("snapshotd.providers")


@dataclass(frozen=True)
class Snapshot:
    id: str
    name: str
    created_at: datetime
    managed: bool
    note: str  # why it is managed, or why it is left alone

    def sort_key(self) -> tuple[datetime, str]:
        return (self.created_at, self.name)


@dataclass(frozen=True)
class Listing:
    """Every snapshot seen for one server, from a listing that completed across all pages."""

    snapshots: tuple[Snapshot, ...]

    @property
    def managed(self) -> tuple[Snapshot, ...]:
        return tuple(s for s in self.snapshots if s.managed)

    @property
    def ignored(self) -> tuple[Snapshot, ...]:
        return tuple(s for s in self.snapshots if not s.managed)

    def named(self, name: str) -> Snapshot | None:
        """The snapshot called ``name``, preferring a managed one if names collide."""
        matches = [s for s in self.snapshots if s.name == name]
        return next((s for s in matches if s.managed), matches[0] if matches else None)

    def by_id(self, snapshot_id: str) -> Snapshot | None:
        return next((s for s in self.snapshots if s.id == snapshot_id), None)

    def find(self, pending: PendingSnapshot) -> Snapshot | None:
        """The snapshot ``pending`` became: by id when the provider gave one, else by name."""
        if pending.snapshot_id is not None:
            return self.by_id(pending.snapshot_id)
        return self.named(pending.name)


@dataclass
class PendingSnapshot:
    """A snapshot that has been asked for; ``adopted`` when found rather than created."""

    name: str
    action_id: str | None = None
    snapshot_id: str | None = None
    adopted: bool = False
    progress: int | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Timing:
    poll_interval: float
    poll_interval_max: float
    creation_timeout: float


def snapshot_name(server_name: str, at: datetime) -> str:
    """``<name>-YYYYMMDDHHMMSS`` in UTC, the script's naming, now with a fixed zone."""
    return f"{server_name}-{at.astimezone(timezone.utc).strftime(NAME_TIME_FORMAT)}"


def name_time(server_name: str, name: str) -> datetime | None:
    """The UTC time in a managed name, or None when ``name`` is not exactly ours."""
    match = re.fullmatch(re.escape(server_name) + r"-(\d{14})", name)
    if not match:
        return None
    try:
        return datetime.strptime(match.group(1), NAME_TIME_FORMAT).replace(tzinfo=timezone.utc)
    except ValueError:
        return None


def require_dict(provider: str, value: object, what: str) -> dict[str, Any]:
    """``value`` if it is a JSON object, else a ProviderError naming what was expected."""
    if not isinstance(value, dict):
        label = PROVIDER_LABELS.get(provider, provider)
        raise ProviderError(
            provider, f"{label}'s reply has no valid {what}", code="malformed_response"
        )
    return value


def require_id(provider: str, value: object, what: str) -> str:
    """An id as a string: the APIs mix string and integer ids."""
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).strip():
        raise ProviderError(provider, f"missing or invalid {what}", code="malformed_response")
    return str(value).strip()


def parse_time(value: object, what: str, provider: str) -> datetime:
    if not isinstance(value, str):
        raise ProviderError(provider, f"{what} has no creation time", code="malformed_response")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ProviderError(
            provider, f"{what} has an unreadable time {value!r}", code="malformed_response"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


class Provider(ABC):
    """One server at one provider: create, wait, list managed, delete."""

    #: provider error codes meaning "busy with another action; asking again later is safe"
    busy_codes: frozenset[str] = frozenset()

    def __init__(
        self, server: ServerConfig, client: ApiClient, clock: Clock, timing: Timing
    ) -> None:
        self.server = server
        self.client = client
        self.clock = clock
        self.timing = timing

    # -- provider specifics ----------------------------------------------

    @abstractmethod
    def _create(self, name: str) -> PendingSnapshot: ...

    @abstractmethod
    def _poll(self, pending: PendingSnapshot) -> str:
        """Advance ``pending``: return 'running' or 'done'; raise ProviderError on failure."""

    @abstractmethod
    def find_pending(self, name: str) -> PendingSnapshot | None:
        """An existing snapshot or action for ``name``, to adopt instead of re-sending."""

    @abstractmethod
    def list_snapshots(self) -> Listing: ...

    @abstractmethod
    def _delete(self, snapshot: Snapshot) -> None: ...

    @abstractmethod
    def server_name(self) -> str:
        """The server's real name at the provider (read-only; for --check --online)."""

    # -- shared behaviour ------------------------------------------------

    def start_snapshot(self, name: str) -> PendingSnapshot:
        """Ask for a snapshot, never sending a second create for an unknown outcome.

        A busy server (another action running) is asked again with backoff
        inside the creation budget; an ambiguous failure (timeout, reset, 5xx
        after sending) is followed by a look for the snapshot, never a re-send.
        """
        deadline = self.clock.monotonic() + self.timing.creation_timeout
        delay = self.timing.poll_interval
        while True:
            try:
                return self._create(name)
            except ProviderError as exc:
                if exc.ambiguous:
                    return self._adopt_after_ambiguous(name, exc)
                if exc.code not in self.busy_codes or self.clock.monotonic() + delay > deadline:
                    raise
                log.info("%s is busy (%s); asking again in %.0fs", self._who(), exc.code, delay)
                self.clock.sleep(delay)
                delay = min(delay * 2, self.timing.poll_interval_max)

    def _adopt_after_ambiguous(self, name: str, cause: ProviderError) -> PendingSnapshot:
        """Look for the snapshot a create with an unknown outcome may have started.

        Providers can take a moment to show a new action, so this looks for a
        while (bounded by the creation budget) before concluding none was made.
        """
        log.warning("create of %s had an unknown outcome (%s); looking for it", name, cause)
        deadline = self.clock.monotonic() + min(ADOPT_WINDOW, self.timing.creation_timeout)
        delay = self.timing.poll_interval
        while True:
            try:
                found = self.find_pending(name)
            except ProviderError as exc:
                log.warning("looking for %s failed: %s", name, exc)
                found = None
            if found is not None:
                found.adopted = True
                log.info("adopted %s, which the provider had started", name)
                return found
            if self.clock.monotonic() + delay > deadline:
                break
            self.clock.sleep(delay)
            delay = min(delay * 2, self.timing.poll_interval_max)
        raise ProviderError(
            cause.provider,
            f"create of {name} failed with an unknown outcome ({cause.message}) and no such "
            "snapshot appeared; not re-sent, to avoid a duplicate",
            status=cause.status,
            code=cause.code,
        )

    def wait(
        self, pending: PendingSnapshot, on_progress: Callable[[int], None] | None = None
    ) -> None:
        """Poll until complete (delay doubling up to ``poll_interval_max``); raise on failure."""
        deadline = self.clock.monotonic() + self.timing.creation_timeout
        delay = self.timing.poll_interval
        last_progress: int | None = None
        while True:
            try:
                state = self._poll(pending)
            except ProviderError as exc:
                if not exc.retryable:
                    raise
                log.warning("polling %s failed, will poll again: %s", pending.name, exc)
                state = "running"
            if pending.progress is not None and pending.progress != last_progress:
                last_progress = pending.progress
                if on_progress:
                    on_progress(pending.progress)
            if state == "done":
                return
            if self.clock.monotonic() + delay > deadline:
                raise ProviderError(
                    self.server.provider,
                    f"snapshot {pending.name} did not complete within "
                    f"{self.timing.creation_timeout:.0f}s (snapshot_creation_timeout)",
                    code="timeout",
                )
            self.clock.sleep(delay)
            delay = min(delay * 2, self.timing.poll_interval_max)

    def find_completed(self, pending: PendingSnapshot) -> tuple[Snapshot, Listing]:
        """The finished snapshot and a complete listing that shows it.

        The listing is taken after completion, so pruning needs no second one.
        Some APIs show a new snapshot a moment late, hence the short retry.
        """
        for attempt in range(4):
            listing = self.list_snapshots()
            found = listing.find(pending)
            if found is not None:
                return found, listing
            if attempt < 3:
                self.clock.sleep(self.timing.poll_interval)
        raise ProviderError(
            self.server.provider,
            f"the action for {pending.name} completed but the snapshot is not listed",
            code="not_listed",
        )

    def delete(self, snapshot: Snapshot) -> bool:
        """Delete one managed snapshot; False when it was already gone (404)."""
        if not snapshot.managed:  # the last line of defence for rule 1
            raise ProviderError(
                self.server.provider, f"refusing to delete unmanaged snapshot {snapshot.name}"
            )
        try:
            self._delete(snapshot)
        except ProviderError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def classify_name(self, name: str) -> tuple[bool, str]:
        if name_time(self.server.name, name) is not None:
            return True, f"named {self.server.name}-YYYYMMDDHHMMSS"
        return False, f"manual or other name (not {self.server.name}-YYYYMMDDHHMMSS)"

    def _who(self) -> str:
        return f"{self.server.name} ({self.server.provider} {self.server.id})"

    def _next_page(self, seen: set[str], url: str | None) -> str | None:
        """Validate a pagination link: same origin, no loops, bounded."""
        if not url:
            return None
        if not self.client.same_origin(url):
            raise ProviderError(
                self.server.provider,
                "listing's next-page link points to another host; refusing to follow it",
                code="bad_pagination",
            )
        if url in seen or len(seen) >= MAX_PAGES:
            raise ProviderError(
                self.server.provider,
                "listing never ends (a next-page link repeats); nothing will be pruned",
                code="bad_pagination",
            )
        seen.add(url)
        return url
