"""The config loader fails only with ConfigError (or a per-file problem), whatever the input."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from snapshotd.config import load_config
from snapshotd.errors import ConfigError

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=25,
)
keys = st.sampled_from(
    [
        "provider",
        "id",
        "name",
        "api_token",
        "retain_last_snapshots",
        "retention",
        "schedule",
        "telegram",
        "webhook",
        "api_url",
        "healthcheck_url",
        "api_token_file",
    ]
)
server_blocks = st.dictionaries(keys, json_values, max_size=8)
documents = st.one_of(
    json_values,
    st.fixed_dictionaries({"digitalocean_droplet": server_blocks}),
    st.fixed_dictionaries({"hetzner_cloud_server": server_blocks}),
)
ini_text = st.lists(
    st.one_of(
        st.sampled_from(["[TIMING]", "[SCHEDULER]", "[TELEGRAM]", "[WEBHOOK]", "[LOGGING]", "[X]"]),
        st.builds(
            lambda k, v: f"{k} = {v}",
            st.sampled_from(
                [
                    "poll_interval",
                    "timezone",
                    "enabled",
                    "level",
                    "payload_success",
                    "max_concurrent_jobs",
                    "default_schedule",
                    "url",
                    "zzz",
                ]
            ),
            st.text(max_size=15).filter(lambda t: "\n" not in t and "\r" not in t),
        ),
        st.text(max_size=20),
    ),
    max_size=8,
).map("\n".join)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=documents, ini=ini_text)
def test_loader_raises_only_config_errors(document, ini) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "configs").mkdir()
        (root / "snapshots.config").write_text(ini, encoding="utf-8")
        (root / "configs" / "server.json").write_text(json.dumps(document), encoding="utf-8")
        try:
            loaded = load_config(str(root / "snapshots.config"), environ={})
        except ConfigError as exc:
            assert str(root / "snapshots.config") in str(exc) or "configs" in str(exc)
            return
        assert len(loaded.servers) + len(loaded.problems) == 1
        for problem in loaded.problems:
            assert "server.json" in problem.message
