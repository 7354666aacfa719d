"""The one place where secrets are masked.

A :class:`Redactor` knows every configured secret (API tokens, bot tokens,
webhook secrets, health-check URLs) and a few shapes that carry secrets even
when they were never configured (``Bearer …``, Telegram's ``bot<token>/``,
URL user-info). Logging uses :class:`RedactingFilter`; error texts call
:meth:`Redactor.redact` directly.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable

MASK = "***"
_MIN_SECRET_LENGTH = 4

_SHAPES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?i)(bearer\s+)[^\s\"',;]+"), r"\1" + MASK),
    (re.compile(r"(/bot)[^/\s\"']+(/)"), r"\1" + MASK + r"\2"),
    (re.compile(r"(\b[a-z][a-z0-9+.-]*://)[^/\s@\"']+@"), r"\1" + MASK + "@"),
    (re.compile(r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?)[^\s\"',}]+"), r"\1" + MASK),
)


class Redactor:
    """Masks known secrets and secret-shaped text. Safe to share between threads."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._secrets: frozenset[str] = frozenset()
        self._pattern: re.Pattern[str] | None = None
        self.replace(secrets)

    def replace(self, secrets: Iterable[str]) -> None:
        """Swap the set of known secrets (used when the configuration is reloaded)."""
        cleaned = frozenset(
            s for s in (str(x).strip() for x in secrets) if len(s) >= _MIN_SECRET_LENGTH
        )
        ordered = sorted(cleaned, key=len, reverse=True)
        pattern = re.compile("|".join(re.escape(s) for s in ordered)) if ordered else None
        with self._lock:
            self._secrets = cleaned
            self._pattern = pattern

    def add(self, secrets: Iterable[str]) -> None:
        self.replace([*self._secrets, *secrets])

    def redact(self, text: object) -> str:
        out = str(text)
        with self._lock:
            pattern = self._pattern
        if pattern is not None:
            out = pattern.sub(MASK, out)
        for shape, replacement in _SHAPES:
            out = shape.sub(replacement, out)
        return out


class RedactingFilter(logging.Filter):
    """Applied to every handler: masks the message, its args and exception text."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.redactor.redact(record.getMessage())
        record.args = None
        if record.exc_info:
            formatted = logging.Formatter().formatException(record.exc_info)
            record.exc_text = self.redactor.redact(formatted)
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = self.redactor.redact(record.exc_text)
        for key, value in list(vars(record).items()):
            if key in _EXTRA_FIELDS and isinstance(value, str):
                setattr(record, key, self.redactor.redact(value))
        return True


# Structured fields that may carry provider text (error bodies, messages).
_EXTRA_FIELDS = frozenset({"error", "server", "snapshot", "detail", "body", "url"})
