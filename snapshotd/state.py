"""The run history: an embedded SQLite database in ``state_dir``.

It records every run, and every create that is in flight, so that a restart
after a crash resumes waiting on the recorded snapshot instead of making a
second one. It is opened per operation, so any thread (or ``--status`` in
another process) can read it while the daemon writes.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from snapshotd.result import JobResult

DATABASE_NAME = "snapshotd.sqlite3"
SCHEMA_VERSION = 1

_MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        server_key TEXT NOT NULL,
        server_name TEXT NOT NULL,
        slot TEXT,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        status TEXT NOT NULL DEFAULT 'RUNNING',
        snapshot_name TEXT,
        snapshot_id TEXT,
        deleted TEXT NOT NULL DEFAULT '[]',
        managed_count INTEGER,
        newest_at TEXT,
        error TEXT,
        requests INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX runs_by_server ON runs (server_key, started_at);
    CREATE TABLE in_flight (
        server_key TEXT PRIMARY KEY,
        run_id INTEGER NOT NULL,
        snapshot_name TEXT NOT NULL,
        action_id TEXT,
        snapshot_id TEXT,
        recorded_at TEXT NOT NULL
    );
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    """,
}


@dataclass(frozen=True)
class InFlight:
    server_key: str
    run_id: int
    snapshot_name: str
    action_id: str | None
    snapshot_id: str | None


@dataclass(frozen=True)
class RunRecord:
    server_key: str
    server_name: str
    slot: datetime | None
    started_at: datetime
    finished_at: datetime | None
    status: str
    snapshot_name: str | None
    managed_count: int | None
    newest_at: datetime | None
    error: str | None


class History:
    def __init__(self, state_dir: Path) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        self.path = state_dir / DATABASE_NAME
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            version = db.execute("PRAGMA user_version").fetchone()[0]
            for target in range(version + 1, SCHEMA_VERSION + 1):
                db.executescript(_MIGRATIONS[target])
                db.execute(f"PRAGMA user_version = {target}")

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            db.execute("PRAGMA busy_timeout = 30000")
            yield db
        finally:
            db.close()

    def start_run(
        self, server_key: str, server_name: str, slot: datetime | None, at: datetime
    ) -> int:
        with self._connect() as db:
            cursor = db.execute(
                "INSERT INTO runs (server_key, server_name, slot, started_at) VALUES (?, ?, ?, ?)",
                (server_key, server_name, _iso(slot), _iso(at)),
            )
            return int(cursor.lastrowid or 0)

    def finish_run(self, run_id: int, result: JobResult) -> None:
        with self._connect() as db:
            db.execute(
                """UPDATE runs SET finished_at = ?, status = ?, snapshot_name = ?, snapshot_id = ?,
                   deleted = ?, managed_count = ?, newest_at = ?, error = ?, requests = ?
                   WHERE id = ?""",
                (
                    _iso(result.finished_at),
                    result.status.value,
                    result.snapshot_name,
                    result.snapshot_id,
                    json.dumps(list(result.deleted)),
                    result.managed_count,
                    _iso(result.newest_at),
                    result.error,
                    result.requests,
                    run_id,
                ),
            )

    def interrupt_unfinished(self, at: datetime, why: str) -> int:
        """Close every run left open (stopped mid-job, or a crash); return how many."""
        with self._connect() as db:
            cursor = db.execute(
                "UPDATE runs SET finished_at = ?, status = 'INTERRUPTED', error = ? "
                "WHERE finished_at IS NULL",
                (_iso(at), why),
            )
            return cursor.rowcount

    def get_meta(self, key: str) -> str | None:
        with self._connect() as db:
            row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self._connect() as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def record_in_flight(
        self,
        server_key: str,
        run_id: int,
        name: str,
        action_id: str | None,
        snapshot_id: str | None,
        at: datetime,
    ) -> None:
        with self._connect() as db:
            db.execute(
                "INSERT OR REPLACE INTO in_flight VALUES (?, ?, ?, ?, ?, ?)",
                (server_key, run_id, name, action_id, snapshot_id, _iso(at)),
            )

    def clear_in_flight(self, server_key: str) -> None:
        with self._connect() as db:
            db.execute("DELETE FROM in_flight WHERE server_key = ?", (server_key,))

    def in_flight(self, server_key: str) -> InFlight | None:
        with self._connect() as db:
            row = db.execute(
                "SELECT server_key, run_id, snapshot_name, action_id, snapshot_id "
                "FROM in_flight WHERE server_key = ?",
                (server_key,),
            ).fetchone()
        return InFlight(*row) if row else None

    def all_in_flight(self) -> list[InFlight]:
        with self._connect() as db:
            rows = db.execute(
                "SELECT server_key, run_id, snapshot_name, action_id, snapshot_id FROM in_flight"
            ).fetchall()
        return [InFlight(*row) for row in rows]

    def latest_starts(self) -> dict[str, datetime]:
        """Per server, when its most recent run (or slot) began: one query for every server."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT server_key, MAX(MAX(started_at), COALESCE(MAX(slot), '')) "
                "FROM runs GROUP BY server_key"
            ).fetchall()
        return {key: datetime.fromisoformat(value) for key, value in rows if value}

    def latest_runs(self) -> dict[str, RunRecord]:
        with self._connect() as db:
            rows = db.execute(
                """SELECT server_key, server_name, slot, started_at, finished_at, status,
                          snapshot_name, managed_count, newest_at, error
                   FROM runs WHERE id IN (SELECT MAX(id) FROM runs GROUP BY server_key)"""
            ).fetchall()
        return {
            row[0]: RunRecord(
                server_key=row[0],
                server_name=row[1],
                slot=_parse(row[2]),
                started_at=_parse(row[3]) or datetime.min,
                finished_at=_parse(row[4]),
                status=row[5],
                snapshot_name=row[6],
                managed_count=row[7],
                newest_at=_parse(row[8]),
                error=row[9],
            )
            for row in rows
        }


def _iso(moment: datetime | None) -> str | None:
    """UTC ISO text, so that SQLite's text comparison orders times correctly."""
    return moment.astimezone(timezone.utc).isoformat() if moment is not None else None


def _parse(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None
