"""``--demo``: the real ``--once`` pipeline against the built-in simulator.

It starts the simulator with a small fleet (two droplets, two Hetzner
servers) that already holds old managed snapshots, manual ones, a backup, a
delete-protected image and look-alike servers (``web`` next to ``web2``),
writes a throw-away configuration pointing at it, runs the pipeline, and
explains what happened. No network, no token, no cloud account.
"""

from __future__ import annotations

import json
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TextIO

from snapshotd.config import load_config
from snapshotd.logs import setup_logging
from snapshotd.providers.base import snapshot_name
from snapshotd.redact import Redactor
from snapshotd.result import JobResult
from snapshotd.runner import make_context, run_servers
from snapshotd.simulator import Simulator

DO_TOKEN = "demo-digitalocean-token-0000"
HZ_TOKEN = "demo-hetzner-token-0000"
BOT_TOKEN = "123456:demo-bot-token"


def build_fleet(sim: Simulator) -> None:
    cloud = sim.cloud
    day = timedelta(days=1)
    cloud.add_server("digitalocean", DO_TOKEN, 1001, "web")
    cloud.add_server("digitalocean", DO_TOKEN, 1002, "api")
    cloud.add_server("digitalocean", DO_TOKEN, 1003, "web2")
    cloud.add_server("hetzner", HZ_TOKEN, 2001, "db")
    cloud.add_server("hetzner", HZ_TOKEN, 2002, "cache")
    cloud.add_server("hetzner", HZ_TOKEN, 2003, "db-replica")
    for n in range(1, 6):
        cloud.add_snapshot("digitalocean", 1001, _name("web", n), age=n * day)
    cloud.add_snapshot("digitalocean", 1001, "web-before-upgrade", age=40 * day)
    cloud.add_snapshot("digitalocean", 1001, _name("web", 60), age=60 * day, kind="backup")
    for n in (1, 2, 8, 15, 35):
        cloud.add_snapshot("digitalocean", 1002, _name("api", n), age=n * day)
    for n in (1, 9):
        cloud.add_snapshot("digitalocean", 1003, _name("web2", n), age=n * day)
    for n in range(1, 5):  # left by the old script: no labels
        cloud.add_snapshot("hetzner", 2001, _name("db", n), age=n * day)
    cloud.add_snapshot("hetzner", 2001, _name("db", 90), age=90 * day, protected=True)
    cloud.add_snapshot("hetzner", 2001, "db manual, keep", age=30 * day)
    labels = {"managed-by": "snapshotd", "snapshotd-server": "2002"}
    for n in range(1, 4):
        cloud.add_snapshot("hetzner", 2002, _name("cache", n), age=n * day, labels=labels)
    cloud.add_snapshot("hetzner", 2003, _name("db-replica", 1), age=day)


def write_config(folder: Path, sim: Simulator) -> Path:
    (folder / "configs").mkdir()
    main = folder / "snapshots.config"
    main.write_text(
        "[TIMING]\npoll_interval = 0.2\npoll_interval_max = 0.5\nsnapshot_creation_timeout = 60\n"
        f"[TELEGRAM]\napi_url = {sim.telegram_url}\nbot_token = {BOT_TOKEN}\nchat_id = 424242\n"
        f"[WEBHOOK]\nenabled = true\nurl = {sim.webhook_url('demo')}\n"
        "[SCHEDULER]\ntimezone = UTC\n",
        encoding="utf-8",
    )
    servers: list[tuple[str, str, int, str, dict[str, Any]]] = [
        ("digitalocean", "digitalocean_droplet", 1001, "web", {"retain_last_snapshots": 3}),
        (
            "digitalocean",
            "digitalocean_droplet",
            1002,
            "api",
            {"retention": {"last": 2, "weekly": 2, "monthly": 1}},
        ),
        ("hetzner", "hetzner_cloud_server", 2001, "db", {"retain_last_snapshots": 2}),
        ("hetzner", "hetzner_cloud_server", 2002, "cache", {"retain_last_snapshots": 2}),
    ]
    for provider, top, server_id, name, retention in servers:
        token = DO_TOKEN if provider == "digitalocean" else HZ_TOKEN
        document = {
            top: {
                "provider": provider,
                "id": server_id,
                "name": name,
                "api_token": token,
                "api_url": sim.api_url(provider),
                "telegram": {"enabled": True},
                **retention,
            }
        }
        path = folder / "configs" / f"{name}.json"
        path.write_text(json.dumps(document, indent=2), encoding="utf-8")
        path.chmod(0o600)
    main.chmod(0o600)
    return main


def run_demo(verbose: bool = False, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    with (
        tempfile.TemporaryDirectory(prefix="snapshotd-demo-") as tmp,
        Simulator(snapshot_seconds=1.0) as sim,
    ):
        build_fleet(sim)
        folder = Path(tmp)
        main = write_config(folder, sim)
        loaded = load_config(str(main))
        redactor = Redactor(loaded.secrets())
        setup_logging(redactor, log_path=loaded.settings.log_path, verbose=verbose)
        before = {key: len(sim.cloud.snapshots_of(*key)) for key in _untouched()}

        def write(text: str = "") -> None:
            out.write(redactor.redact(text) + "\n")

        write("snapshotd demo: a simulated cloud with 2 DigitalOcean droplets and 2 Hetzner")
        write(f"servers, configured in {folder} (deleted afterwards).")
        write("Running the real --once pipeline: create, wait, list, plan, prune, notify...\n")
        ctx = make_context(loaded.settings, redactor)
        results = run_servers(loaded.servers, ctx)
        for result in results:
            for line in explain(result, ctx.deliveries.get(result.server.key, ())):
                write(line)
        write("Left untouched on servers snapshotd does not manage:")
        for (provider, server_id), count in before.items():
            now = len(sim.cloud.snapshots_of(provider, server_id))
            name = sim.cloud.servers[(provider, server_id)].name
            write(f"  {name} ({provider} {server_id}): {count} snapshots before, {now} after")
        write(
            f"\nNotifications received by the simulator: {len(sim.received('telegram'))} "
            f"Telegram, {len(sim.received('webhook'))} webhook."
        )
        write(f"Requests sent to the simulated APIs: {len(sim.cloud.requests())}.")
        ok = all(r.status.ok for r in results)
        write(
            "\nDemo finished: every server succeeded." if ok else "\nDemo finished with failures."
        )
        return 0 if ok else 1


def explain(result: JobResult, deliveries: tuple[str, ...]) -> list[str]:
    server = result.server
    lines = [
        f"== {server.name} ({server.provider} {server.id}), "
        f"retention: {server.retention.describe()}: {result.status.value}"
    ]
    if result.error:
        lines.append(f"   error:   {result.error}")
    if result.snapshot_name:
        lines.append(f"   created  {result.snapshot_name}")
    plan = result.plan
    if plan is not None:
        for decision in plan.keep:
            lines.append(f"   kept     {decision.snapshot.name}  ({'; '.join(decision.reasons)})")
        for decision in plan.delete:
            lines.append(f"   deleted  {decision.snapshot.name}  ({'; '.join(decision.reasons)})")
        for snapshot in plan.ignored:
            lines.append(f"   ignored  {snapshot.name}  ({snapshot.note})")
    for delivery in deliveries:
        lines.append(f"   notified {delivery}")
    lines.append("")
    return lines


def _name(server: str, days_ago: int) -> str:
    return snapshot_name(server, datetime.now(timezone.utc) - timedelta(days=days_ago))


def _untouched() -> list[tuple[str, int]]:
    return [("digitalocean", 1003), ("hetzner", 2003)]
