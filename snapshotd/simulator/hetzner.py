"""The Hetzner Cloud API v1 endpoints snapshotd uses."""

from __future__ import annotations

import re
import time
from typing import Any

from snapshotd.simulator.cloud import Cloud, SimAction, SimServer, SimSnapshot, iso
from snapshotd.simulator.http import SimRequest, SimResponse

MAX_PER_PAGE = 50


def error(status: int, code: str, message: str) -> SimResponse:
    return SimResponse(status, {"error": {"code": code, "message": message}})


def handle(cloud: Cloud, request: SimRequest) -> SimResponse:
    token = request.token
    if not token or cloud.tokens.get(token) != "hetzner":
        return error(401, "unauthorized", "unable to authenticate")
    path, method = request.path, request.method
    cloud.settle()
    if (match := re.fullmatch(r"/servers/(\d+)/actions/create_image", path)) and method == "POST":
        server = _server(cloud, token, int(match.group(1)))
        if server is None:
            return error(404, "not_found", "server not found")
        return _create_image(cloud, server, request)
    if (match := re.fullmatch(r"/servers/(\d+)", path)) and method == "GET":
        server = _server(cloud, token, int(match.group(1)))
        if server is None:
            return error(404, "not_found", "server not found")
        return SimResponse(
            200, {"server": {"id": server.id, "name": server.name, "status": "running"}}
        )
    if (match := re.fullmatch(r"/actions/(\d+)", path)) and method == "GET":
        action = cloud.actions.get(("hetzner", int(match.group(1))))
        if action is None or action.token != token:
            return error(404, "not_found", "action not found")
        return SimResponse(200, {"action": _action(action)})
    if path == "/images" and method == "GET":
        return _list_images(cloud, token, request)
    if match := re.fullmatch(r"/images/(\d+)", path):
        key = ("hetzner", int(match.group(1)))
        with cloud.lock:
            image = cloud.snapshots.get(key)
            if image is None or image.token != token:
                return error(404, "not_found", "image not found")
            if method == "GET":
                return SimResponse(200, {"image": _image(cloud, image)})
            if method == "DELETE":
                if image.protected:
                    return error(403, "protected", "image is delete-protected")
                if image.status == "creating":
                    return error(423, "locked", "image is being created")
                del cloud.snapshots[key]
                return SimResponse(204)
    return error(404, "not_found", f"no route for {method} {path}")


def _server(cloud: Cloud, token: str, server_id: int) -> SimServer | None:
    server = cloud.servers.get(("hetzner", server_id))
    return server if server is not None and server.token == token else None


def _create_image(cloud: Cloud, server: SimServer, request: SimRequest) -> SimResponse:
    body = request.json()
    if not isinstance(body, dict):
        return error(400, "invalid_input", "body must be a JSON object")
    if body.get("type", "snapshot") != "snapshot":
        return error(400, "invalid_input", "only snapshots are simulated")
    labels = body.get("labels") or {}
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        return error(400, "invalid_input", "labels must map strings to strings")
    if cloud.running_action("hetzner", server.id) is not None:
        return error(423, "locked", "server is locked by another action")
    with cloud.lock:
        image = cloud.add_snapshot(
            "hetzner",
            server.id,
            str(body.get("description") or f"image-{int(time.time())}"),
            token=server.token,
            status="creating",
            labels=labels,
        )
        action = cloud.start_action(server, image.name, image_id=image.id)
        return SimResponse(201, {"action": _action(action), "image": _image(cloud, image)})


def _list_images(cloud: Cloud, token: str, request: SimRequest) -> SimResponse:
    query = request.query
    try:
        per_page = min(MAX_PER_PAGE, max(1, int(query.get("per_page", 25))))
        page = max(1, int(query.get("page", 1)))
        selector = _parse_selector(query.get("label_selector", ""))
    except ValueError as exc:
        return error(400, "invalid_input", str(exc))
    wanted_type = query.get("type")
    wanted_status = query.get("status")
    with cloud.lock:
        images = sorted(
            (
                s
                for s in cloud.snapshots.values()
                if s.provider == "hetzner"
                and s.token == token
                and (wanted_type is None or s.kind == wanted_type)
                and (wanted_status is None or s.status == wanted_status)
                and all(rule(s.labels) for rule in selector)
            ),
            key=lambda s: s.id,
        )
        total = len(images)
        chunk = images[(page - 1) * per_page : page * per_page]
        last = max(1, -(-total // per_page))
        body = {
            "images": [_image(cloud, s) for s in chunk],
            "meta": {
                "pagination": {
                    "page": page,
                    "per_page": per_page,
                    "previous_page": page - 1 if page > 1 else None,
                    "next_page": page + 1 if page < last else None,
                    "last_page": last,
                    "total_entries": total,
                }
            },
        }
    return SimResponse(200, body)


def _parse_selector(text: str) -> list[Any]:
    rules: list[Any] = []
    for term in filter(None, (t.strip() for t in text.split(","))):
        if term.startswith("!"):
            key = term[1:]
            rules.append(lambda labels, key=key: key not in labels)
        elif "!=" in term:
            key, value = term.split("!=", 1)
            rules.append(lambda labels, key=key, value=value: labels.get(key) != value)
        elif "=" in term:
            key, value = term.split("=", 1)
            key = key.rstrip("=")
            rules.append(lambda labels, key=key, value=value: labels.get(key) == value)
        elif re.fullmatch(r"[A-Za-z0-9._/-]+", term):
            rules.append(lambda labels, key=term: key in labels)
        else:
            raise ValueError(f"invalid label_selector term {term!r}")
    return rules


def _action(action: SimAction) -> dict[str, Any]:
    state = action.state(time.monotonic())
    status = "running"
    error_body = None
    if state == "done":
        status = "success" if action.outcome == "success" else "error"
        if action.outcome != "success":
            error_body = {"code": "action_failed", "message": "Action failed"}
    return {
        "id": action.id,
        "command": "create_image",
        "status": status,
        "progress": action.progress(time.monotonic()),
        "started": iso(action.started),
        "finished": iso(action.finished),
        "resources": [{"id": action.server_id, "type": "server"}],
        "error": error_body,
    }


def _image(cloud: Cloud, image: SimSnapshot) -> dict[str, Any]:
    server = cloud.servers.get(("hetzner", image.server_id))
    return {
        "id": image.id,
        "type": image.kind,
        "status": image.status,
        "name": None,
        "description": image.name,
        "image_size": 2.5 if image.status == "available" else None,
        "disk_size": 20,
        "created": iso(image.created),
        "created_from": {"id": image.server_id, "name": server.name if server else "gone"},
        "bound_to": image.server_id if image.kind == "backup" else None,
        "os_flavor": "ubuntu",
        "os_version": "24.04",
        "rapid_deploy": False,
        "protection": {"delete": image.protected},
        "deprecated": None,
        "deleted": None,
        "labels": dict(image.labels),
        "architecture": "x86",
    }
