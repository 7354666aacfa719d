"""Hetzner Cloud servers: ``create_image`` actions and labelled snapshot images.

snapshotd labels its images ``managed-by=snapshotd`` and
``snapshotd-server=<id>``, so one ``label_selector`` query per server finds
them. Images left by the old script carry no labels; they are found in one
listing of *unlabelled* snapshots per token, shared by every server on that
token for a few minutes, so the cost does not grow with the fleet.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
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

PER_PAGE = 50
MANAGED_LABEL = "managed-by"
MANAGED_VALUE = "snapshotd"
SERVER_LABEL = "snapshotd-server"


class UnlabelledImageCache:
    """Unlabelled snapshot images per token, reused for ``ttl`` seconds."""

    def __init__(self, monotonic: Callable[[], float], ttl: float = 300.0) -> None:
        self._monotonic = monotonic
        self._ttl = ttl
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, list[dict[str, Any]]]] = {}
        self._loading: dict[str, threading.Lock] = {}

    def get(self, token: str, load: Callable[[], list[dict[str, Any]]]) -> list[dict[str, Any]]:
        key = hashlib.sha256(token.encode()).hexdigest()
        with self._lock:
            gate = self._loading.setdefault(key, threading.Lock())
        with gate:  # one listing per token at a time; the others wait and reuse it
            with self._lock:
                entry = self._entries.get(key)
                if entry and self._monotonic() - entry[0] < self._ttl:
                    return list(entry[1])
            images = load()
            with self._lock:
                self._entries[key] = (self._monotonic(), images)
            return list(images)

    def forget(self, token: str, image_id: str) -> None:
        key = hashlib.sha256(token.encode()).hexdigest()
        with self._lock:
            entry = self._entries.get(key)
            if entry:
                kept = [i for i in entry[1] if str(i.get("id")) != image_id]
                self._entries[key] = (entry[0], kept)


class Hetzner(Provider):
    busy_codes = frozenset({"locked", "conflict"})

    def __init__(self, *args: Any, legacy_cache: UnlabelledImageCache | None = None) -> None:
        super().__init__(*args)
        self.legacy_cache = legacy_cache

    @property
    def _selector(self) -> str:
        return f"{MANAGED_LABEL}={MANAGED_VALUE},{SERVER_LABEL}={self.server.id}"

    def _create(self, name: str) -> PendingSnapshot:
        reply = self.client.post(
            f"servers/{self.server.id}/actions/create_image",
            {
                "type": "snapshot",
                "description": name,
                "labels": {MANAGED_LABEL: MANAGED_VALUE, SERVER_LABEL: self.server.id},
            },
        )
        action = require_dict("hetzner", reply.get("action"), "action in the create reply")
        image = reply.get("image") if isinstance(reply.get("image"), dict) else {}
        return PendingSnapshot(
            name=name,
            action_id=require_id("hetzner", action.get("id"), "action id"),
            snapshot_id=str(image["id"]) if image.get("id") is not None else None,
        )

    def _poll(self, pending: PendingSnapshot) -> str:
        if pending.action_id is None:
            if pending.snapshot_id is None:
                return "done" if self.list_snapshots().named(pending.name) else "running"
            image = require_dict(
                "hetzner", self.client.get(f"images/{pending.snapshot_id}").get("image"), "image"
            )
            return "done" if image.get("status") == "available" else "running"
        action = require_dict(
            "hetzner", self.client.get(f"actions/{pending.action_id}").get("action"), "action"
        )
        progress = action.get("progress")
        if isinstance(progress, int) and not isinstance(progress, bool):
            pending.progress = progress
        status = action.get("status")
        if status == "success":
            return "done"
        if status == "error":
            error = action.get("error") if isinstance(action.get("error"), dict) else {}
            raise ProviderError(
                "hetzner",
                f"Hetzner reports the image action for {pending.name} failed: "
                f"{error.get('message', 'no reason given')} ({error.get('code', 'error')})",
                code="action_errored",
            )
        if status == "running":
            return "running"
        raise ProviderError(
            "hetzner", f"unknown action status {status!r}", code="malformed_response"
        )

    def find_pending(self, name: str) -> PendingSnapshot | None:
        for image in self._list_images(self._selector):
            if image.get("description") == name and image.get("type") == "snapshot":
                status = image.get("status")
                if status in ("creating", "available"):
                    return PendingSnapshot(name=name, snapshot_id=str(image.get("id")))
        return None

    def list_snapshots(self) -> Listing:
        labelled = self._list_images(self._selector)
        seen_ids = {str(i.get("id")) for i in labelled}
        legacy = [
            image
            for image in self._unlabelled()
            if str(image.get("id")) not in seen_ids and self._created_here(image)
        ]
        return Listing(tuple(self._snapshot(image) for image in [*labelled, *legacy]))

    def _unlabelled(self) -> list[dict[str, Any]]:
        def load() -> list[dict[str, Any]]:
            return self._list_images(f"!{MANAGED_LABEL}")

        if self.legacy_cache is None:
            return load()
        return self.legacy_cache.get(self.server.api_token, load)

    def _list_images(self, selector: str) -> list[dict[str, Any]]:
        images: list[dict[str, Any]] = []
        page: int | None = 1
        seen: set[str] = set()
        total: int | None = None
        while page is not None:
            self._next_page(seen, f"{self.client.base_url}images?page={page}&sel={selector}")
            reply = self.client.get(
                "images",
                {
                    "type": "snapshot",
                    "label_selector": selector,
                    "per_page": PER_PAGE,
                    "page": page,
                },
            )
            items = reply.get("images")
            if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
                raise ProviderError(
                    "hetzner",
                    "image listing has no valid 'images' array; nothing will be pruned",
                    code="malformed_response",
                )
            images.extend(items)
            meta = reply.get("meta") if isinstance(reply.get("meta"), dict) else {}
            pagination = meta.get("pagination") if isinstance(meta.get("pagination"), dict) else {}
            next_page = pagination.get("next_page")
            if isinstance(pagination.get("total_entries"), int):
                total = pagination["total_entries"]
            page = (
                next_page
                if isinstance(next_page, int) and not isinstance(next_page, bool)
                else None
            )
        if total is not None and len(images) < total:
            raise ProviderError(
                "hetzner",
                f"image listing is incomplete ({len(images)} of {total}); nothing will be pruned",
                code="truncated_listing",
            )
        return images

    def _created_here(self, image: dict[str, Any]) -> bool:
        origin = image.get("created_from")
        return isinstance(origin, dict) and str(origin.get("id")) == self.server.id

    def _snapshot(self, image: dict[str, Any]) -> Snapshot:
        image_id = require_id("hetzner", image.get("id"), "image id")
        name = image.get("description")
        name = name if isinstance(name, str) else f"image {image_id}"
        created = parse_time(image.get("created"), f"image {image_id}", "hetzner")
        labels = image.get("labels") if isinstance(image.get("labels"), dict) else {}
        protection = image.get("protection") if isinstance(image.get("protection"), dict) else {}
        if image.get("type") != "snapshot":
            return Snapshot(
                image_id, name, created, False, f"a {image.get('type')}, not a snapshot"
            )
        if not self._created_here(image):
            return Snapshot(image_id, name, created, False, "made from another server")
        if image.get("status") != "available":
            return Snapshot(image_id, name, created, False, f"status {image.get('status')}")
        if protection.get("delete") is True:
            return Snapshot(image_id, name, created, False, "delete-protected")
        if (
            labels.get(MANAGED_LABEL) == MANAGED_VALUE
            and labels.get(SERVER_LABEL) == self.server.id
        ):
            return Snapshot(image_id, name, created, True, "labelled managed-by=snapshotd")
        managed, note = self.classify_name(name)
        return Snapshot(image_id, name, created, managed, note)

    def _delete(self, snapshot: Snapshot) -> None:
        self.client.delete(f"images/{snapshot.id}")
        if self.legacy_cache is not None:
            self.legacy_cache.forget(self.server.api_token, snapshot.id)

    def server_name(self) -> str:
        server = require_dict(
            "hetzner", self.client.get(f"servers/{self.server.id}").get("server"), "server"
        )
        return str(server.get("name", ""))
