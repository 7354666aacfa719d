"""Template rendering for notifications. Pure functions, no I/O.

Rules:

* ``{name}`` placeholders are replaced in one pass, so an inserted value is
  never expanded again (a server called ``{status}`` stays ``{status}``);
* unknown placeholders are left exactly as written, as the script did;
* webhook payloads are JSON objects: they are rendered value by value, so keys
  are never touched and quotes or braces in values cannot break the JSON;
* Telegram's legacy Markdown has no escaping inside entities, so each value is
  escaped for the context it lands in (plain text, `code`, *bold*, _italic_).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

VARIABLES: tuple[str, ...] = (
    "script",
    "provider",
    "server_name",
    "server_id",
    "snapshot_name",
    "total_snapshots",
    "snapshot_info",
    "status",
    "hostname",
    "timestamp",
    "droplet_name",  # deprecated alias of server_name
    "droplet_id",  # deprecated alias of server_id
    "error",
    "deleted_count",
    "deleted",
    "kept_count",
    "duration",
)

PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")

DEFAULT_SUCCESS_MESSAGE = (
    "*Snapshot {status}*\n"
    "Server: `{server_name}` ({provider} {server_id})\n"
    "Snapshot: `{snapshot_name}`\n"
    "Total: `{total_snapshots}` snapshots, deleted `{deleted_count}`\n"
    "Host: `{hostname}` at {timestamp}"
)
DEFAULT_FAILURE_MESSAGE = (
    "*Snapshot {status}*\n"
    "Server: `{server_name}` ({provider} {server_id})\n"
    "Snapshot: `{snapshot_name}`\n"
    "Error: `{error}`\n"
    "Host: `{hostname}` at {timestamp}"
)

DEFAULT_PAYLOAD: dict[str, str] = {
    "script": "{script}",
    "provider": "{provider}",
    "server": "{server_name}",
    "server_id": "{server_id}",
    "status": "{status}",
    "hostname": "{hostname}",
    "timestamp": "{timestamp}",
    "snapshot_name": "{snapshot_name}",
    "total_snapshots": "{total_snapshots}",
    "snapshot_info": "{snapshot_info}",
}

TELEGRAM_LIMIT = 4096


def unknown_placeholders(template: str) -> list[str]:
    """Placeholders in ``template`` that snapshotd does not fill."""
    return sorted({m.group(1) for m in PLACEHOLDER.finditer(template)} - set(VARIABLES))


def payload_placeholders(payload: Any) -> list[str]:
    found: set[str] = set()
    for text in _strings_in(payload):
        found.update(unknown_placeholders(text))
    return sorted(found)


def render_text(
    template: str,
    values: Mapping[str, str],
    escape: Callable[[str, str], str] | None = None,
) -> str:
    """Substitute known placeholders once; ``escape(value, context)`` may adapt values."""
    contexts = _markdown_contexts(template) if escape else {}

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            return match.group(0)
        value = str(values[name])
        return escape(value, contexts.get(match.start(), "plain")) if escape else value

    return PLACEHOLDER.sub(substitute, template)


def render_payload(payload: Any, values: Mapping[str, str]) -> Any:
    """Render every string value of a JSON-like structure; keys stay as written."""
    if isinstance(payload, str):
        return render_text(payload, values)
    if isinstance(payload, dict):
        return {key: render_payload(item, values) for key, item in payload.items()}
    if isinstance(payload, list):
        return [render_payload(item, values) for item in payload]
    return payload


def render_telegram(template: str, values: Mapping[str, str]) -> str:
    """Render for Telegram's legacy Markdown, escaping values by context, within 4,096 chars."""
    return truncate(render_text(template, values, escape=escape_markdown), TELEGRAM_LIMIT)


def truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def escape_markdown(value: str, context: str) -> str:
    """Make ``value`` inert in Telegram legacy Markdown for the given context."""
    if context == "code":
        return value.replace("`", "'")
    if context == "bold":
        return value.replace("*", "∗")
    if context == "italic":
        return value.replace("_", "＿")
    return re.sub(r"([_*`\[])", r"\\\1", value)


def parse_json_object(text: str) -> dict[str, Any]:
    """Parse a payload template given as a JSON string (the INI form)."""
    parsed = json.loads(text)
    if not isinstance(parsed, dict):
        raise ValueError("a payload template must be a JSON object")
    return parsed


def _markdown_contexts(template: str) -> dict[int, str]:
    """For each placeholder offset: the Markdown entity it sits in."""
    contexts: dict[int, str] = {}
    state = "plain"
    position = 0
    for match in PLACEHOLDER.finditer(template):
        state = _advance(template[position : match.start()], state)
        contexts[match.start()] = state
        position = match.end()
    return contexts


_CLOSERS = {"code": "`", "bold": "*", "italic": "_"}


def _advance(literal: str, state: str) -> str:
    index = 0
    while index < len(literal):
        char = literal[index]
        if state == "plain":
            if char == "\\":
                index += 2
                continue
            state = {"`": "code", "*": "bold", "_": "italic"}.get(char, "plain")
        elif char == _CLOSERS.get(state):
            state = "plain"
        index += 1
    return state


def _strings_in(payload: Any) -> list[str]:
    if isinstance(payload, str):
        return [payload]
    if isinstance(payload, dict):
        return [s for item in payload.values() for s in _strings_in(item)]
    if isinstance(payload, list):
        return [s for item in payload for s in _strings_in(item)]
    return []
