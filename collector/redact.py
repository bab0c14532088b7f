"""Keep secrets out of every string that leaves the process: logs, exceptions, metrics, `--print`."""

from __future__ import annotations

import logging
import threading
from urllib.parse import quote

REDACTED = "***"
MIN_SECRET_LENGTH = 4
# Up to this many secrets, one `in` scan per secret is fastest; beyond it, one pass over the text with an
# index of the secrets' first characters (10,000 secrets: about 1 ms per 6 KB instead of 20 ms).
_SCAN_EACH_UP_TO = 32


class Redactor:
    """Replaces every registered secret in a text with `***`."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        self._lock = threading.Lock()
        self._ordered: tuple[str, ...] = ()
        self._by_prefix: dict[str, list[str]] = {}
        self._stale = False

    def add(self, secret: str) -> None:
        """Register a secret; strings under 4 characters are refused, redacting them would mangle ordinary text."""
        if len(secret) < MIN_SECRET_LENGTH:
            return
        # A secret in a URL path may appear percent-encoded; redact both spellings.
        spellings = {secret, quote(secret, safe="")}
        with self._lock:
            if not spellings <= self._secrets:
                self._secrets |= spellings
                self._stale = True

    def __call__(self, text: str) -> str:
        if self._stale:
            self._rebuild()
        ordered = self._ordered
        if len(ordered) <= _SCAN_EACH_UP_TO:
            found = {secret for secret in ordered if secret in text}
        else:
            found = self._found_by_prefix(text)
        # Longest first, so a secret that contains another is replaced whole.
        for secret in sorted(found, key=len, reverse=True):
            text = text.replace(secret, REDACTED)
        return text

    def _rebuild(self) -> None:
        with self._lock:
            self._ordered = tuple(sorted(self._secrets, key=len, reverse=True))
            by_prefix: dict[str, list[str]] = {}
            for secret in self._ordered:
                by_prefix.setdefault(secret[:MIN_SECRET_LENGTH], []).append(secret)
            self._by_prefix = by_prefix
            self._stale = False

    def _found_by_prefix(self, text: str) -> set[str]:
        by_prefix = self._by_prefix
        found: set[str] = set()
        for start in range(len(text) - MIN_SECRET_LENGTH + 1):
            candidates = by_prefix.get(text[start : start + MIN_SECRET_LENGTH])
            if candidates:
                found.update(secret for secret in candidates if text.startswith(secret, start))
        return found


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
