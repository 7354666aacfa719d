"""Retention planning: which managed snapshots to keep, which to delete, and why.

A pure function over plain values. The rules follow restic's
``forget --keep-*``: ``last`` keeps the n newest; ``hourly``/``daily``/
``weekly``/``monthly``/``yearly`` each keep the newest snapshot of the n most
recent periods that have one, in the configured time zone. A snapshot is
kept when any rule keeps it. Whatever the policy, the newest managed snapshot
is kept, snapshots dated after "now" (clock skew) are kept, and unmanaged
snapshots are never planned for deletion.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo

from snapshotd.config.model import RetentionPolicy
from snapshotd.providers.base import Snapshot

BUCKETS: tuple[tuple[str, str, Callable[[datetime], tuple[int, ...]]], ...] = (
    ("hourly", "hour", lambda t: (t.year, t.month, t.day, t.hour)),
    ("daily", "day", lambda t: (t.year, t.month, t.day)),
    ("weekly", "week", lambda t: tuple(t.isocalendar()[:2])),
    ("monthly", "month", lambda t: (t.year, t.month)),
    ("yearly", "year", lambda t: (t.year,)),
)


@dataclass(frozen=True)
class Decision:
    snapshot: Snapshot
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class Plan:
    keep: tuple[Decision, ...]  # newest first
    delete: tuple[Decision, ...]  # newest first
    ignored: tuple[Snapshot, ...]  # not managed: never touched

    @property
    def kept_names(self) -> tuple[str, ...]:
        return tuple(d.snapshot.name for d in self.keep)


def plan_retention(
    snapshots: Iterable[Snapshot], policy: RetentionPolicy, now: datetime, zone: tzinfo
) -> Plan:
    """Decide keep or delete for every managed snapshot in ``snapshots``."""
    everything = list(snapshots)
    ignored = tuple(s for s in everything if not s.managed)
    managed = sorted((s for s in everything if s.managed), key=Snapshot.sort_key, reverse=True)
    reasons: dict[str, list[str]] = {s.id: [] for s in managed}

    if managed:
        reasons[managed[0].id].append("newest")
    for snapshot in managed:
        if snapshot.created_at > now:
            reasons[snapshot.id].append("dated in the future (clock skew)")
    for index, snapshot in enumerate(managed[: policy.last]):
        reasons[snapshot.id].append(f"last {index + 1}/{policy.last}")
    for rule, noun, bucket in BUCKETS:
        count = getattr(policy, rule)
        for position, snapshot in enumerate(_newest_per_bucket(managed, count, bucket, zone)):
            reasons[snapshot.id].append(f"{rule} {position + 1}/{count} (newest of its {noun})")

    keep = tuple(Decision(s, tuple(reasons[s.id])) for s in managed if reasons[s.id])
    delete = tuple(Decision(s, (_why_dropped(policy),)) for s in managed if not reasons[s.id])
    return Plan(keep=keep, delete=delete, ignored=ignored)


def _newest_per_bucket(
    newest_first: Sequence[Snapshot],
    count: int,
    bucket: Callable[[datetime], tuple[int, ...]],
    zone: tzinfo,
) -> list[Snapshot]:
    chosen: list[Snapshot] = []
    last_bucket: tuple[int, ...] | None = None
    for snapshot in newest_first:
        if len(chosen) >= count:
            break
        current = bucket(snapshot.created_at.astimezone(zone))
        if current != last_bucket:
            chosen.append(snapshot)
            last_bucket = current
    return chosen


def _why_dropped(policy: RetentionPolicy) -> str:
    return f"beyond the retention policy ({policy.describe()})"
