"""The values a template can use, derived from a job result. Pure."""

from __future__ import annotations

from datetime import tzinfo

from snapshotd.redact import Redactor
from snapshotd.result import JobResult

SCRIPT_NAME = "snapshotd"


def template_values(
    result: JobResult, hostname: str, zone: tzinfo, redactor: Redactor
) -> dict[str, str]:
    server = result.server
    total = "" if result.managed_count is None else str(result.managed_count)
    info = (
        f"{result.managed_count} snapshot{'s' if result.managed_count != 1 else ''} exist"
        if result.managed_count is not None
        else "snapshot count unknown"
    )
    return {
        "script": SCRIPT_NAME,
        "provider": server.provider,
        "server_name": server.name,
        "server_id": server.id,
        "droplet_name": server.name,
        "droplet_id": server.id,
        "snapshot_name": result.snapshot_name or "",
        "total_snapshots": total,
        "snapshot_info": info,
        "status": result.status.value,
        "hostname": hostname,
        "timestamp": result.finished_at.astimezone(zone).isoformat(timespec="seconds"),
        "error": redactor.redact(result.error) if result.error else "",
        "deleted_count": str(len(result.deleted)),
        "deleted": ", ".join(result.deleted),
        "kept_count": str(len(result.kept)),
        "duration": f"{result.duration:.1f}s",
    }
