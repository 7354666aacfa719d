"""The command line: --check, --version, python -m, argument errors, --demo."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from conftest import SAMPLES, Workspace, assert_no_leak

from snapshotd import __version__


def snapshotd(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "snapshotd", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert_no_leak("cli stdout", done.stdout)
    assert_no_leak("cli stderr", done.stderr)
    return done


def test_check_prints_the_table_for_the_script_samples(tmp_path: Path) -> None:
    shutil.copy(SAMPLES / "snapshots.config.sample", tmp_path / "snapshots.config.sample")
    shutil.copytree(SAMPLES / "configs", tmp_path / "configs")
    done = snapshotd("--check", "--config", "snapshots.config.sample", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert f"Main config:  {tmp_path / 'snapshots.config.sample'}" in out
    header = next(line for line in out.splitlines() if line.startswith("SERVER"))
    for column in ("PROVIDER", "ID", "RETENTION", "SCHEDULE", "NEXT RUNS", "NOTIFY"):
        assert column in header
    assert "your-hetzner-cloud-server-name-2  hetzner" in out
    assert "last 3" in out and "at 06:00 every day (0 6 * * *)" in out
    assert out.count("your-digitalocean-droplet-name-1") == 1
    assert "delay_between_servers is accepted but has no effect" in out
    assert "4 server(s) valid, 0 invalid: configuration OK" in out
    assert "your_digitalocean_api_token_1" not in out  # tokens never shown


def test_check_masks_secrets_and_shows_targets(workspace: Workspace) -> None:
    workspace.add_server(
        "digitalocean",
        1001,
        "web",
        telegram={"enabled": True, "bot_token": "55:AAsecretsecretsecret", "chat_id": 77},
        webhook={
            "enabled": True,
            "url": "https://hooks.example/secret-path?token=abc",
            "secret": "k1k2k3k4",
        },
        healthcheck_url="https://hc-ping.example/uuid-uuid-uuid",
    )
    run = workspace.run("--check")
    assert run.code == 0
    assert "telegram chat 77 (bot ***)" in run.stdout
    assert "webhook https://hooks.example/***, signed" in run.stdout
    assert "ping https://hc-ping.example/***" in run.stdout
    for secret in ("AAsecretsecretsecret", "secret-path", "k1k2k3k4", "uuid-uuid"):
        assert secret not in run.stdout


def test_check_exits_1_on_any_invalid_file(workspace: Workspace) -> None:
    workspace.add_server("digitalocean", 1001, "web")
    (workspace.configs / "bad.json").write_text("{}")
    run = workspace.run("--check")
    assert run.code == 1
    assert "ERROR:" in run.stdout and "bad.json" in run.stdout
    assert "1 server(s) valid, 1 invalid: configuration has errors" in run.stdout


def test_check_online_verifies_tokens_and_names(workspace: Workspace) -> None:
    from conftest import DO_TOKEN

    workspace.sim.cloud.add_server("digitalocean", DO_TOKEN, 1001, "web-prod")
    workspace.add_server("digitalocean", 1001, "web")
    workspace.add_server("digitalocean", 1002, "gone")
    run = workspace.run("--check", "--online")
    assert run.code == 1
    assert "called 'web-prod' at the provider, not 'web'" in run.stdout
    assert "ONLINE ERROR: gone (digitalocean 1002)" in run.stdout
    assert {r.method for r in workspace.sim.cloud.requests()} == {"GET"}


def test_version_and_module_entry_point() -> None:
    done = snapshotd("--version")
    assert done.returncode == 0 and done.stdout.strip() == f"snapshotd {__version__}"
    script = shutil.which("snapshotd", path=str(Path(sys.executable).parent))
    assert script is not None
    same = subprocess.run([script, "--version"], capture_output=True, text=True, timeout=30)
    assert same.stdout == done.stdout


def test_argument_mistakes_are_usage_errors() -> None:
    assert snapshotd("--check", "web.json").returncode == 2
    assert snapshotd("--once", "--check").returncode == 2
    assert snapshotd("--json").returncode == 2


def test_demo_runs_offline_and_explains_what_happened() -> None:
    done = snapshotd("--demo")
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert out.count("SUCCESS") == 4
    assert "created  web-" in out and "deleted  web-" in out
    assert "ignored  web-before-upgrade" in out and "delete-protected" in out
    assert "web2 (digitalocean 1003): 2 snapshots before, 2 after" in out
    assert "notified telegram: sent" in out
    assert "Demo finished: every server succeeded." in out
