"""Configuration loading: the script's files load unchanged; every bad input is named."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import SAMPLES

from snapshotd.config import load_config
from snapshotd.config.loader import find_main_config
from snapshotd.config.model import RetentionPolicy
from snapshotd.errors import ConfigError


def copy_samples(tmp_path: Path) -> Path:
    shutil.copy(SAMPLES / "snapshots.config.sample", tmp_path / "snapshots.config")
    shutil.copytree(SAMPLES / "configs", tmp_path / "configs")
    return tmp_path / "snapshots.config"


def write_server(folder: Path, name: str, block: dict, top: str = "digitalocean_droplet") -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text(json.dumps({top: block}), encoding="utf-8")
    path.chmod(0o600)
    return path


def base_block(**extra: object) -> dict:
    block = {
        "provider": "digitalocean",
        "id": 123,
        "name": "web",
        "api_token": "tok_abcdef123456",
        "retain_last_snapshots": 3,
    }
    block.update(extra)
    return block


def load_one(tmp_path: Path, block: dict, ini: str = "", top: str = "digitalocean_droplet"):
    (tmp_path / "snapshots.config").write_text(ini, encoding="utf-8")
    write_server(tmp_path / "configs", "server.json", block, top)
    return load_config(str(tmp_path / "snapshots.config"), environ={})


def only_problem(loaded) -> str:
    assert not loaded.servers, loaded.servers
    assert len(loaded.problems) == 1
    return loaded.problems[0].message


def test_script_samples_load_unchanged_with_documented_fallbacks(tmp_path: Path) -> None:
    loaded = load_config(str(copy_samples(tmp_path)), environ={})
    assert not loaded.problems
    assert [s.name for s in loaded.servers] == [
        "your-digitalocean-droplet-name-1",
        "your-digitalocean-droplet-name-2",
        "your-hetzner-cloud-server-name-1",
        "your-hetzner-cloud-server-name-2",
    ]
    settings = loaded.settings
    assert settings.configs_dir == tmp_path / "configs"
    assert settings.logs_dir == tmp_path / "logs"
    assert settings.log_file == "snapshots.log"
    assert settings.snapshot_creation_timeout == 900
    assert settings.log_max_bytes == 5242880 and settings.log_backup_count == 5
    assert settings.log_level == "DEBUG"
    assert settings.poll_interval == 5 and settings.poll_interval_max == 60
    assert settings.default_schedule.expression == "0 6 * * *"
    assert settings.max_concurrent_jobs == 4 and settings.catch_up is True
    server = loaded.servers[0]
    assert server.retention == RetentionPolicy(last=3)
    assert server.api_url == "https://api.digitalocean.com/v2"
    assert loaded.servers[2].api_url == "https://api.hetzner.cloud/v1"
    # The samples' credentials are placeholders: notifications resolve to "off", with a note.
    assert server.telegram is None and server.webhook is None
    assert any("bot_token and chat_id not set" in note for note in server.notes)
    assert any("delay_between_servers is accepted but has no effect" in w for w in loaded.warnings)


def test_missing_main_file_means_built_in_defaults(tmp_path: Path) -> None:
    write_server(tmp_path / "configs", "a.json", base_block())
    loaded = load_config(None, environ={}, cwd=tmp_path)
    assert loaded.settings.ini_path is None
    assert loaded.settings.configs_dir == tmp_path / "configs"
    assert loaded.servers[0].name == "web"


def test_main_file_discovery_order(tmp_path: Path) -> None:
    (tmp_path / "snapshots.config").write_text("")
    other = tmp_path / "other.config"
    other.write_text("")
    assert find_main_config(None, {}, tmp_path)[0] == tmp_path / "snapshots.config"
    assert find_main_config(None, {"SNAPSHOTD_CONFIG": str(other)}, tmp_path)[0] == other
    assert find_main_config(str(other), {"SNAPSHOTD_CONFIG": "nope"}, tmp_path)[0] == other
    with pytest.raises(ConfigError, match="does not exist"):
        find_main_config("missing.config", {}, tmp_path)


def test_relative_dirs_resolve_against_the_ini_folder_not_cwd(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "snapshots.config").write_text(
        "[DIRECTORIES]\nconfigs_dir = servers\nlogs_dir = ../var\n"
    )
    write_server(etc / "servers", "a.json", base_block())
    loaded = load_config(str(etc / "snapshots.config"), environ={}, cwd=tmp_path)
    assert loaded.settings.configs_dir == etc / "servers"
    assert loaded.settings.logs_dir == etc / "../var"
    assert loaded.settings.state_dir == etc / "../var"


def test_state_dir_defaults_to_systemd_state_directory(tmp_path: Path) -> None:
    (tmp_path / "snapshots.config").write_text("")
    write_server(tmp_path / "configs", "a.json", base_block())
    loaded = load_config(
        str(tmp_path / "snapshots.config"),
        environ={"STATE_DIRECTORY": "/var/lib/snapshotd", "LOGS_DIRECTORY": "/var/log/snapshotd"},
    )
    assert loaded.settings.state_dir == Path("/var/lib/snapshotd")
    assert loaded.settings.logs_dir == Path("/var/log/snapshotd")


def test_percent_signs_newlines_and_non_ascii_survive_the_ini(tmp_path: Path) -> None:
    ini = (
        "[TELEGRAM]\nbot_token = 1:abc%20def\nchat_id = -1001234\n"
        "message_success = *Sauvegarde réussie* ✓\\nServeur: `{server_name}` 100%\n"
        "[WEBHOOK]\nenabled = true\nurl = https://hooks.example/a%2Fb?x=1\n"
        'payload_success = {"text": "Größe {total_snapshots}\\nok"}\n'
    )
    loaded = load_one(tmp_path, base_block(), ini)
    server = loaded.servers[0]
    assert server.telegram is not None
    assert server.telegram.bot_token == "1:abc%20def"
    assert server.telegram.chat_id == "-1001234"
    assert server.telegram.message_success == (
        "*Sauvegarde réussie* ✓\nServeur: `{server_name}` 100%"
    )
    assert server.webhook is not None
    assert server.webhook.endpoints[0].url == "https://hooks.example/a%2Fb?x=1"
    assert server.webhook.payload_success == {"text": "Größe {total_snapshots}\nok"}


def test_per_server_settings_override_ini_fallbacks(tmp_path: Path) -> None:
    ini = "[TELEGRAM]\nbot_token = 1:global\nchat_id = 111\nmessage_success = global {status}\n"
    block = base_block(telegram={"chat_id": 222, "message_failure": "own {error}"})
    server = load_one(tmp_path, block, ini).servers[0]
    assert server.telegram is not None
    assert server.telegram.bot_token == "1:global"  # fallback
    assert server.telegram.chat_id == "222"  # numeric id from JSON works
    assert server.telegram.message_success == "global {status}"
    assert server.telegram.message_failure == "own {error}"


@pytest.mark.parametrize(
    ("ini_enabled", "server_enabled", "expected_on"),
    [
        ("true", None, True),
        ("false", None, False),
        ("false", True, True),
        ("true", False, False),
    ],
)
def test_enabled_is_three_state(tmp_path: Path, ini_enabled, server_enabled, expected_on) -> None:
    ini = f"[TELEGRAM]\nenabled = {ini_enabled}\nbot_token = 1:tok\nchat_id = 5\n"
    telegram = {} if server_enabled is None else {"enabled": server_enabled}
    server = load_one(tmp_path, base_block(telegram=telegram), ini).servers[0]
    assert (server.telegram is not None) is expected_on


def test_placeholders_count_as_unset(tmp_path: Path) -> None:
    ini = "[TELEGRAM]\nbot_token = 1:real\nchat_id = 5\n"
    block = base_block(
        telegram={"enabled": True, "bot_token": "your_telegram_bot_token_here"},
        webhook={"enabled": True, "url": "https://your-webhook-url.com/notify"},
    )
    server = load_one(tmp_path, block, ini).servers[0]
    assert server.telegram is not None and server.telegram.bot_token == "1:real"
    assert server.webhook is None
    assert "webhook enabled but url not set: skipped" in server.notes


def test_webhook_url_list_and_per_target_secret(tmp_path: Path) -> None:
    block = base_block(
        webhook={
            "enabled": True,
            "secret": "shared-secret",
            "url": ["https://a.example/hook", {"url": "https://b.example/x", "secret": "own"}],
        }
    )
    server = load_one(tmp_path, block).servers[0]
    assert server.webhook is not None
    assert [(e.url, e.secret) for e in server.webhook.endpoints] == [
        ("https://a.example/hook", "shared-secret"),
        ("https://b.example/x", "own"),
    ]


def test_gfs_retention_and_schedule(tmp_path: Path) -> None:
    block = base_block(retention={"daily": 7, "weekly": 4}, schedule="30 2 * * sun")
    server = load_one(tmp_path, block).servers[0]
    assert server.retention == RetentionPolicy(last=3, daily=7, weekly=4)
    assert server.schedule.expression == "30 2 * * sun"


def test_token_from_credentials_directory_env_and_file(tmp_path: Path) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "do-token").write_text("tok_from_credentials\n")
    (creds / "do-token").chmod(0o600)
    (tmp_path / "snapshots.config").write_text("")
    block = base_block()
    del block["api_token"]
    write_server(tmp_path / "configs", "a.json", {**block, "api_token_file": "do-token"})
    write_server(tmp_path / "configs", "b.json", {**block, "id": 2, "api_token_env": "MY_DO_TOKEN"})
    loaded = load_config(
        str(tmp_path / "snapshots.config"),
        environ={"CREDENTIALS_DIRECTORY": str(creds), "MY_DO_TOKEN": "tok_from_env"},
    )
    assert [s.api_token for s in loaded.servers] == ["tok_from_credentials", "tok_from_env"]


def test_unknown_keys_warn_with_a_suggestion(tmp_path: Path) -> None:
    loaded = load_one(tmp_path, base_block(retain_last_snapshot=3), "[TELEGRAM]\ntimout = 5\n")
    assert loaded.servers
    joined = "\n".join(loaded.warnings)
    assert "unknown key 'digitalocean_droplet.retain_last_snapshot'" in joined
    assert "did you mean 'retain_last_snapshots'?" in joined
    assert "unknown key 'timout' in [TELEGRAM] is ignored; did you mean 'timeout'?" in joined


def test_secret_file_readable_by_others_warns_with_chmod(tmp_path: Path) -> None:
    (tmp_path / "snapshots.config").write_text("")
    path = write_server(tmp_path / "configs", "a.json", base_block())
    path.chmod(0o644)
    loaded = load_config(str(tmp_path / "snapshots.config"), environ={})
    assert any(f"chmod 600 {path}" in w for w in loaded.warnings)


def test_unknown_placeholder_warns(tmp_path: Path) -> None:
    block = base_block(
        telegram={"enabled": True, "bot_token": "1:x", "chat_id": 1, "message_success": "{nope}"}
    )
    loaded = load_one(tmp_path, block)
    assert any("unknown placeholder {nope} is sent as written" in w for w in loaded.warnings)


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ("{not json", "invalid JSON at line 1, column 2"),
        ({"digitalocean_droplet": {**base_block(), "provider": "aws"}}, 'unknown provider "aws"'),
        (
            {"digitalocean_droplet": {k: v for k, v in base_block().items() if k != "id"}},
            "key 'digitalocean_droplet.id': missing required field",
        ),
        (
            {"digitalocean_droplet": {**base_block(), "provider": "hetzner"}},
            "says 'hetzner' but the top-level key is 'digitalocean_droplet'",
        ),
        (
            {"digitalocean_droplet": {**base_block(), "retain_last_snapshots": 0}},
            "retain_last_snapshots': must be an integer >= 1, got 0",
        ),
        (
            {"digitalocean_droplet": {**base_block(), "retain_last_snapshots": "three"}},
            'must be an integer >= 1, got "three"',
        ),
        (
            {"digitalocean_droplet": {**base_block(), "name": "   "}},
            "name': must be a non-empty string",
        ),
        (
            {"digitalocean_droplet": {**base_block(), "name": "web/prod"}},
            "cannot form a snapshot name",
        ),
        (
            {"digitalocean_droplet": {**base_block(), "schedule": "0 6 * *"}},
            "schedule': '0 6 * *' has 4 fields",
        ),
        (
            {"digitalocean_droplet": {**base_block(), "schedule": "0 25 * * *"}},
            "bad hour field '25'",
        ),
        (
            {
                "digitalocean_droplet": {
                    **{k: v for k, v in base_block().items() if k != "api_token"},
                    "api_token_file": "/nonexistent/token",
                }
            },
            "api_token_file': cannot read the token file",
        ),
        ({"droplet": base_block()}, "needs a top-level key 'digitalocean_droplet'"),
        (
            {"digitalocean_droplet": {**base_block(), "telegram": {"enabled": "yes"}}},
            "telegram.enabled': must be true or false",
        ),
    ],
)
def test_bad_server_files_are_rejected_with_a_precise_message(
    tmp_path: Path, document: object, expected: str
) -> None:
    (tmp_path / "snapshots.config").write_text("")
    folder = tmp_path / "configs"
    folder.mkdir()
    path = folder / "bad.json"
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    write_server(folder, "good.json", base_block(id=999, name="good"))
    loaded = load_config(str(tmp_path / "snapshots.config"), environ={})
    assert [s.name for s in loaded.servers] == ["good"]  # isolation: the good one still loads
    assert len(loaded.problems) == 1
    message = loaded.problems[0].message
    assert str(path) in message
    assert expected in message


def test_duplicate_servers_in_two_files_are_rejected(tmp_path: Path) -> None:
    (tmp_path / "snapshots.config").write_text("")
    first = write_server(tmp_path / "configs", "a.json", base_block())
    write_server(tmp_path / "configs", "b.json", base_block(name="other"))
    loaded = load_config(str(tmp_path / "snapshots.config"), environ={})
    assert len(loaded.servers) == 1
    assert "duplicate server digitalocean id 123, already configured in" in only_problem_of(loaded)
    assert str(first) in only_problem_of(loaded)


def only_problem_of(loaded) -> str:
    assert len(loaded.problems) == 1
    return loaded.problems[0].message


@pytest.mark.parametrize(
    ("ini", "key", "expected"),
    [
        ("[SCHEDULER]\ntimezone = Mars/Olympus\n", "[SCHEDULER] timezone", "not an IANA time zone"),
        ("[SCHEDULER]\ndefault_schedule = every day\n", "[SCHEDULER] default_schedule", "fields"),
        (
            "[TIMING]\nsnapshot_creation_timeout = soon\n",
            "snapshot_creation_timeout",
            "not a number",
        ),
        (
            "[WEBHOOK]\npayload_success = {not json\n",
            "[WEBHOOK] payload_success",
            "not a JSON object",
        ),
        ("[LOGGING]\nlevel = LOUD\n", "[LOGGING] level", "not a log level"),
        ("[SCHEDULER]\ncatch_up = sometimes\n", "[SCHEDULER] catch_up", "not a boolean"),
        ("no section header\n", None, "not a valid INI file"),
    ],
)
def test_bad_main_file_values_name_file_and_key(tmp_path: Path, ini, key, expected) -> None:
    (tmp_path / "snapshots.config").write_text(ini)
    (tmp_path / "configs").mkdir()
    with pytest.raises(ConfigError) as caught:
        load_config(str(tmp_path / "snapshots.config"), environ={})
    message = str(caught.value)
    assert str(tmp_path / "snapshots.config") in message
    assert expected in message
    if key:
        assert key in message


def test_macos_resource_forks_and_samples_are_skipped(tmp_path: Path) -> None:
    (tmp_path / "snapshots.config").write_text("")
    write_server(tmp_path / "configs", "a.json", base_block())
    (tmp_path / "configs" / "._a.json").write_bytes(b"\x00\x05\x16\x07 binary")
    (tmp_path / "configs" / "b.json.sample").write_text("{}")
    loaded = load_config(str(tmp_path / "snapshots.config"), environ={})
    assert len(loaded.servers) == 1 and not loaded.problems


def test_missing_configs_directory_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "snapshots.config").write_text("[DIRECTORIES]\nconfigs_dir = nowhere\n")
    with pytest.raises(ConfigError, match="configs directory does not exist"):
        load_config(str(tmp_path / "snapshots.config"), environ={})
