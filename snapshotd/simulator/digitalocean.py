"""The DigitalOcean API v2 endpoints snapshotd uses, plus the old script's account listing."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

from snapshotd.simulator.cloud import Cloud, SimAction, SimServer, SimSnapshot, iso
from snapshotd.simulator.http import SimRequest, SimResponse

MAX_PER_PAGE = 200


def error(status: int, error_id: str, message: str) -> SimResponse:
    return SimResponse(status, {"id": error_id, "message": message})


def handle(cloud: Cloud, request: SimRequest) -> SimResponse:
    token = request.token
    if not token or cloud.tokens.get(token) != "digitalocean":
        return error(401, "unauthorized", "Unable to authenticate you")
    path, method = request.path, request.method
    cloud.settle()
    if match := re.fullmatch(r"/droplets/(\d+)/actions", path):
        server = _droplet(cloud, token, int(match.group(1)))
        if server is None:
            return error(404, "not_found", "The resource you were accessing could not be found.")
        if method == "POST":
            return _create_snapshot(cloud, server, request)
        if method == "GET":
            return _list_actions(cloud, server, request)
    if (match := re.fullmatch(r"/droplets/(\d+)/snapshots", path)) and method == "GET":
        server = _droplet(cloud, token, int(match.group(1)))
        if server is None:
            return error(404, "not_found", "The resource you were accessing could not be found.")
        items = [s for s in cloud.snapshots_of("digitalocean", server.id) if s.token == token]
        return _page(request, "snapshots", items, lambda s: _droplet_snapshot(s))
    if (match := re.fullmatch(r"/droplets/(\d+)", path)) and method == "GET":
        server = _droplet(cloud, token, int(match.group(1)))
        if server is None:
            return error(404, "not_found", "The resource you were accessing could not be found.")
        return SimResponse(
            200, {"droplet": {"id": server.id, "name": server.name, "status": "active"}}
        )
    if (match := re.fullmatch(r"/actions/(\d+)", path)) and method == "GET":
        action = cloud.actions.get(("digitalocean", int(match.group(1))))
        if action is None or action.token != token:
            return error(404, "not_found", "The resource you were accessing could not be found.")
        return SimResponse(200, {"action": _action(action)})
    if path == "/snapshots" and method == "GET":
        with cloud.lock:
            items = sorted(
                (
                    s
                    for s in cloud.snapshots.values()
                    if s.provider == "digitalocean" and s.token == token
                ),
                key=lambda s: (s.created, s.id),
            )
        return _page(request, "snapshots", items, _account_snapshot)
    if (match := re.fullmatch(r"/snapshots/(\d+)", path)) and method == "DELETE":
        key = ("digitalocean", int(match.group(1)))
        with cloud.lock:
            snapshot = cloud.snapshots.get(key)
            if snapshot is None or snapshot.token != token:
                return error(
                    404, "not_found", "The resource you were accessing could not be found."
                )
            del cloud.snapshots[key]
        return SimResponse(204)
    return error(404, "not_found", f"no route for {method} {path}")


def _droplet(cloud: Cloud, token: str, droplet_id: int) -> SimServer | None:
    server = cloud.servers.get(("digitalocean", droplet_id))
    return server if server is not None and server.token == token else None


def _create_snapshot(cloud: Cloud, server: SimServer, request: SimRequest) -> SimResponse:
    body = request.json()
    if not isinstance(body, dict) or body.get("type") != "snapshot":
        return error(422, "unprocessable_entity", "Only snapshot actions are simulated.")
    name = body.get("name")
    if not isinstance(name, str) or not name:
        return error(422, "unprocessable_entity", "name is required")
    if cloud.running_action("digitalocean", server.id) is not None:
        return error(422, "unprocessable_entity", "Droplet already has a pending event.")
    action = cloud.start_action(server, name)
    return SimResponse(201, {"action": _action(action)})


def _list_actions(cloud: Cloud, server: SimServer, request: SimRequest) -> SimResponse:
    with cloud.lock:
        items = sorted(
            (
                a
                for a in cloud.actions.values()
                if a.provider == "digitalocean" and a.server_id == server.id
            ),
            key=lambda a: a.id,
            reverse=True,
        )
    return _page(request, "actions", items, _action)


def _page(request: SimRequest, key: str, items: list[Any], render: Any) -> SimResponse:
    try:
        per_page = min(MAX_PER_PAGE, max(1, int(request.query.get("per_page", 20))))
        page = max(1, int(request.query.get("page", 1)))
    except ValueError:
        return error(400, "bad_request", "per_page and page must be integers")
    start = (page - 1) * per_page
    chunk = items[start : start + per_page]
    last = max(1, -(-len(items) // per_page))
    pages: dict[str, str] = {}

    def link(number: int) -> str:
        query = {k: v for k, v in request.query.items() if k != "page"}
        query["page"] = str(number)
        return f"{request.base_url}{request.path}?{urlencode(query)}"

    if page < last:
        pages["next"] = link(page + 1)
        pages["last"] = link(last)
    if page > 1:
        pages["first"] = link(1)
        pages["prev"] = link(page - 1)
    return SimResponse(
        200,
        {
            key: [render(i) for i in chunk],
            "links": {"pages": pages} if pages else {},
            "meta": {"total": len(items)},
        },
    )


def _action(action: SimAction) -> dict[str, Any]:
    import time

    now = time.monotonic()
    state = action.state(now)
    status = "in-progress"
    if state == "done":
        status = "completed" if action.outcome == "success" else "errored"
    return {
        "id": action.id,
        "status": status,
        "type": "snapshot",
        "started_at": iso(action.started),
        "completed_at": iso(action.finished),
        "resource_id": action.server_id,
        "resource_type": "droplet",
        "region_slug": "fra1",
    }


def _base(snapshot: SimSnapshot) -> dict[str, Any]:
    return {
        "name": snapshot.name,
        "created_at": iso(snapshot.created),
        "regions": ["fra1"],
        "min_disk_size": 25,
        "size_gigabytes": 2.5,
    }


def _droplet_snapshot(snapshot: SimSnapshot) -> dict[str, Any]:
    return {"id": snapshot.id, **_base(snapshot), "type": snapshot.kind}


def _account_snapshot(snapshot: SimSnapshot) -> dict[str, Any]:
    return {
        "id": str(snapshot.id),
        **_base(snapshot),
        "resource_id": str(snapshot.server_id),
        "resource_type": "droplet",
        "tags": [],
    }
