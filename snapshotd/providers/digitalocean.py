"""DigitalOcean droplets: snapshot actions and the per-droplet snapshot listing.

DigitalOcean snapshot actions take no tags, so ownership is the listing under
the droplet plus the exact ``<name>-YYYYMMDDHHMMSS`` name.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from snapshotd.errors import ProviderError
from snapshotd.providers.base import (
    Listing,
    PendingSnapshot,
    Provider,
    Snapshot,
    parse_time,
    require_dict,
    require_id,
)

PER_PAGE = 200


class DigitalOcean(Provider):
    busy_codes = frozenset({"unprocessable_entity", "conflict"})

    def _create(self, name: str) -> PendingSnapshot:
        try:
            reply = self.client.post(
                f"droplets/{self.server.id}/actions", {"type": "snapshot", "name": name}
            )
        except ProviderError as exc:
            # 422 is also "bad request"; only "pending event" means busy.
            if exc.code == "unprocessable_entity" and "pending" not in exc.message.lower():
                exc.code = "invalid_request"
            raise
        action = require_dict("digitalocean", reply.get("action"), "action in the create reply")
        return PendingSnapshot(
            name=name, action_id=require_id("digitalocean", action.get("id"), "action id")
        )

    def _poll(self, pending: PendingSnapshot) -> str:
        if pending.action_id is None:
            found = self.list_snapshots().named(pending.name)
            return "done" if found else "running"
        reply = self.client.get(f"actions/{pending.action_id}")
        action = require_dict("digitalocean", reply.get("action"), "action")
        status = action.get("status")
        if status == "completed":
            return "done"
        if status == "errored":
            raise ProviderError(
                "digitalocean",
                f"DigitalOcean reports the snapshot action for {pending.name} errored",
                code="action_errored",
            )
        if status == "in-progress":
            return "running"
        raise ProviderError(
            "digitalocean", f"unknown action status {status!r}", code="malformed_response"
        )

    def find_pending(self, name: str) -> PendingSnapshot | None:
        if self.list_snapshots().named(name) is not None:
            return PendingSnapshot(name=name)
        reply = self.client.get(f"droplets/{self.server.id}/actions", {"per_page": 20})
        actions = reply.get("actions")
        if not isinstance(actions, list):
            return None
        recent = self.clock.now() - timedelta(seconds=self.timing.creation_timeout)
        for action in actions:
            if not isinstance(action, dict) or action.get("type") != "snapshot":
                continue
            if action.get("status") not in ("in-progress", "completed"):
                continue
            started = action.get("started_at")
            try:
                if parse_time(started, "action", "digitalocean") < recent:
                    continue
            except ProviderError:
                continue
            return PendingSnapshot(
                name=name, action_id=require_id("digitalocean", action.get("id"), "action id")
            )
        return None

    def list_snapshots(self) -> Listing:
        snapshots: list[Snapshot] = []
        seen: set[str] = set()
        url: str | None = f"droplets/{self.server.id}/snapshots"
        params: dict[str, Any] | None = {"per_page": PER_PAGE}
        total: int | None = None
        while url is not None:
            page = self.client.get(url, params)
            items = page.get("snapshots")
            if not isinstance(items, list):
                raise ProviderError(
                    "digitalocean",
                    "snapshot listing has no 'snapshots' array; nothing will be pruned",
                    code="malformed_response",
                )
            snapshots.extend(self._snapshot(item) for item in items)
            meta = page.get("meta")
            if isinstance(meta, dict) and isinstance(meta.get("total"), int):
                total = meta["total"]
            links = page.get("links") if isinstance(page.get("links"), dict) else {}
            pages = links.get("pages") if isinstance(links.get("pages"), dict) else {}
            url = self._next_page(seen, pages.get("next") if isinstance(pages, dict) else None)
            params = None
        if total is not None and len(snapshots) < total:
            raise ProviderError(
                "digitalocean",
                f"snapshot listing is incomplete ({len(snapshots)} of {total}); "
                "nothing will be pruned",
                code="truncated_listing",
            )
        return Listing(tuple(snapshots))

    def _snapshot(self, item: Any) -> Snapshot:
        entry = require_dict("digitalocean", item, "snapshot entry")
        name = entry.get("name")
        if not isinstance(name, str):
            raise ProviderError("digitalocean", "a snapshot has no name", code="malformed_response")
        snapshot_id = require_id("digitalocean", entry.get("id"), f"id of snapshot {name}")
        created = parse_time(entry.get("created_at"), f"snapshot {name}", "digitalocean")
        kind = entry.get("type", "snapshot")
        if kind != "snapshot":
            return Snapshot(snapshot_id, name, created, False, f"a {kind}, not a snapshot")
        managed, note = self.classify_name(name)
        return Snapshot(snapshot_id, name, created, managed, note)

    def _delete(self, snapshot: Snapshot) -> None:
        self.client.delete(f"snapshots/{snapshot.id}")

    def server_name(self) -> str:
        reply = self.client.get(f"droplets/{self.server.id}")
        droplet = require_dict("digitalocean", reply.get("droplet"), "droplet")
        return str(droplet.get("name", ""))
