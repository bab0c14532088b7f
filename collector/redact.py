"""Keep secrets out of every string that leaves the process: logs, exceptions, metrics, `--print`."""

from __future__ import annotations

import logging
import threading
from urllib.parse import quote

REDACTED = "***"


class Redactor:
    """Replaces every registered secret in a text with `***`."""

    def __init__(self) -> None:
        self._secrets: tuple[str, ...] = ()
        self._lock = threading.Lock()

    def add(self, secret: str) -> None:
        """Register a secret; short strings are refused because redacting them would mangle ordinary text."""
        if len(secret) < 4:
            return
        # A secret in a URL path may appear percent-encoded; redact both spellings.
        spellings = {secret, quote(secret, safe="")}
        with self._lock:
            # Longest first so a secret that contains another is replaced whole.
            self._secrets = tuple(sorted({*self._secrets, *spellings}, key=len, reverse=True))

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text


class RedactingFilter(logging.Filter):
    """A logging filter that renders the message, redacts it, and drops the args."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self._redact = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self._redact(record.getMessage())
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = self._redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True
