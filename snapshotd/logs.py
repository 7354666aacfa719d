"""Logging: JSON lines to the log file, readable lines to stderr, one redaction filter on both.

A log file that cannot be opened or written (permissions, a full disk) never
fails a job: the file handler steps aside, says so once on stderr, and stderr
carries on.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path

from pythonjsonlogger.json import JsonFormatter

from snapshotd.redact import RedactingFilter, Redactor

LOGGER_NAME = "snapshotd"
JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s"
STDERR_FORMAT = "%(asctime)s %(levelname)-7s %(message)s"


class SafeRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """A rotating file handler that gives up quietly (once) instead of raising."""

    failed = False

    def handleError(self, record: logging.LogRecord) -> None:
        if not self.failed:
            self.failed = True
            sys.stderr.write(
                f"snapshotd: WARNING: cannot write the log file {self.baseFilename}; "
                "logging to stderr only\n"
            )

    def emit(self, record: logging.LogRecord) -> None:
        if not self.failed:
            super().emit(record)


def setup_logging(
    redactor: Redactor,
    *,
    log_path: Path | None,
    file_level: str = "DEBUG",
    verbose: bool = False,
    max_bytes: int = 5 * 1024 * 1024,
    backup_count: int = 5,
) -> logging.Logger:
    """Configure the ``snapshotd`` logger; safe to call again (handlers are replaced)."""
    logger = logging.getLogger(LOGGER_NAME)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    redaction = RedactingFilter(redactor)

    stderr = logging.StreamHandler(sys.stderr)
    stderr.setLevel(logging.DEBUG if verbose else logging.INFO)
    stderr.setFormatter(logging.Formatter(STDERR_FORMAT, datefmt="%Y-%m-%d %H:%M:%S"))
    stderr.addFilter(redaction)
    logger.addHandler(stderr)

    if log_path is not None:
        try:
            log_path.parent.mkdir(parents=True, exist_ok=True)
            handler = SafeRotatingFileHandler(
                log_path, maxBytes=max_bytes, backupCount=backup_count, encoding="utf-8"
            )
        except OSError as exc:
            logger.warning(
                "cannot open the log file %s (%s); logging to stderr only", log_path, exc.strerror
            )
        else:
            handler.setLevel(file_level)
            handler.setFormatter(
                JsonFormatter(JSON_FIELDS, rename_fields={"levelname": "level", "asctime": "time"})
            )
            handler.addFilter(redaction)
            logger.addHandler(handler)
    return logger
