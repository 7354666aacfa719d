"""Time as a dependency, so tests and the simulator can control it."""

from __future__ import annotations

import time
from datetime import datetime, timezone


class Clock:
    """Wall time (aware UTC), monotonic time and sleeping, in one injectable object."""

    def now(self) -> datetime:
        return datetime.now(timezone.utc)

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)
