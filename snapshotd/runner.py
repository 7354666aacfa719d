"""``--once`` and ``--dry-run``: run the pipeline over the selected servers, print, exit.

Exit codes (the script's, made truthful):

* 0: every server succeeded (or its slot was already done);
* 1: every server failed, or a critical error (bad main config, no configs
  directory, no valid server);
* 2: partial: some failed, or a server file was invalid among valid ones;
* 3: nothing failed, but servers asked for were locked by another run.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TextIO

import requests

from snapshotd import __version__
from snapshotd.clock import Clock
from snapshotd.config.model import LoadedConfig, ServerConfig, Settings
from snapshotd.http import HttpContext, RetryPolicy
from snapshotd.notify import Notifier
from snapshotd.pipeline import JobContext, run_job
from snapshotd.providers import UnlabelledImageCache
from snapshotd.redact import Redactor
from snapshotd.result import JobResult, Status
from snapshotd.state import History

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_PARTIAL = 2
EXIT_LOCKED = 3


def make_context(
    settings: Settings,
    redactor: Redactor,
    clock: Clock | None = None,
    *,
    with_history: bool = True,
    policy: RetryPolicy | None = None,
) -> JobContext:
    """Wire the shared pieces a job needs: HTTP policy, notifier, history, caches."""
    clock = clock or Clock()
    policy = policy or RetryPolicy(read_timeout=settings.request_timeout)
    return JobContext(
        settings=settings,
        http=HttpContext(settings.rate_limits, clock, redactor, policy=policy),
        clock=clock,
        redactor=redactor,
        notifier=Notifier(requests.Session(), clock, redactor, settings.timezone),
        history=History(settings.state_dir) if with_history else None,
        legacy_cache=UnlabelledImageCache(clock.monotonic),
    )


def exit_code(results: Sequence[JobResult], invalid_files: int) -> int:
    if not results:
        return EXIT_FAILED
    statuses = [r.status for r in results]
    if all(s is Status.FAILURE for s in statuses):
        return EXIT_FAILED
    if invalid_files or any(s in (Status.FAILURE, Status.PARTIAL) for s in statuses):
        return EXIT_PARTIAL
    if any(s is Status.LOCKED for s in statuses):
        return EXIT_LOCKED
    return EXIT_OK


def run_servers(
    servers: Sequence[ServerConfig], ctx: JobContext, *, dry_run: bool = False
) -> list[JobResult]:
    """Run every server, at most ``max_concurrent_jobs`` at once; results in config order."""
    workers = max(1, min(ctx.settings.max_concurrent_jobs, len(servers) or 1))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="job") as pool:
        return list(pool.map(lambda s: run_job(s, ctx, dry_run=dry_run), servers))


class Printer:
    """Cron-friendly, timestamped lines on stdout, as the script's cronjob.log showed."""

    def __init__(self, settings: Settings, clock: Clock, out: TextIO | None = None) -> None:
        self.zone = settings.timezone
        self.clock = clock
        self.out = out or sys.stdout

    def line(self, text: str) -> None:
        stamp = self.clock.now().astimezone(self.zone).strftime("%Y-%m-%d %H:%M:%S")
        self.out.write(f"[{stamp}] {text}\n")
        self.out.flush()

    def plain(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()


def run_once(
    loaded: LoadedConfig, ctx: JobContext, *, dry_run: bool = False, out: TextIO | None = None
) -> int:
    printer = Printer(loaded.settings, ctx.clock, out)
    mode = "--dry-run" if dry_run else "--once"
    source = loaded.settings.ini_path or "built-in defaults (no snapshots.config found)"
    printer.line(f"Starting snapshotd {mode} {__version__} (config: {source})")
    if not dry_run:
        printer.line(
            f"Lock acquired successfully (PID: {os.getpid()}); "
            f"servers are locked one by one in {ctx.lock_dir}"
        )
    total_files = len(loaded.servers) + len(loaded.problems)
    printer.line(f"Found {total_files} configuration file(s).")
    for problem in loaded.problems:
        printer.line(f"INVALID {ctx.redactor.redact(problem.message)}")
    if not loaded.servers:
        printer.line("No valid server configuration; nothing to do.")
        printer.line(
            f"SUMMARY: 0 succeeded, {len(loaded.problems)} failed out of {total_files} total"
        )
        return EXIT_FAILED

    results = run_servers(loaded.servers, ctx, dry_run=dry_run)
    for result in results:
        printer.line(ctx.redactor.redact(result.summary()))
        if dry_run and result.plan is not None:
            for text in describe_plan(result):
                printer.plain(ctx.redactor.redact(text))
    succeeded = sum(1 for r in results if r.status.ok)
    locked = sum(1 for r in results if r.status is Status.LOCKED)
    failed = len(results) - succeeded - locked + len(loaded.problems)
    printer.line(f"SUMMARY: {succeeded} succeeded, {failed} failed out of {total_files} total")
    if locked:
        printer.line(f"{locked} server(s) skipped: locked by another run")
    code = exit_code(results, len(loaded.problems))
    verdict = {
        EXIT_OK: "Completed successfully.",
        EXIT_FAILED: "Completed: all servers failed.",
        EXIT_PARTIAL: "Completed with failures.",
        EXIT_LOCKED: "Completed: some servers were locked by another run.",
    }[code]
    printer.line(f"{verdict} (exit {code})")
    return code


def describe_plan(result: JobResult) -> list[str]:
    """The dry-run view of one server: what would be created, kept, deleted and ignored."""
    plan = result.plan
    if plan is None:
        return []
    server = result.server
    lines = [
        f"  retention: {server.retention.describe()}",
        f"  would create {result.snapshot_name}",
    ]
    for decision in plan.keep:
        if decision.snapshot.id == "(new)":
            continue
        lines.append(f"  keep    {decision.snapshot.name}  ({'; '.join(decision.reasons)})")
    for decision in plan.delete:
        lines.append(f"  delete  {decision.snapshot.name}  ({'; '.join(decision.reasons)})")
    for snapshot in plan.ignored:
        lines.append(f"  ignore  {snapshot.name}  ({snapshot.note})")
    return lines
