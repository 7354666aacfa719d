"""End to end: the resident ``snapshotd`` process with a test NOTIFY_SOCKET and the simulator.

Schedules use the six-field form with a leading seconds field, so jobs fire within
seconds; ``at_second`` builds a schedule that fires once, a few seconds from now.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import signal
import sqlite3
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import pytest
from conftest import DO_TOKEN, HZ_TOKEN, NotifySocket, Workspace

from snapshotd.simulator import Simulator

pytestmark = pytest.mark.timeout(90)


def at_second(delay: float) -> str:
    moment = datetime.now(timezone.utc) + timedelta(seconds=delay)
    return f"{moment.second} {moment.minute} {moment.hour} * * *"


def wait_until(predicate: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def runs(workspace: Workspace, server_key: str) -> list[tuple[str, str | None]]:
    path = workspace.root / "logs" / "snapshotd.sqlite3"
    if not path.exists():
        return []
    with sqlite3.connect(path) as db:
        return db.execute(
            "SELECT status, snapshot_name FROM runs WHERE server_key = ? ORDER BY id", (server_key,)
        ).fetchall()


def start(workspace: Workspace, notify: NotifySocket, watchdog_usec: int | None = None):  # type: ignore[no-untyped-def]
    env = {"NOTIFY_SOCKET": str(notify.path)}
    if watchdog_usec:
        env["WATCHDOG_USEC"] = str(watchdog_usec)
    process = workspace.start(**env)
    notify.wait_for(lambda m: "READY=1" in m, 15)
    return process


def test_ready_watchdog_and_a_scheduled_job(
    workspace: Workspace, sim: Simulator, notify_socket: NotifySocket
) -> None:
    sim.cloud.add_server("hetzner", HZ_TOKEN, 2001, "db")
    workspace.add_server("hetzner", 2001, "db", schedule="*/2 * * * * *")
    process = start(workspace, notify_socket, watchdog_usec=400_000)
    try:
        wait_until(
            lambda: len(sim.cloud.snapshots_of("hetzner", 2001)) >= 1, 15, "a scheduled snapshot"
        )
        collect(notify_socket, 2.0)
        ready = notify_socket.wait_for(lambda m: "READY=1" in m, 1)
        assert "STATUS=1 server(s); next: db at" in ready
    finally:
        run = workspace.finish(process)
    assert run.code == 0
    collect(notify_socket, 0.3)
    pings = [t for t, m in notify_socket.messages if m == "WATCHDOG=1"]
    assert len(pings) >= 8, pings  # every 0.2 s while alive
    gaps = [b - a for a, b in itertools.pairwise(pings)]
    assert max(gaps) < 1.0
    assert any("STOPPING=1" in m for _, m in notify_socket.messages)
    assert tuple(s for s, _ in runs(workspace, "hetzner:2001")) >= ("SUCCESS",)


def collect(notify: NotifySocket, seconds: float) -> None:
    """Keep reading notify messages for ``seconds``."""
    with contextlib.suppress(AssertionError):
        notify.wait_for(lambda m: False, seconds)


def test_sighup_schedules_a_new_server(
    workspace: Workspace, sim: Simulator, notify_socket: NotifySocket
) -> None:
    sim.cloud.add_server("digitalocean", DO_TOKEN, 1001, "web")
    sim.cloud.add_server("digitalocean", DO_TOKEN, 1002, "api")
    workspace.add_server("digitalocean", 1001, "web", schedule="0 0 1 1 *")
    process = start(workspace, notify_socket)
    try:
        workspace.add_server("digitalocean", 1002, "api", schedule="*/2 * * * * *")
        process.send_signal(signal.SIGHUP)
        reloading = notify_socket.wait_for(lambda m: "RELOADING=1" in m, 10)
        assert "MONOTONIC_USEC=" in reloading
        ready = notify_socket.wait_for(lambda m: "READY=1" in m and "2 server(s)" in m, 10)
        assert "STATUS=" in ready
        wait_until(
            lambda: sim.cloud.snapshots_of("digitalocean", 1002), 15, "the new server's snapshot"
        )
        assert sim.cloud.snapshots_of("digitalocean", 1001) == []
    finally:
        assert workspace.finish(process).code == 0


def test_sighup_with_a_broken_file_keeps_the_schedule(
    workspace: Workspace, sim: Simulator, notify_socket: NotifySocket
) -> None:
    sim.cloud.add_server("digitalocean", DO_TOKEN, 1001, "web")
    path = workspace.add_server("digitalocean", 1001, "web", schedule="*/2 * * * * *")
    process = start(workspace, notify_socket)
    try:
        path.write_text('{"digitalocean_droplet": {"id": ')
        process.send_signal(signal.SIGHUP)
        status = notify_socket.wait_for(lambda m: "reload refused" in m, 10)
        assert "keeping the previous schedule" in status and "web.json" in status
        before = len(sim.cloud.snapshots_of("digitalocean", 1001))
        wait_until(
            lambda: len(sim.cloud.snapshots_of("digitalocean", 1001)) > before + 1,
            15,
            "the old schedule to keep firing",
        )
        assert process.poll() is None
    finally:
        run = workspace.finish(process)
    assert run.code == 0
    assert "reload refused" in run.stderr


def test_sighup_during_a_job_leaves_it_intact(
    workspace: Workspace, sim: Simulator, notify_socket: NotifySocket
) -> None:
    sim.cloud.add_server("hetzner", HZ_TOKEN, 2001, "db")
    sim.cloud.set_snapshot_seconds("hetzner", 2001, 2.0)
    path = workspace.add_server("hetzner", 2001, "db", schedule=at_second(2))
    process = start(workspace, notify_socket)
    try:
        wait_until(lambda: sim.cloud.snapshots_of("hetzner", 2001), 10, "the job to start")
        document = json.loads(path.read_text())
        document["hetzner_cloud_server"]["retain_last_snapshots"] = 5
        path.write_text(json.dumps(document))
        process.send_signal(signal.SIGHUP)
        notify_socket.wait_for(lambda m: "RELOADING=1" in m, 10)
        wait_until(
            lambda: (
                runs(workspace, "hetzner:2001")
                and runs(workspace, "hetzner:2001")[-1][0] != "RUNNING"
            ),
            15,
            "the job to finish",
        )
    finally:
        assert workspace.finish(process).code == 0
    assert [status for status, _ in runs(workspace, "hetzner:2001")] == ["SUCCESS"]
    assert [s.status for s in sim.cloud.snapshots_of("hetzner", 2001)] == ["available"]


def test_sigterm_during_a_job_lets_it_finish_and_exits_0(
    workspace: Workspace, sim: Simulator, notify_socket: NotifySocket
) -> None:
    sim.cloud.add_server("digitalocean", DO_TOKEN, 1001, "web")
    sim.cloud.set_snapshot_seconds("digitalocean", 1001, 2.0)
    workspace.add_server("digitalocean", 1001, "web", schedule=at_second(2))
    process = start(workspace, notify_socket)
    wait_until(lambda: [r for r in sim.cloud.requests() if r.method == "POST"], 10, "the create")
    run = workspace.finish(process, signal.SIGTERM)
    assert run.code == 0
    assert [status for status, _ in runs(workspace, "digitalocean:1001")] == ["SUCCESS"]
    assert len(sim.cloud.snapshots_of("digitalocean", 1001)) == 1


def test_sigterm_past_stop_timeout_records_the_job_and_a_restart_resumes_it(
    workspace: Workspace, sim: Simulator, notify_socket: NotifySocket
) -> None:
    sim.cloud.add_server("digitalocean", DO_TOKEN, 1001, "web")
    sim.cloud.set_snapshot_seconds("digitalocean", 1001, 4.0)
    workspace.write_ini(SCHEDULER={"stop_timeout": 0.5})
    workspace.add_server("digitalocean", 1001, "web", schedule=at_second(2))
    process = start(workspace, notify_socket)
    wait_until(lambda: [r for r in sim.cloud.requests() if r.method == "POST"], 10, "the create")
    run = workspace.finish(process, signal.SIGTERM)
    assert run.code == 0
    assert "recorded as in flight" in run.stderr
    assert [s for s, _ in runs(workspace, "digitalocean:1001")] == ["INTERRUPTED"]

    process = start(workspace, notify_socket)
    try:
        wait_until(
            lambda: runs(workspace, "digitalocean:1001")[-1][0] == "SUCCESS", 20, "the resumed run"
        )
    finally:
        workspace.finish(process)
    assert len(sim.cloud.snapshots_of("digitalocean", 1001)) == 1
    assert len([r for r in sim.cloud.requests() if r.method == "POST"]) == 1


def test_sigkill_mid_job_then_restart_makes_no_duplicate(
    workspace: Workspace, sim: Simulator, notify_socket: NotifySocket
) -> None:
    sim.cloud.add_server("hetzner", HZ_TOKEN, 2001, "db")
    sim.cloud.set_snapshot_seconds("hetzner", 2001, 3.0)
    workspace.add_server("hetzner", 2001, "db", schedule=at_second(2))
    sim.cloud.add_fault("POST", r"/create_image$", "delay_response", seconds=1.0)
    process = start(workspace, notify_socket)
    # killed after the provider accepted the create, before the daemon saw the reply
    wait_until(lambda: [r for r in sim.cloud.requests() if r.method == "POST"], 10, "the create")
    process.kill()
    process.communicate(timeout=10)

    process = start(workspace, notify_socket)
    try:
        wait_until(
            lambda: runs(workspace, "hetzner:2001")[-1][0] == "SUCCESS", 20, "the resumed run"
        )
    finally:
        workspace.finish(process)
    statuses = [s for s, _ in runs(workspace, "hetzner:2001")]
    assert statuses == ["INTERRUPTED", "SUCCESS"]
    assert len(sim.cloud.snapshots_of("hetzner", 2001)) == 1
    assert len([r for r in sim.cloud.requests() if r.method == "POST"]) == 1


def test_catch_up_runs_a_missed_slot_exactly_once(
    workspace: Workspace, sim: Simulator, notify_socket: NotifySocket
) -> None:
    sim.cloud.add_server("digitalocean", DO_TOKEN, 1001, "web")
    workspace.add_server("digitalocean", 1001, "web", schedule="0 0 1 1 *")
    process = start(workspace, notify_socket)
    assert workspace.finish(process).code == 0
    assert sim.cloud.snapshots_of("digitalocean", 1001) == []

    workspace.add_server("digitalocean", 1001, "web", schedule=at_second(1))  # passes while down
    time.sleep(2.5)
    process = start(workspace, notify_socket)
    try:
        wait_until(lambda: sim.cloud.snapshots_of("digitalocean", 1001), 10, "the catch-up run")
        time.sleep(3)
    finally:
        run = workspace.finish(process)
    assert len(sim.cloud.snapshots_of("digitalocean", 1001)) == 1
    assert "catch up the missed slot" in run.stderr
    assert [s for s, _ in runs(workspace, "digitalocean:1001")] == ["SUCCESS"]


def test_no_run_is_dropped_when_jobs_queue(
    workspace: Workspace, sim: Simulator, notify_socket: NotifySocket
) -> None:
    workspace.write_ini(SCHEDULER={"max_concurrent_jobs": 2})
    schedule = at_second(3)
    for n in range(20):
        sim.cloud.add_server("digitalocean", DO_TOKEN, 5000 + n, f"node{n}")
        workspace.add_server("digitalocean", 5000 + n, f"node{n}", schedule=schedule)
    process = start(workspace, notify_socket)
    try:
        wait_until(
            lambda: all(sim.cloud.snapshots_of("digitalocean", 5000 + n) for n in range(20)),
            60,
            "all 20 servers to run",
        )
    finally:
        workspace.finish(process)
    assert sum(len(sim.cloud.snapshots_of("digitalocean", 5000 + n)) for n in range(20)) == 20


def test_invalid_config_at_start_exits_78(workspace: Workspace) -> None:
    workspace.write_ini(SCHEDULER={"timezone": "Nowhere/Special"})
    run = workspace.run()
    assert run.code == 78
    assert "not an IANA time zone" in run.stderr


def test_status_reports_history_while_the_daemon_runs(
    workspace: Workspace, sim: Simulator, notify_socket: NotifySocket
) -> None:
    sim.cloud.add_server("digitalocean", DO_TOKEN, 1001, "web")
    workspace.add_server("digitalocean", 1001, "web", schedule="*/2 * * * * *")
    process = start(workspace, notify_socket)
    try:
        wait_until(
            lambda: (
                runs(workspace, "digitalocean:1001")
                and runs(workspace, "digitalocean:1001")[0][0] == "SUCCESS"
            ),
            15,
            "a finished run",
        )
        table = workspace.run("--status")
        as_json = workspace.run("--status", "--json")
    finally:
        workspace.finish(process)
    assert table.code == 0 and as_json.code == 0
    assert "web" in table.stdout and "SUCCESS" in table.stdout
    [row] = json.loads(as_json.stdout)["servers"]
    assert row["key"] == "digitalocean:1001" and row["last_status"] == "SUCCESS"
    assert row["managed_count"] >= 1 and row["newest_snapshot_age_seconds"] < 60
    assert row["next_run"] is not None
