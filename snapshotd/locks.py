"""Per-server ``flock`` locks, shared by the daemon and ``--once``.

The lock file is opened without truncation and is never unlinked: removing a
lock file another process may be about to lock is a classic race (the script
had it). The holder writes its PID only after the lock is held.
"""

from __future__ import annotations

import fcntl
import os
import re
from pathlib import Path
from types import TracebackType


class ServerLock:
    def __init__(self, directory: Path, server_key: str) -> None:
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", server_key.replace(":", "-"))
        self.path = directory / f"{safe}.lock"
        self._fd: int | None = None

    def acquire(self) -> bool:
        """Take the lock without waiting; False when another process holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> ServerLock:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()
