"""End to end: the real ``snapshotd --once`` / ``--dry-run`` process against the simulator."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from datetime import timedelta

from conftest import BOT_TOKEN, DO_TOKEN, HZ_TOKEN, WEBHOOK_SECRET, Workspace

from snapshotd.locks import ServerLock
from snapshotd.providers.base import snapshot_name
from snapshotd.simulator import Simulator

DAY = timedelta(days=1)
LABELS = {"managed-by": "snapshotd"}


def old_name(name: str, days: int) -> str:
    from datetime import datetime, timezone

    return snapshot_name(name, datetime.now(timezone.utc) - days * DAY)


def ids(sim: Simulator, provider: str, server_id: int) -> set[int]:
    return {s.id for s in sim.cloud.snapshots_of(provider, server_id)}


def managed_names(sim: Simulator, provider: str, server_id: int, name: str) -> list[str]:
    pattern = re.compile(re.escape(name) + r"-\d{14}")
    return [
        s.name
        for s in sim.cloud.snapshots_of(provider, server_id)
        if pattern.fullmatch(s.name) and s.kind == "snapshot" and not s.protected
    ]


def seed_mixed_fleet(sim: Simulator) -> dict[str, set[int]]:
    """Two DO and two Hetzner servers with everything that must survive; returns the survivors."""
    cloud = sim.cloud
    for provider, token, server_id, name in [
        ("digitalocean", DO_TOKEN, 1001, "web"),
        ("digitalocean", DO_TOKEN, 1002, "api"),
        ("digitalocean", DO_TOKEN, 1003, "web2"),
        ("hetzner", HZ_TOKEN, 2001, "db"),
        ("hetzner", HZ_TOKEN, 2002, "cache"),
        ("hetzner", HZ_TOKEN, 2003, "db2"),
    ]:
        cloud.add_server(provider, token, server_id, name)
    keep: dict[str, set[int]] = {}

    def survivor(key: str, snapshot) -> None:
        keep.setdefault(key, set()).add(snapshot.id)

    for n in range(1, 6):
        cloud.add_snapshot("digitalocean", 1001, old_name("web", n), age=n * DAY)
    survivor("web", cloud.add_snapshot("digitalocean", 1001, "web-before-upgrade", age=50 * DAY))
    survivor(
        "web",
        cloud.add_snapshot("digitalocean", 1001, old_name("web", 70), age=70 * DAY, kind="backup"),
    )
    for n in range(1, 3):
        cloud.add_snapshot("digitalocean", 1002, old_name("api", n), age=n * DAY)
    for n in range(1, 4):
        survivor("web2", cloud.add_snapshot("digitalocean", 1003, old_name("web2", n), age=n * DAY))
    for n in range(1, 4):  # left by the old script: unlabelled, named db-YYYYMMDDHHMMSS
        cloud.add_snapshot("hetzner", 2001, old_name("db", n), age=n * DAY)
    survivor(
        "db", cloud.add_snapshot("hetzner", 2001, old_name("db", 80), age=80 * DAY, protected=True)
    )
    survivor("db", cloud.add_snapshot("hetzner", 2001, "db manual", age=9 * DAY))
    survivor(
        "db", cloud.add_snapshot("hetzner", 2001, old_name("db", 90), age=90 * DAY, kind="backup")
    )
    survivor(
        "db",
        cloud.add_snapshot(
            "hetzner",
            2001,
            old_name("db", 0),
            status="creating",
            labels={**LABELS, "snapshotd-server": "2001"},
        ),
    )
    for n in range(1, 4):
        cloud.add_snapshot(
            "hetzner",
            2002,
            old_name("cache", n),
            age=n * DAY,
            labels={**LABELS, "snapshotd-server": "2002"},
        )
    # made from another server, though its name looks like db's: never db's to delete
    survivor("db2", cloud.add_snapshot("hetzner", 2003, old_name("db", 4), age=4 * DAY))
    survivor("db2", cloud.add_snapshot("hetzner", 2003, old_name("db2", 4), age=4 * DAY))
    return keep


def test_mixed_fleet_ends_with_exactly_n_managed_and_touches_nothing_else(
    workspace: Workspace, sim: Simulator
) -> None:
    survivors = seed_mixed_fleet(sim)
    workspace.add_server("digitalocean", 1001, "web", retain_last_snapshots=3)
    workspace.add_server("digitalocean", 1002, "api", retain_last_snapshots=3)
    workspace.add_server("hetzner", 2001, "db", retain_last_snapshots=2)
    workspace.add_server("hetzner", 2002, "cache", retain_last_snapshots=2)

    run = workspace.run("--once")

    assert run.code == 0, run.stdout + run.stderr
    assert "SUMMARY: 4 succeeded, 0 failed out of 4 total" in run.stdout
    assert len(managed_names(sim, "digitalocean", 1001, "web")) == 3
    assert len(managed_names(sim, "digitalocean", 1002, "api")) == 3  # 2 old + the new one
    assert len(managed_names(sim, "hetzner", 2002, "cache")) == 2
    db_managed = [
        s
        for s in sim.cloud.snapshots_of("hetzner", 2001)
        if s.id not in survivors["db"] and s.kind == "snapshot"
    ]
    assert len(db_managed) == 2
    for key, (provider, server_id) in {
        "web": ("digitalocean", 1001),
        "web2": ("digitalocean", 1003),
        "db": ("hetzner", 2001),
        "db2": ("hetzner", 2003),
    }.items():
        assert survivors[key] <= ids(sim, provider, server_id), key
    assert ids(sim, "digitalocean", 1003) == survivors["web2"]
    # the new snapshots are the newest and carry ownership labels on Hetzner
    newest_db = max(sim.cloud.snapshots_of("hetzner", 2001), key=lambda s: s.id)
    assert newest_db.labels == {"managed-by": "snapshotd", "snapshotd-server": "2001"}
    # cron-friendly stdout, as the script's cronjob.log
    assert re.search(
        r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] Found 4 configuration file\(s\)\.$", run.stdout, re.M
    )


def test_failed_create_prunes_nothing_notifies_failure_and_exits_1(
    workspace: Workspace, sim: Simulator
) -> None:
    sim.cloud.add_server("digitalocean", DO_TOKEN, 1001, "web")
    for n in range(1, 6):
        sim.cloud.add_snapshot("digitalocean", 1001, old_name("web", n), age=n * DAY)
    before = ids(sim, "digitalocean", 1001)
    sim.cloud.add_fault("POST", r"/droplets/1001/actions$", "status", status=403, code="forbidden")
    workspace.add_server(
        "digitalocean",
        1001,
        "web",
        retain_last_snapshots=1,
        telegram={
            "enabled": True,
            "bot_token": BOT_TOKEN,
            "chat_id": 42,
            "message_failure": "FAILED {server_name}: {error} ({status})",
        },
    )

    run = workspace.run("--once")

    assert run.code == 1
    assert ids(sim, "digitalocean", 1001) == before
    assert "FAILURE" in run.stdout and "SUMMARY: 0 succeeded, 1 failed out of 1 total" in run.stdout
    [message] = sim.received("telegram")
    assert message.json["text"].startswith("FAILED web: API token lacks permission")
    assert message.json["text"].endswith("(FAILURE)")
    assert not [r for r in sim.cloud.requests() if r.method == "DELETE"]


def test_errored_action_prunes_nothing_and_reports_why(
    workspace: Workspace, sim: Simulator
) -> None:
    sim.cloud.add_server("hetzner", HZ_TOKEN, 2001, "db")
    for n in range(1, 4):
        sim.cloud.add_snapshot("hetzner", 2001, old_name("db", n), age=n * DAY)
    before = ids(sim, "hetzner", 2001)
    sim.cloud.fail_actions("hetzner", 2001)
    workspace.add_server(
        "hetzner",
        2001,
        "db",
        retain_last_snapshots=1,
        webhook={"enabled": True, "url": sim.webhook_url()},
    )

    run = workspace.run("--once")

    assert run.code == 1
    assert ids(sim, "hetzner", 2001) == before
    assert "image action for db-" in run.stdout and "failed" in run.stdout
    [hook] = sim.received("webhook")
    assert hook.json["status"] == "FAILURE"


def test_rejected_token_fails_fast_with_a_clear_message(
    workspace: Workspace, sim: Simulator
) -> None:
    sim.cloud.add_server("digitalocean", "some-other-token-123456", 1001, "web")
    workspace.add_server("digitalocean", 1001, "web")

    run = workspace.run("--once")

    assert run.code == 1
    assert "API token rejected by DigitalOcean (unauthorized)" in run.stdout
    assert len(sim.cloud.requests()) == 1  # no retries on 401


def test_a_bad_file_among_good_ones_exits_2(workspace: Workspace, sim: Simulator) -> None:
    sim.cloud.add_server("digitalocean", DO_TOKEN, 1001, "web")
    workspace.add_server("digitalocean", 1001, "web")
    (workspace.configs / "broken.json").write_text('{"digitalocean_droplet": {"id": 1,}}')

    run = workspace.run("--once")

    assert run.code == 2
    assert re.search(r"INVALID .*broken\.json: invalid JSON at line 1, column \d+", run.stdout)
    assert "SUMMARY: 1 succeeded, 1 failed out of 2 total" in run.stdout
    assert len(sim.cloud.snapshots_of("digitalocean", 1001)) == 1


def test_one_failure_among_successes_exits_2(workspace: Workspace, sim: Simulator) -> None:
    sim.cloud.add_server("digitalocean", DO_TOKEN, 1001, "web")
    sim.cloud.add_server("hetzner", HZ_TOKEN, 2001, "db")
    sim.cloud.fail_actions("hetzner", 2001)
    workspace.add_server("digitalocean", 1001, "web")
    workspace.add_server("hetzner", 2001, "db")

    run = workspace.run("--once")

    assert run.code == 2
    assert "SUMMARY: 1 succeeded, 1 failed out of 2 total" in run.stdout


def test_a_server_locked_by_another_run_exits_3(workspace: Workspace, sim: Simulator) -> None:
    sim.cloud.add_server("digitalocean", DO_TOKEN, 1001, "web")
    workspace.add_server("digitalocean", 1001, "web")
    lock = ServerLock(workspace.root / "logs" / "locks", "digitalocean:1001")
    assert lock.acquire()
    try:
        run = workspace.run("--once")
    finally:
        lock.release()

    assert run.code == 3
    assert "LOCKED" in run.stdout
    assert sim.cloud.requests() == []


def test_locked_server_does_not_stop_the_others(workspace: Workspace, sim: Simulator) -> None:
    sim.cloud.add_server("digitalocean", DO_TOKEN, 1001, "web")
    sim.cloud.add_server("digitalocean", DO_TOKEN, 1002, "api")
    workspace.add_server("digitalocean", 1001, "web")
    workspace.add_server("digitalocean", 1002, "api")
    with ServerLock(workspace.root / "logs" / "locks", "digitalocean:1001") as lock:
        assert lock.acquire()
        run = workspace.run("--once")
    assert run.code == 3
    assert len(sim.cloud.snapshots_of("digitalocean", 1002)) == 1
    assert sim.cloud.snapshots_of("digitalocean", 1001) == []


def test_server_named_with_underscores_gets_its_telegram_message(
    workspace: Workspace, sim: Simulator
) -> None:
    sim.cloud.add_server("hetzner", HZ_TOKEN, 2001, "db_main_1")
    workspace.write_ini(
        TELEGRAM={
            "bot_token": BOT_TOKEN,
            "chat_id": "-100200300",
            "message_success": "*Snapshot Success*\\nServer: {server_name}"
            "\\nSnapshot: `{snapshot_name}`",
        }
    )
    workspace.add_server("hetzner", 2001, "db_main_1", telegram={"enabled": True})

    run = workspace.run("--once")

    assert run.code == 0, run.stdout + run.stderr
    [message] = sim.received("telegram")
    assert message.path == f"/telegram/bot{BOT_TOKEN}/sendMessage"
    body = message.json
    assert body["chat_id"] == -100200300
    assert body["parse_mode"] == "Markdown"
    assert body["disable_web_page_preview"] is True
    assert body["text"].startswith(
        "*Snapshot Success*\nServer: db\\_main\\_1\nSnapshot: `db_main_1-"
    )
    assert "delivered" in run.stderr or "telegram: sent" in run.stderr


def test_unparsable_markdown_is_resent_once_as_plain_text(
    workspace: Workspace, sim: Simulator
) -> None:
    sim.cloud.add_server("digitalocean", DO_TOKEN, 1001, "web")
    workspace.add_server(
        "digitalocean",
        1001,
        "web",
        telegram={
            "enabled": True,
            "bot_token": BOT_TOKEN,
            "chat_id": 7,
            "message_success": "*unclosed bold for {server_name}",
        },
    )
    run = workspace.run("--once")
    assert run.code == 0
    first, second = sim.received("telegram")
    assert first.json["parse_mode"] == "Markdown"
    assert "parse_mode" not in second.json and second.json["text"] == first.json["text"]


def test_webhook_body_is_the_template_rendered_with_real_values_and_signed(
    workspace: Workspace, sim: Simulator
) -> None:
    sim.cloud.add_server("digitalocean", DO_TOKEN, 1001, "web")
    sim.cloud.add_snapshot("digitalocean", 1001, old_name("web", 3), age=3 * DAY)
    template = {
        "text": "{server_name} ({droplet_id}) -> {snapshot_name}: {status}",
        "count": "{total_snapshots}",
        "info": "{snapshot_info}",
        "deleted": "{deleted_count}",
        "{server_name}": "keys stay",
        "unknown": "{not_a_variable}",
        "number": 5,
    }
    workspace.add_server(
        "digitalocean",
        1001,
        "web",
        retain_last_snapshots=5,
        webhook={
            "enabled": True,
            "url": [sim.webhook_url("a"), sim.webhook_url("b")],
            "secret": WEBHOOK_SECRET,
            "payload_success": template,
        },
    )

    run = workspace.run("--once")

    assert run.code == 0, run.stdout + run.stderr
    new = max(sim.cloud.snapshots_of("digitalocean", 1001), key=lambda s: s.id).name
    expected = {
        "text": f"web (1001) -> {new}: SUCCESS",
        "count": "2",
        "info": "2 snapshots exist",
        "deleted": "0",
        "{server_name}": "keys stay",
        "unknown": "{not_a_variable}",
        "number": 5,
    }
    deliveries = sim.received("webhook")
    assert [d.path for d in deliveries] == ["/webhook/a", "/webhook/b"]
    for delivery in deliveries:
        assert delivery.json == expected
        signature = (
            "sha256=" + hmac.new(WEBHOOK_SECRET.encode(), delivery.body, hashlib.sha256).hexdigest()
        )
        assert delivery.headers["x-snapshotd-signature"] == signature
        assert re.fullmatch(r"[0-9a-f-]{36}", delivery.headers["x-snapshotd-delivery"])


def test_default_webhook_payload_has_the_script_shape(workspace: Workspace, sim: Simulator) -> None:
    sim.cloud.add_server("hetzner", HZ_TOKEN, 2001, "db")
    workspace.write_ini(WEBHOOK={"enabled": "true", "url": sim.webhook_url()})
    workspace.add_server("hetzner", 2001, "db")
    assert workspace.run("--once").code == 0
    [delivery] = sim.received("webhook")
    assert set(delivery.json) == {
        "script",
        "provider",
        "server",
        "server_id",
        "status",
        "hostname",
        "timestamp",
        "snapshot_name",
        "total_snapshots",
        "snapshot_info",
    }
    assert delivery.json["script"] == "snapshotd" and delivery.json["status"] == "SUCCESS"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", delivery.json["timestamp"])


def test_retried_webhook_keeps_its_delivery_id_and_failures_do_not_fail_the_job(
    workspace: Workspace, sim: Simulator
) -> None:
    sim.cloud.add_server("digitalocean", DO_TOKEN, 1001, "web")
    sim.cloud.add_fault("POST", r"^/webhook/flaky$", "status", status=503)
    sim.cloud.add_fault("POST", r"^/webhook/down$", "status", status=500, times=10)
    workspace.write_ini(WEBHOOK={"retries": 1, "base_delay_between_retries": 0.1})
    workspace.add_server(
        "digitalocean",
        1001,
        "web",
        webhook={"enabled": True, "url": [sim.webhook_url("flaky"), sim.webhook_url("down")]},
    )

    run = workspace.run("--once")

    assert run.code == 0
    flaky = [d for d in sim.received("webhook") if d.path == "/webhook/flaky"]
    assert len(flaky) == 2
    assert flaky[0].headers["x-snapshotd-delivery"] == flaky[1].headers["x-snapshotd-delivery"]
    assert len([d for d in sim.received("webhook") if d.path == "/webhook/down"]) == 2
    assert "webhook 127.0.0.1" in run.stderr and "failed" in run.stderr


def test_telegram_429_waits_retry_after(workspace: Workspace, sim: Simulator) -> None:
    sim.cloud.add_server("digitalocean", DO_TOKEN, 1001, "web")
    sim.cloud.add_fault("POST", r"^/telegram/", "status", status=429, seconds=1)
    workspace.add_server(
        "digitalocean",
        1001,
        "web",
        telegram={"enabled": True, "bot_token": BOT_TOKEN, "chat_id": 1},
    )
    assert workspace.run("--once").code == 0
    first, second = sim.received("telegram")
    assert second.at - first.at >= 0.95


def test_healthcheck_pings_start_and_outcome(workspace: Workspace, sim: Simulator) -> None:
    sim.cloud.add_server("digitalocean", DO_TOKEN, 1001, "web")
    sim.cloud.add_server("hetzner", HZ_TOKEN, 2001, "db")
    sim.cloud.fail_actions("hetzner", 2001)
    workspace.add_server("digitalocean", 1001, "web", healthcheck_url=sim.ping_url("web"))
    workspace.add_server("hetzner", 2001, "db", healthcheck_url=sim.ping_url("db"))
    assert workspace.run("--once").code == 2
    paths = sorted(d.path for d in sim.received("ping"))
    assert paths == ["/ping/db/fail", "/ping/db/start", "/ping/web", "/ping/web/start"]
    success = next(d for d in sim.received("ping") if d.path == "/ping/web")
    assert b"web (digitalocean 1001): SUCCESS" in success.body


def test_dry_run_sends_only_gets_and_prints_the_plan(workspace: Workspace, sim: Simulator) -> None:
    seed_mixed_fleet(sim)
    workspace.add_server("digitalocean", 1001, "web", retain_last_snapshots=3)
    workspace.add_server("hetzner", 2001, "db", retain_last_snapshots=2)
    before = {key: ids(sim, *key) for key in [("digitalocean", 1001), ("hetzner", 2001)]}

    run = workspace.run("--dry-run")

    assert run.code == 0, run.stdout + run.stderr
    assert {r.method for r in sim.cloud.requests()} == {"GET"}
    assert {key: ids(sim, *key) for key in before} == before
    assert re.search(r"would create web-\d{14}", run.stdout)
    assert re.search(r"keep    web-\d{14}  \(last 2/3\)", run.stdout)
    assert len(re.findall(r"^  delete  web-\d{14}", run.stdout, re.M)) == 3
    assert "ignore  web-before-upgrade  (manual or other name" in run.stdout
    assert "delete-protected" in run.stdout


def test_positional_files_select_servers(workspace: Workspace, sim: Simulator) -> None:
    sim.cloud.add_server("digitalocean", DO_TOKEN, 1001, "web")
    sim.cloud.add_server("digitalocean", DO_TOKEN, 1002, "api")
    workspace.add_server("digitalocean", 1001, "web")
    workspace.add_server("digitalocean", 1002, "api")
    run = workspace.run("--once", "api.json")
    assert run.code == 0
    assert sim.cloud.snapshots_of("digitalocean", 1001) == []
    assert len(sim.cloud.snapshots_of("digitalocean", 1002)) == 1


def test_unwritable_log_file_never_fails_a_job(workspace: Workspace, sim: Simulator) -> None:
    sim.cloud.add_server("digitalocean", DO_TOKEN, 1001, "web")
    (workspace.root / "not-a-dir").write_text("a file")
    workspace.write_ini(DIRECTORIES={"logs_dir": "not-a-dir/logs"}, STATE={"state_dir": "state"})
    workspace.add_server("digitalocean", 1001, "web")
    run = workspace.run("--once")
    assert run.code == 0
    assert "cannot open the log file" in run.stderr
    assert len(sim.cloud.snapshots_of("digitalocean", 1001)) == 1


def test_json_log_lines_carry_server_status_and_duration(
    workspace: Workspace, sim: Simulator
) -> None:
    sim.cloud.add_server("digitalocean", DO_TOKEN, 1001, "web")
    workspace.add_server("digitalocean", 1001, "web")
    assert workspace.run("--once").code == 0
    records = workspace.log_records()
    final = [r for r in records if r.get("status") == "SUCCESS"]
    assert final and final[0]["server"] == "digitalocean:1001"
    assert final[0]["job_id"] == "snapshot:digitalocean:1001"
    assert isinstance(final[0]["duration"], float)


def test_missing_configs_directory_exits_1(workspace: Workspace) -> None:
    workspace.write_ini(DIRECTORIES={"configs_dir": "missing"})
    run = workspace.run("--once")
    assert run.code == 1
    assert "configs directory does not exist" in run.stderr


def test_no_secret_reaches_any_output(workspace: Workspace, sim: Simulator) -> None:
    sim.cloud.add_server("digitalocean", DO_TOKEN, 1001, "web")
    sim.cloud.add_fault("GET", r"/droplets/1001/snapshots", "status", status=500, times=20)
    workspace.add_server(
        "digitalocean",
        1001,
        "web",
        telegram={"enabled": True, "bot_token": BOT_TOKEN, "chat_id": 1},
        webhook={"enabled": True, "url": sim.webhook_url(), "secret": WEBHOOK_SECRET},
    )
    run = workspace.run("--once", "-v")
    assert run.code == 2  # snapshot made, listing failed: partial, nothing pruned
    text = run.stdout + run.stderr + json.dumps(workspace.log_records())
    for secret in (DO_TOKEN, BOT_TOKEN, WEBHOOK_SECRET):
        assert secret[:6] not in text and secret[-6:] not in text
