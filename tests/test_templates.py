"""Template rendering: pure, single-pass, escaping by Markdown context."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from snapshotd.notify.templates import (
    DEFAULT_FAILURE_MESSAGE,
    DEFAULT_SUCCESS_MESSAGE,
    PLACEHOLDER,
    VARIABLES,
    render_payload,
    render_telegram,
    render_text,
    truncate,
)
from snapshotd.simulator import markdown_problem

SCRIPT_TEMPLATE = (
    "*Snapshot Success*\nServer: `{server_name}`\nSnapshot: `{snapshot_name}`\n"
    "Total: `{total_snapshots}` snapshots"
)

values_strategy = st.fixed_dictionaries({name: st.text(max_size=30) for name in VARIABLES})


def test_known_placeholders_are_replaced_and_unknown_kept() -> None:
    text = render_text("{server_name} {nope} {status}", {"server_name": "web", "status": "SUCCESS"})
    assert text == "web {nope} SUCCESS"


def test_inserted_values_are_never_expanded_again() -> None:
    text = render_text("{server_name}/{status}", {"server_name": "{status}", "status": "OK"})
    assert text == "{status}/OK"


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.one_of(st.text(max_size=8), st.sampled_from(VARIABLES).map("{{{}}}".format))),
    values_strategy,
)
def test_rendering_inserts_each_value_once_and_never_re_expands(parts, values) -> None:
    template = "".join(parts)
    known = len(PLACEHOLDER.findall(template)) - len(
        [m for m in PLACEHOLDER.findall(template) if m not in VARIABLES]
    )
    # every value looks like a placeholder itself: a second pass would multiply the markers
    hostile = {name: "{" + name + "}\x01" for name in VARIABLES}
    rendered = render_text(template, hostile)
    assert rendered.count("\x01") == known + template.count("\x01")
    render_telegram(template, values)  # never raises


def test_payload_keys_are_untouched_and_values_cannot_break_json() -> None:
    payload = {"{server_name}": "{server_name}", "nested": ["{status}", 3, {"x": "{error}"}]}
    values = {"server_name": 'we"b}{', "status": "FAILURE", "error": "a\nb"}
    rendered = render_payload(payload, values)
    assert rendered == {"{server_name}": 'we"b}{', "nested": ["FAILURE", 3, {"x": "a\nb"}]}
    assert json.loads(json.dumps(rendered)) == rendered


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=40))
def test_any_server_name_yields_markdown_telegram_accepts(name) -> None:
    values = {v: "x" for v in VARIABLES} | {"server_name": name, "snapshot_name": name + "-1"}
    for template in (
        SCRIPT_TEMPLATE,
        DEFAULT_SUCCESS_MESSAGE,
        DEFAULT_FAILURE_MESSAGE,
        "_{server_name}_ *{server_name}* {server_name}",
    ):
        text = render_telegram(template, values)
        assert markdown_problem(text) is None, (template, name, text)


def test_underscores_in_plain_text_are_escaped_and_in_code_left_alone() -> None:
    values = {"server_name": "db_main_1"}
    assert render_telegram("Server {server_name}", values) == "Server db\\_main\\_1"
    assert render_telegram("Server `{server_name}`", values) == "Server `db_main_1`"


def test_long_messages_are_cut_with_an_ellipsis() -> None:
    text = render_telegram("{error}", {"error": "x" * 5000})
    assert len(text) == 4096 and text.endswith("…")
    assert truncate("short", 10) == "short"
