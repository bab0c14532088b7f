"""The one interface a source implements, and the context it is given."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Protocol, TypeVar
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel

from collector.adapters.http import HttpClient
from collector.errors import RateLimited, SourceError
from collector.models import SectionIssue
from collector.ratelimit import BudgetExhausted, RateBudget
from collector.secrets import WithSecrets

SnapshotT_co = TypeVar("SnapshotT_co", covariant=True)
Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class SourceContext:
    """What a source may touch: its HTTP client, the clock, a logger and the account it polls.

    `interval_s` is the interval the runner polls this target at (the schedule's); a source uses it to tell a
    gap in its record from a normal poll. The default (the schedule's default) serves contexts built in tests.
    """

    http: HttpClient
    clock: Clock
    log: logging.Logger
    target: str
    coin: str
    interval_s: float = 60.0


T = TypeVar("T")


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or "@" in parts.netloc or value != value.strip():
        raise ValueError("must be an http:// or https:// URL, without a user or password in it")
    return value


HttpUrl = Annotated[str, AfterValidator(_http_url)]


def credential_budget_key(kind: str, credential: str | None) -> str:
    """A rate-budget scope for one credential; the credential is hashed, never kept in the key."""
    return f"{kind}:credential:" + hashlib.sha256((credential or "").encode()).hexdigest()[:16]


def host_budget_key(kind: str, base_url: str) -> str:
    """A rate-budget scope for one API host (pools that limit per IP)."""
    return f"{kind}:host:" + (urlsplit(base_url).netloc or base_url)


class PoolSourceSettings(WithSecrets):
    """What every pool account's settings have: the pool API's root, overridable to point at the simulator."""

    base_url: HttpUrl


class SectionCollector:
    """Fetches the optional sections of a poll: a failure becomes a `SectionIssue`, not a failed poll.

    A 429 from the pool still fails the whole poll: the runner backs off, and asking the other endpoints of
    the same pool would only dig deeper. Our own budget running out mid-poll is just a missing section.
    """

    def __init__(self) -> None:
        self.issues: list[SectionIssue] = []
        self.errors: list[SourceError] = []

    def failed(self, *sections: str) -> bool:
        """Whether any of the named sections failed in this poll."""
        return any(issue.section in sections for issue in self.issues)

    def fetch(self, section: str, fetch: Callable[[], T]) -> T | None:
        """Return `fetch()`, or None (the section is missing) after recording why it failed."""
        try:
            return fetch()
        except RateLimited as exc:
            if not isinstance(exc, BudgetExhausted):
                raise
            self.issues.append(SectionIssue(section, exc.kind, str(exc)))
            self.errors.append(exc)
            return None
        except SourceError as exc:
            self.issues.append(SectionIssue(section, exc.kind, str(exc)))
            self.errors.append(exc)
            return None


class Source(Protocol[SnapshotT_co]):
    """A source of one normalized snapshot per poll.

    Args:
        settings: an instance of `settings_model`, validated at start-up without network.
        ctx: the injected dependencies.

    `collect()` fetches and normalizes; it raises `SourceError` subclasses and never sleeps, never writes to a
    sink, and never turns a failure into zeros.
    """

    kind: ClassVar[str]
    settings_model: ClassVar[type[BaseModel]]
    default_budget: ClassVar[RateBudget]

    # Each source takes its own settings model; `Any` keeps the protocol satisfiable by all of them.
    def __init__(self, settings: Any, ctx: SourceContext) -> None: ...

    def collect(self) -> SnapshotT_co: ...

    @staticmethod
    def budget_key(settings: Any) -> str:
        """Name the scope the pool's rate limit applies to (a credential or a host) for this account."""
        ...

    @staticmethod
    def requests_per_poll(settings: Any) -> int:
        """How many requests one `collect()` makes, so the config check can warn about unmeetable intervals."""
        ...
