"""``--status``: per server, the last run, the newest snapshot's age and the next run."""

from __future__ import annotations

import json
from typing import Any, TextIO

from snapshotd.check import format_table
from snapshotd.clock import Clock
from snapshotd.config.model import LoadedConfig
from snapshotd.state import DATABASE_NAME, History


def collect_status(loaded: LoadedConfig, clock: Clock) -> list[dict[str, Any]]:
    settings = loaded.settings
    history = History(settings.state_dir)
    latest = history.latest_runs()
    now = clock.now()
    rows: list[dict[str, Any]] = []
    for server in loaded.servers:
        run = latest.get(server.key)
        upcoming = server.schedule.next_fire_times(settings.timezone, now, 1)
        newest_age = (now - run.newest_at).total_seconds() if run and run.newest_at else None
        rows.append(
            {
                "server": server.name,
                "key": server.key,
                "provider": server.provider,
                "id": server.id,
                "last_run": run.started_at.isoformat() if run else None,
                "last_status": run.status if run else None,
                "last_error": run.error if run else None,
                "last_snapshot": run.snapshot_name if run else None,
                "newest_snapshot_age_seconds": newest_age,
                "managed_count": run.managed_count if run else None,
                "next_run": upcoming[0].isoformat() if upcoming else None,
            }
        )
    return rows


def run_status(
    loaded: LoadedConfig, out: TextIO, *, as_json: bool = False, clock: Clock | None = None
) -> int:
    rows = collect_status(loaded, clock or Clock())
    if as_json:
        out.write(json.dumps({"servers": rows}, indent=2) + "\n")
        return 0
    table = [("SERVER", "PROVIDER", "LAST RUN", "OUTCOME", "NEWEST AGE", "MANAGED", "NEXT RUN")]
    for row in rows:
        table.append(
            (
                row["server"],
                f"{row['provider']} {row['id']}",
                (row["last_run"] or "never")[:19].replace("T", " "),
                row["last_status"] or "-",
                _age(row["newest_snapshot_age_seconds"]),
                "-" if row["managed_count"] is None else str(row["managed_count"]),
                (row["next_run"] or "never")[:16].replace("T", " "),
            )
        )
    out.write(format_table(table) + "\n")
    out.write(f"\nhistory: {loaded.settings.state_dir / DATABASE_NAME}\n")
    return 0


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 3600:
        return f"{seconds / 60:.0f}m"
    if seconds < 172800:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"
