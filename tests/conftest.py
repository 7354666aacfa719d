"""Shared fixtures: the simulator, a workspace that runs the real snapshotd process, leak checks.

Every test that starts snapshotd registers what it captured (stdout, stderr,
log files, notification bodies) and the secrets it configured; each test
checks its own outputs, and ``test_zz_secret_sweep`` checks all of them again
at the end of the run.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from snapshotd.simulator import Simulator

REPO = Path(__file__).resolve().parents[1]
SPECS = REPO.parent / "shared" / "specs"
SAMPLES = Path(__file__).resolve().parent / "fixtures" / "script-samples"

# Test secrets: long and distinctive, so a leaked 6-character piece is detectable.
DO_TOKEN = "dop_v1_Qx7Vb2Kp9Lm4Zr8Tn1Wc6Yh3Js5Fd0Ag"
HZ_TOKEN = "Hq3Rz8Wm2Kx7Pv5Nt9Lb4Jc6Fg1Dy0Se"
BOT_TOKEN = "987654321:AAQm8Zt3Xr7Vw2Kp5Ny9Lj4Hb6Gc1"
WEBHOOK_SECRET = "Wz5Kq8Xm3Rv7Tp2Ny6Lh9Jb4Fc1Gd0"

CAPTURED: list[tuple[str, str]] = []  # (where, text) from every run in this session
SECRETS: set[str] = {DO_TOKEN, HZ_TOKEN, BOT_TOKEN, WEBHOOK_SECRET}


def leaked_pieces(text: str, secrets: set[str], size: int = 6) -> list[str]:
    """Every ``size``-character piece of a secret that appears in ``text``."""
    found = []
    for secret in secrets:
        for start in range(len(secret) - size + 1):
            piece = secret[start : start + size]
            if piece in text:
                found.append(piece)
    return found


def assert_no_leak(where: str, text: str) -> None:
    pieces = leaked_pieces(text, SECRETS)
    assert not pieces, f"secret material leaked in {where}: {sorted(set(pieces))[:3]}"


def write_minimal_config(root: Path, ini: str = "", **block: Any) -> Path:
    """A main file and one DigitalOcean server file (web, id 1); ``block`` overrides keys."""
    (root / "configs").mkdir(exist_ok=True)
    (root / "snapshots.config").write_text(ini, encoding="utf-8")
    server = {
        "provider": "digitalocean",
        "id": 1,
        "name": "web",
        "api_token": "tok_000000",
        "retain_last_snapshots": 1,
        **block,
    }
    path = root / "configs" / "web.json"
    path.write_text(json.dumps({"digitalocean_droplet": server}), encoding="utf-8")
    path.chmod(0o600)
    return root / "snapshots.config"


@pytest.fixture
def sim() -> Iterator[Simulator]:
    simulator = Simulator(snapshot_seconds=0.3).start()
    try:
        yield simulator
    finally:
        for delivery in simulator.deliveries:
            CAPTURED.append(
                (f"notification {delivery.path}", delivery.body.decode(errors="replace"))
            )
        simulator.stop()


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str

    def lines(self) -> list[str]:
        return self.stdout.splitlines()


@dataclass
class Workspace:
    """A folder with snapshots.config and configs/, wired to a simulator."""

    root: Path
    sim: Simulator
    ini: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def config_path(self) -> Path:
        return self.root / "snapshots.config"

    @property
    def configs(self) -> Path:
        return self.root / "configs"

    def write_ini(self, **sections: dict[str, Any]) -> None:
        merged: dict[str, dict[str, str]] = {
            "TIMING": {
                "poll_interval": "0.1",
                "poll_interval_max": "0.3",
                "snapshot_creation_timeout": "20",
            },
            "TELEGRAM": {"api_url": self.sim.telegram_url},
            "SCHEDULER": {"timezone": "UTC"},
        }
        for name, values in sections.items():
            merged.setdefault(name, {}).update({k: str(v) for k, v in values.items()})
        self.ini = merged
        text = "".join(
            f"[{name}]\n" + "".join(f"{k} = {v}\n" for k, v in values.items())
            for name, values in merged.items()
        )
        self.config_path.write_text(text, encoding="utf-8")
        self.config_path.chmod(0o600)

    def add_server(
        self,
        provider: str,
        server_id: int,
        name: str,
        file_name: str | None = None,
        **extra: Any,
    ) -> Path:
        top = "digitalocean_droplet" if provider == "digitalocean" else "hetzner_cloud_server"
        token = DO_TOKEN if provider == "digitalocean" else HZ_TOKEN
        block: dict[str, Any] = {
            "provider": provider,
            "id": server_id,
            "name": name,
            "api_token": token,
            "retain_last_snapshots": 3,
            "api_url": self.sim.api_url(provider),
        }
        block.update(extra)
        path = self.configs / (file_name or f"{name}.json")
        path.write_text(json.dumps({top: block}, indent=2), encoding="utf-8")
        path.chmod(0o600)
        return path

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("NOTIFY_", "WATCHDOG_"))}
        env.pop("SNAPSHOTD_CONFIG", None)
        env.update(extra)
        return env

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "snapshotd", "--config", str(self.config_path), *args]

    def run(self, *args: str, timeout: float = 60, **env: str) -> Run:
        done = subprocess.run(
            self.command(*args),
            cwd=self.root,
            env=self.env(**env),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        run = Run(done.returncode, done.stdout, done.stderr)
        self.capture(run.stdout, run.stderr)
        return run

    def start(self, *args: str, **env: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.command(*args),
            cwd=self.root,
            env=self.env(**env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def finish(
        self, process: subprocess.Popen[str], sig: int = signal.SIGTERM, timeout: float = 30
    ) -> Run:
        if process.poll() is None:
            process.send_signal(sig)
        stdout, stderr = process.communicate(timeout=timeout)
        self.capture(stdout, stderr)
        return Run(process.returncode, stdout, stderr)

    def capture(self, stdout: str, stderr: str) -> None:
        outputs = [("stdout", stdout), ("stderr", stderr)]
        logs = self.root / "logs"
        if logs.is_dir():
            for path in logs.glob("*.log*"):
                outputs.append((str(path), path.read_text(encoding="utf-8", errors="replace")))
        for delivery in self.sim.deliveries:
            outputs.append(
                (f"notification {delivery.path}", delivery.body.decode(errors="replace"))
            )
        for where, text in outputs:
            CAPTURED.append((where, text))
            assert_no_leak(where, text)

    def log_records(self) -> list[dict[str, Any]]:
        path = self.root / "logs" / "snapshots.log"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture
def workspace(tmp_path: Path, sim: Simulator) -> Workspace:
    (tmp_path / "configs").mkdir()
    space = Workspace(tmp_path, sim)
    space.write_ini()
    return space


class NotifySocket:
    """An AF_UNIX datagram socket standing in for systemd's NOTIFY_SOCKET."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.messages: list[tuple[float, str]] = []

    def wait_for(self, predicate: Any, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        for _, message in self.messages:
            if predicate(message):
                return message
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                message = self.sock.recv(65536).decode("latin-1")
            except TimeoutError:
                break
            self.messages.append((time.monotonic(), message))
            if predicate(message):
                return message
        raise AssertionError(f"no matching notify message within {timeout}s: {self.messages[-5:]}")

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[NotifySocket]:
    listener = NotifySocket(tmp_path / "notify.sock")
    try:
        yield listener
    finally:
        listener.close()
