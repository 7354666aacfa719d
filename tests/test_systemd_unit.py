"""The shipped unit: the directives the daemon relies on, verify clean, exposure <= 1.5."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

UNIT = REPO / "systemd" / "snapshotd.service"
ANALYZE = shutil.which("systemd-analyze")


def directives() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith(("#", "[")):
            key, value = line.split("=", 1)
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def test_unit_has_what_the_daemon_relies_on() -> None:
    unit = directives()
    assert unit["Type"] == ["notify"] and unit["NotifyAccess"] == ["main"]
    assert unit["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert unit["Restart"] == ["on-failure"] and unit["RestartPreventExitStatus"] == ["78"]
    assert unit["ConfigurationDirectory"] == ["snapshotd"]
    assert unit["StateDirectory"] == ["snapshotd"] and unit["LogsDirectory"] == ["snapshotd"]
    assert int(unit["WatchdogSec"][0]) >= 10
    assert int(unit["TimeoutStopSec"][0]) > 600  # above the default stop_timeout
    assert re.search(r"^#LoadCredential=", UNIT.read_text(), re.M)


@pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed on this machine")
def test_unit_verifies_cleanly(tmp_path: Path) -> None:
    # verify checks that ExecStart exists, so point it at this environment's snapshotd
    installed = Path(sys.executable).parent / "snapshotd"
    copy = tmp_path / "snapshotd.service"
    copy.write_text(UNIT.read_text().replace("/usr/local/bin/snapshotd", str(installed)))
    done = subprocess.run(
        [ANALYZE, "verify", str(copy)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and done.stderr == "", done.stderr


@pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed on this machine")
def test_unit_exposure_score_is_at_most_1_5() -> None:
    done = subprocess.run(
        [ANALYZE, "security", "--offline=yes", str(UNIT)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    match = re.search(r"Overall exposure level for \S+: ([\d.]+)", done.stdout)
    assert match, done.stdout[-500:] + done.stderr
    assert float(match.group(1)) <= 1.5
