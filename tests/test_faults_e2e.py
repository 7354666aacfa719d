"""Fault injection: the real ``snapshotd --once`` against the simulator's fault switches.

Every scenario checks the same invariants: no managed snapshot that should be kept was deleted,
no duplicate snapshot was made, and the exit code and output say what really happened.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from conftest import DO_TOKEN, HZ_TOKEN, Workspace

from snapshotd.providers.base import snapshot_name
from snapshotd.simulator import Simulator

RETAIN = 2
OLD = 3  # managed snapshots before the run: with the new one, RETAIN + 2 are pruned on success


@dataclass(frozen=True)
class Scenario:
    name: str
    provider: str
    faults: tuple[dict[str, Any], ...]
    outcome: str  # SUCCESS, FAILURE or PARTIAL
    new_snapshots: int = 1
    posts: int = 1
    ini: dict[str, dict[str, Any]] = field(default_factory=dict)


DO_CREATE = r"/droplets/\d+/actions$"
DO_POLL = r"^/digitalocean/v2/actions/\d+"
DO_LIST = r"/droplets/\d+/snapshots"
DO_DELETE = r"^/digitalocean/v2/snapshots/\d+"
HZ_CREATE = r"/create_image$"
HZ_POLL = r"^/hetzner/v1/actions/\d+"
HZ_LIST = r"^/hetzner/v1/images\?.*snapshotd-server"
HZ_DELETE = r"^/hetzner/v1/images/\d+$"
QUICK_GIVE_UP = {"TIMING": {"snapshot_creation_timeout": 3}}
SHORT_READS = {"TIMING": {"request_timeout": 0.5}}


def fault(method: str, path: str, kind: str, **options: Any) -> dict[str, Any]:
    return {"method": method, "path": path, "kind": kind, **options}


SCENARIOS = [
    # 5xx bursts on each endpoint
    Scenario(
        "do 5xx on create is not re-sent",
        "digitalocean",
        (fault("POST", DO_CREATE, "status", status=503),),
        "FAILURE",
        0,
        ini=QUICK_GIVE_UP,
    ),
    Scenario(
        "hetzner 5xx on create is not re-sent",
        "hetzner",
        (fault("POST", HZ_CREATE, "status", status=502),),
        "FAILURE",
        0,
        ini=QUICK_GIVE_UP,
    ),
    Scenario(
        "do 5xx burst on poll",
        "digitalocean",
        (fault("GET", DO_POLL, "status", times=2),),
        "SUCCESS",
    ),
    Scenario(
        "do 5xx burst on list",
        "digitalocean",
        (fault("GET", DO_LIST, "status", times=2),),
        "SUCCESS",
    ),
    Scenario(
        "do 5xx burst on delete",
        "digitalocean",
        (fault("DELETE", DO_DELETE, "status", status=503, times=2),),
        "SUCCESS",
    ),
    Scenario(
        "hetzner 5xx burst on poll",
        "hetzner",
        (fault("GET", HZ_POLL, "status", times=2),),
        "SUCCESS",
    ),
    Scenario(
        "hetzner 5xx burst on list",
        "hetzner",
        (fault("GET", HZ_LIST, "status", times=2),),
        "SUCCESS",
    ),
    Scenario(
        "hetzner 5xx burst on delete",
        "hetzner",
        (fault("DELETE", HZ_DELETE, "status", status=504, times=2),),
        "SUCCESS",
    ),
    # 429 storms
    Scenario(
        "429 storm with Retry-After",
        "hetzner",
        (fault("*", r"^/hetzner/", "retry_after", seconds=1, times=3),),
        "SUCCESS",
        posts=4,  # three refused with 429 (safe to re-send), then the accepted create
    ),
    Scenario(
        "429 storm without Retry-After",
        "digitalocean",
        (fault("GET", DO_LIST, "status", status=429, code="too_many_requests", times=3),),
        "SUCCESS",
    ),
    # resets, dropped connections, truncated and malformed bodies
    Scenario(
        "connection reset on list",
        "digitalocean",
        (fault("GET", DO_LIST, "drop", times=2),),
        "SUCCESS",
    ),
    Scenario(
        "reply dropped after the create was processed",
        "hetzner",
        (fault("POST", HZ_CREATE, "drop"),),
        "SUCCESS",
    ),
    Scenario(
        "connection dropped before the create was processed",
        "digitalocean",
        (fault("POST", DO_CREATE, "drop_before"),),
        "FAILURE",
        0,
        posts=0,  # never reached the API, yet not re-sent: the client cannot know that
        ini=QUICK_GIVE_UP,
    ),
    Scenario(
        "truncated JSON on list",
        "hetzner",
        (fault("GET", HZ_LIST, "truncated", times=2),),
        "SUCCESS",
    ),
    Scenario(
        "malformed JSON on poll",
        "digitalocean",
        (fault("GET", DO_POLL, "malformed", times=2),),
        "SUCCESS",
    ),
    # read timeouts on create, poll, list and delete
    Scenario(
        "read timeout on create",
        "digitalocean",
        (fault("POST", DO_CREATE, "delay_response", seconds=1.5),),
        "SUCCESS",
        ini=SHORT_READS,
    ),
    Scenario(
        "read timeout on poll",
        "hetzner",
        (fault("GET", HZ_POLL, "delay_response", seconds=1.5),),
        "SUCCESS",
        ini=SHORT_READS,
    ),
    Scenario(
        "read timeout on list",
        "digitalocean",
        (fault("GET", DO_LIST, "delay_response", seconds=1.5),),
        "SUCCESS",
        ini=SHORT_READS,
    ),
    Scenario(
        "read timeout on delete (already done when retried)",
        "hetzner",
        (fault("DELETE", HZ_DELETE, "delay_response", seconds=1.5),),
        "SUCCESS",
        ini=SHORT_READS,
    ),
    # listings that cannot be trusted
    Scenario(
        "listing never ends", "hetzner", (fault("GET", HZ_LIST, "loop_next", times=100),), "PARTIAL"
    ),
    Scenario(
        "listing keeps failing",
        "digitalocean",
        (fault("GET", DO_LIST, "status", status=500, times=100),),
        "PARTIAL",
    ),
]


def seed(sim: Simulator, provider: str) -> tuple[set[int], int]:
    """The snapshots before the run, and the id of the newest managed one."""
    token = DO_TOKEN if provider == "digitalocean" else HZ_TOKEN
    sim.cloud.add_server(provider, token, 7001, "app")
    labels = (
        {"managed-by": "snapshotd", "snapshotd-server": "7001"} if provider == "hetzner" else None
    )
    now = datetime.now(timezone.utc)
    old = set()
    for n in range(1, OLD + 1):
        age = timedelta(days=n)
        old.add(
            sim.cloud.add_snapshot(
                provider, 7001, snapshot_name("app", now - age), age=age, labels=labels
            ).id
        )
    newest = min(old)  # added first, one day old
    old.add(sim.cloud.add_snapshot(provider, 7001, "app-manual", age=timedelta(days=30)).id)
    return old, newest


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_fault_scenario_loses_nothing_and_reports_truthfully(
    workspace: Workspace, sim: Simulator, scenario: Scenario
) -> None:
    before, newest_old = seed(sim, scenario.provider)
    if scenario.ini:
        workspace.write_ini(**scenario.ini)
    workspace.add_server(scenario.provider, 7001, "app", retain_last_snapshots=RETAIN)
    for spec in scenario.faults:
        sim.cloud.add_fault(**spec)

    run = workspace.run("--once", timeout=90)

    after = {s.id: s for s in sim.cloud.snapshots_of(scenario.provider, 7001)}
    new = [i for i in after if i not in before]
    posts = [r for r in sim.cloud.requests() if r.method == "POST" and r.status < 400]
    assert f": {scenario.outcome}" in run.stdout, run.stdout + run.stderr
    assert run.code == {"SUCCESS": 0, "FAILURE": 1, "PARTIAL": 2}[scenario.outcome]
    assert len(new) == scenario.new_snapshots, "a duplicate or a missing snapshot"
    assert len([r for r in sim.cloud.requests() if r.method == "POST"]) == scenario.posts
    assert len(posts) <= 1
    manual = [s for s in after.values() if s.name == "app-manual"]
    assert manual, "a manual snapshot was deleted"
    if scenario.outcome == "SUCCESS":
        managed = sorted(i for i in after if after[i].name != "app-manual")
        assert len(managed) == RETAIN
        assert newest_old in managed and new[0] in managed  # the newest ones were kept
    else:
        assert before <= set(after), "a snapshot was deleted after a failure"
