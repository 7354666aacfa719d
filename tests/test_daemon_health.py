"""The watchdog is only fed while the scheduler thread really answers."""

from __future__ import annotations

from pathlib import Path

from conftest import write_minimal_config

from snapshotd.config import load_config
from snapshotd.daemon import Daemon
from snapshotd.redact import Redactor


class RecordingNotify:
    def __init__(self) -> None:
        self.sent: list[str] = []

    def send(self, *lines: str) -> None:
        self.sent.append("\n".join(lines))

    def status(self, text: str) -> None:
        self.send(f"STATUS={text}")


def test_a_wedged_scheduler_fails_the_liveness_probe(tmp_path: Path) -> None:
    main = write_minimal_config(tmp_path, "[SCHEDULER]\ntimezone = UTC\n", schedule="0 0 1 1 *")
    loaded = load_config(str(main), environ={})
    daemon = Daemon(lambda: loaded, loaded, Redactor(), notify=RecordingNotify())  # type: ignore[arg-type]
    daemon.scheduler.start()
    try:
        daemon._apply(loaded)
        assert daemon.scheduler_alive()
        with daemon.scheduler._jobstores_lock:  # the scheduler loop cannot take jobs now
            assert not daemon.scheduler_alive()
        assert daemon.scheduler_alive()
    finally:
        daemon.scheduler.shutdown(wait=False)
    assert not daemon.scheduler_alive()  # a stopped scheduler thread is not alive
