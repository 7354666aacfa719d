"""``--check``: load and validate everything, then show what would run, secrets masked."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TextIO
from urllib.parse import urlsplit

from snapshotd.clock import Clock
from snapshotd.config.model import LoadedConfig, ServerConfig
from snapshotd.errors import ProviderError
from snapshotd.http import HttpContext, RetryPolicy
from snapshotd.providers import make_provider
from snapshotd.redact import Redactor


def run_check(
    loaded: LoadedConfig,
    out: TextIO,
    *,
    online: bool = False,
    clock: Clock | None = None,
    redactor: Redactor | None = None,
) -> int:
    clock = clock or Clock()
    redactor = redactor or Redactor(loaded.secrets())
    settings = loaded.settings

    def write(text: str = "") -> None:
        out.write(redactor.redact(text) + "\n")

    write(f"Main config:  {settings.ini_path or 'none found; using built-in defaults'}")
    write(f"Configs dir:  {settings.configs_dir}")
    write(f"Log file:     {settings.log_path}")
    write(f"State dir:    {settings.state_dir}")
    write(f"Time zone:    {settings.timezone.key}")
    write(f"Concurrency:  {settings.max_concurrent_jobs} job(s) at once")
    write()
    now = clock.now()
    rows = [("SERVER", "PROVIDER", "ID", "RETENTION", "SCHEDULE", "NEXT RUNS", "NOTIFY")]
    for server in loaded.servers:
        runs = server.schedule.next_fire_times(settings.timezone, now, 3)
        rows.append(
            (
                server.name,
                server.provider,
                server.id,
                server.retention.describe(),
                f"{server.schedule.describe()} ({server.schedule.expression})",
                ", ".join(t.strftime("%a %Y-%m-%d %H:%M") for t in runs) or "never",
                notification_targets(server),
            )
        )
    write(format_table(rows))
    write()
    for server in loaded.servers:
        for note in server.notes:
            write(f"note: {server.file}: {note}")
    for warning in loaded.warnings:
        write(f"warning: {warning}")
    for problem in loaded.problems:
        write(f"ERROR: {problem.message}")
    failed = bool(loaded.problems) or not loaded.servers
    if not loaded.servers:
        write("ERROR: no valid server configuration found")
    if online:
        failed = check_online(loaded, write, clock, redactor) or failed
    write()
    write(
        f"{len(loaded.servers)} server(s) valid, {len(loaded.problems)} invalid: "
        + ("configuration has errors" if failed else "configuration OK")
    )
    return 1 if failed else 0


def check_online(
    loaded: LoadedConfig, write: Callable[[str], None], clock: Clock, redactor: Redactor
) -> bool:
    """Read-only calls: is each token accepted, does each server exist, do names match?"""
    policy = RetryPolicy(read_timeout=loaded.settings.request_timeout)
    http = HttpContext(loaded.settings.rate_limits, clock, redactor, policy=policy)
    failed = False
    write()
    for server in loaded.servers:
        provider = make_provider(server, http, clock, loaded.settings)
        try:
            real = provider.server_name()
        except ProviderError as exc:
            write(f"ONLINE ERROR: {server.name} ({server.provider} {server.id}): {exc.message}")
            failed = True
            continue
        if real != server.name:
            write(
                f"online: {server.name} ({server.provider} {server.id}): token accepted; the "
                f"server is called '{real}' at the provider, not '{server.name}' "
                "(snapshots are still named after 'name')"
            )
        else:
            write(f"online: {server.name} ({server.provider} {server.id}): OK, '{real}'")
    http.close()
    return failed


def notification_targets(server: ServerConfig) -> str:
    targets: list[str] = []
    if server.telegram:
        targets.append(f"telegram chat {server.telegram.chat_id} (bot ***)")
    if server.webhook:
        for endpoint in server.webhook.endpoints:
            signed = ", signed" if endpoint.secret else ""
            targets.append(f"webhook {mask_url(endpoint.url)}{signed}")
    if server.healthcheck_url:
        targets.append(f"ping {mask_url(server.healthcheck_url)}")
    return "; ".join(targets) or "none"


def mask_url(url: str) -> str:
    """Scheme and host only: paths and queries of hook URLs often embed secrets."""
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return (
        f"{parts.scheme}://{host}/***"
        if parts.path.strip("/") or parts.query
        else f"{parts.scheme}://{host}"
    )


def format_table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
