"""Cloud providers behind one small interface: create, wait, list managed, delete."""

from __future__ import annotations

from snapshotd.clock import Clock
from snapshotd.config.model import ServerConfig, Settings
from snapshotd.http import HttpContext
from snapshotd.providers.base import Listing, PendingSnapshot, Provider, Snapshot, Timing
from snapshotd.providers.digitalocean import DigitalOcean
from snapshotd.providers.hetzner import Hetzner, UnlabelledImageCache

__all__ = [
    "Listing",
    "PendingSnapshot",
    "Provider",
    "Snapshot",
    "Timing",
    "UnlabelledImageCache",
    "make_provider",
]


def make_provider(
    server: ServerConfig,
    http: HttpContext,
    clock: Clock,
    settings: Settings,
    legacy_cache: UnlabelledImageCache | None = None,
) -> Provider:
    client = http.client(server.provider, server.api_url, server.api_token)
    timing = Timing(
        poll_interval=settings.poll_interval,
        poll_interval_max=settings.poll_interval_max,
        creation_timeout=settings.snapshot_creation_timeout,
    )
    if server.provider == "digitalocean":
        return DigitalOcean(server, client, clock, timing)
    return Hetzner(server, client, clock, timing, legacy_cache=legacy_cache)
