"""The error types that cross module boundaries.

Each boundary has one type, and each message is written for the operator who
reads it at 6 a.m.: it names the file, key or server, and says what to do.
"""

from __future__ import annotations

from pathlib import Path


class SnapshotdError(Exception):
    """Base class for every error snapshotd raises on purpose."""


class ConfigError(SnapshotdError):
    """A configuration problem, naming the file and (where known) the key."""

    def __init__(
        self, message: str, *, file: Path | str | None = None, key: str | None = None
    ) -> None:
        self.file = str(file) if file is not None else None
        self.key = key
        self.reason = message
        where = self.file or ""
        if key:
            where = f"{where}: key '{key}'" if where else f"key '{key}'"
        super().__init__(f"{where}: {message}" if where else message)


class ProviderError(SnapshotdError):
    """A failed call to a cloud provider.

    ``code`` is the provider's own error id (DigitalOcean ``id``, Hetzner
    ``error.code``); callers branch on it, never on the message text.
    ``ambiguous`` marks a write whose outcome is unknown (timeout or reset after
    the request was sent): the caller must look before re-sending.
    """

    def __init__(
        self,
        provider: str,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        retryable: bool = False,
        ambiguous: bool = False,
    ) -> None:
        self.provider = provider
        self.status = status
        self.code = code
        self.message = message
        self.retryable = retryable
        self.ambiguous = ambiguous
        super().__init__(message)


class LockedError(SnapshotdError):
    """Another run holds the lock for this server."""
