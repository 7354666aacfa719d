"""Retention planning: properties checked with Hypothesis against a reference implementation."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from snapshotd.config.model import RetentionPolicy
from snapshotd.providers.base import Snapshot
from snapshotd.retention import plan_retention

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=timezone.utc)
ZONE = ZoneInfo("Europe/Berlin")


def snapshot(index: int, age_hours: float, managed: bool = True) -> Snapshot:
    created = NOW - timedelta(hours=age_hours)
    return Snapshot(str(index), f"web-{index:05d}", created, managed, "test")


snapshots_strategy = st.lists(
    st.tuples(st.floats(min_value=0, max_value=24 * 800), st.booleans()), max_size=40
).map(lambda items: [snapshot(i, age, managed) for i, (age, managed) in enumerate(items)])

policies = st.builds(
    RetentionPolicy,
    last=st.integers(0, 6),
    hourly=st.integers(0, 4),
    daily=st.integers(0, 8),
    weekly=st.integers(0, 5),
    monthly=st.integers(0, 13),
    yearly=st.integers(0, 3),
)


def reference_keep(snapshots: list[Snapshot], policy: RetentionPolicy) -> set[str]:
    """A straightforward restic-style reference, written independently of the planner."""
    managed = sorted((s for s in snapshots if s.managed), key=lambda s: (s.created_at, s.name))
    managed.reverse()
    keep: set[str] = set()
    if managed:
        keep.add(managed[0].id)
    keep.update(s.id for s in managed[: policy.last])
    formats = {
        "hourly": "%Y%m%d%H",
        "daily": "%Y%m%d",
        "weekly": "%G%V",
        "monthly": "%Y%m",
        "yearly": "%Y",
    }
    for rule, fmt in formats.items():
        remaining = getattr(policy, rule)
        last_value = None
        for s in managed:
            if remaining <= 0:
                break
            value = s.created_at.astimezone(ZONE).strftime(fmt)
            if value != last_value:
                keep.add(s.id)
                last_value = value
                remaining -= 1
    return keep


@settings(max_examples=300, deadline=None)
@given(snapshots_strategy, policies)
def test_unmanaged_snapshots_are_never_planned_for_deletion(snapshots, policy) -> None:
    plan = plan_retention(snapshots, policy, NOW, ZONE)
    assert all(d.snapshot.managed for d in plan.delete)
    assert {s.id for s in plan.ignored} == {s.id for s in snapshots if not s.managed}


@settings(max_examples=300, deadline=None)
@given(snapshots_strategy, policies)
def test_the_newest_managed_snapshot_is_always_kept(snapshots, policy) -> None:
    plan = plan_retention(snapshots, policy, NOW, ZONE)
    managed = [s for s in snapshots if s.managed]
    if managed:
        newest = max(managed, key=Snapshot.sort_key)
        assert newest.id in {d.snapshot.id for d in plan.keep}
        assert plan.keep  # at least one remains


@settings(max_examples=300, deadline=None)
@given(snapshots_strategy, policies)
def test_planning_the_kept_set_again_deletes_nothing(snapshots, policy) -> None:
    first = plan_retention(snapshots, policy, NOW, ZONE)
    kept = [d.snapshot for d in first.keep]
    assert plan_retention(kept, policy, NOW, ZONE).delete == ()


@settings(max_examples=300, deadline=None)
@given(snapshots_strategy, st.integers(1, 12))
def test_last_n_keeps_exactly_min_n_count(snapshots, n) -> None:
    plan = plan_retention(snapshots, RetentionPolicy(last=n), NOW, ZONE)
    managed = [s for s in snapshots if s.managed]
    assert len(plan.keep) == min(n, len(managed))
    assert len(plan.keep) + len(plan.delete) == len(managed)


@settings(max_examples=500, deadline=None)
@given(snapshots_strategy, policies)
def test_gfs_buckets_match_the_reference(snapshots, policy) -> None:
    plan = plan_retention(snapshots, policy, NOW, ZONE)
    assert {d.snapshot.id for d in plan.keep} == reference_keep(snapshots, policy)


def test_every_decision_carries_its_reasons() -> None:
    items = [snapshot(i, age) for i, age in enumerate([1, 25, 49, 24 * 40])]
    plan = plan_retention(items, RetentionPolicy(last=1, daily=2, monthly=2), NOW, ZONE)
    reasons = {d.snapshot.id: d.reasons for d in plan.keep}
    assert reasons["0"] == (
        "newest",
        "last 1/1",
        "daily 1/2 (newest of its day)",
        "monthly 1/2 (newest of its month)",
    )
    assert reasons["1"] == ("daily 2/2 (newest of its day)",)
    assert reasons["3"] == ("monthly 2/2 (newest of its month)",)
    assert [d.snapshot.id for d in plan.delete] == ["2"]
    assert "beyond the retention policy" in plan.delete[0].reasons[0]


def test_snapshots_dated_in_the_future_are_kept() -> None:
    future = Snapshot("f", "web-future", NOW + timedelta(days=2), True, "test")
    plan = plan_retention(
        [future, snapshot(1, 1), snapshot(2, 2)], RetentionPolicy(last=1), NOW, ZONE
    )
    kept = {d.snapshot.id: d.reasons for d in plan.keep}
    assert "dated in the future (clock skew)" in kept["f"]
