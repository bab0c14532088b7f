"""Typed errors: every failure a source or the config can produce has a class and a bounded kind."""

from __future__ import annotations


class MinewatchError(Exception):
    """Base of every error minewatch raises on purpose."""


class SourceError(MinewatchError):
    """A poll of one source failed; `kind` is the bounded reason used in metrics and `source_health`."""

    kind = "error"

    def __init__(self, message: str, *, target: str = "") -> None:
        super().__init__(message)
        self.target = target

    def __str__(self) -> str:
        message = super().__str__()
        return f"{self.target}: {message}" if self.target else message


class Unreachable(SourceError):
    """Connection refused, DNS failure, timeout, or a 5xx from the source."""

    kind = "unreachable"


class Timeout(Unreachable):
    """The source did not answer within the poll's deadline (connect, read, or the whole poll)."""

    kind = "timeout"


class ServerError(Unreachable):
    """The source answered with a 5xx: it is up but failing."""

    kind = "server_error"


class AuthFailed(SourceError):
    """The source rejected our credentials."""

    kind = "auth"


class RateLimited(SourceError):
    """The source (or our own budget for it) says: not now; try again after `retry_after` seconds."""

    kind = "rate_limited"

    def __init__(self, message: str, *, retry_after: float | None = None, target: str = "") -> None:
        super().__init__(message, target=target)
        self.retry_after = retry_after


class BadResponse(SourceError):
    """The response was malformed, truncated, too large, or did not match the documented schema."""

    kind = "bad_response"


class NoData(SourceError):
    """The source answered but holds nothing for this account (unknown coin, empty account)."""

    kind = "no_data"


SOURCE_ERROR_KINDS: tuple[str, ...] = tuple(
    cls.kind for cls in (Unreachable, Timeout, ServerError, AuthFailed, RateLimited, BadResponse, NoData)
)


class ConfigError(MinewatchError):
    """The configuration is invalid: names the file, the key path and the reason."""

    def __init__(self, file: str, key_path: str, reason: str) -> None:
        super().__init__(f"{file}: {key_path}: {reason}" if key_path else f"{file}: {reason}")
        self.file = file
        self.key_path = key_path
        self.reason = reason


class StorageError(MinewatchError):
    """InfluxDB refused or could not be reached for a write or a query.

    `status` is the HTTP status (None when no answer came back); `dropped` is how many of the request's points
    InfluxDB 1.x says it refused in a partial write (`dropped=N` in its error), None when it did not say.
    """

    def __init__(
        self, message: str, *, status: int | None = None, retryable: bool = True, dropped: int | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retryable = retryable
        self.dropped = dropped
