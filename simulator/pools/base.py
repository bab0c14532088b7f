"""What the HTTP server and the pool renderers exchange: a parsed request, a route, a response, money formats."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from simulator import truth
from simulator.scenario import Account, Scenario

SATS_PER_BTC = 100_000_000
RETRY_AFTER_S = 30


@dataclass(frozen=True, slots=True)
class Request:
    """A request: path without the query string, query parameters, headers keyed in lower case, and the body."""

    path: str
    query: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    method: str = "GET"
    body: bytes = b""


@dataclass(frozen=True, slots=True)
class Route:
    """A request matched to one endpoint; `account` is None when the credential is unknown."""

    endpoint: str
    account: Account | None
    request: Request
    coin: str = "btc"


@dataclass(frozen=True, slots=True)
class Response:
    """Status, body bytes, content type and extra headers."""

    status: int
    body: bytes
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()


class PoolApi(Protocol):
    """One simulated pool API: claims its paths, renders its endpoints and its error bodies."""

    def route(self, request: Request) -> Route | None:
        """The endpoint and account for `request`, or None if the path is not this pool's."""
        ...

    def render(self, route: Route, t: int) -> Response:
        """The endpoint's response for an authenticated route at unix time `t`."""
        ...

    def auth_error(self) -> Response:
        """What this pool answers to a missing or wrong credential."""
        ...

    def rate_limited(self) -> Response:
        """What this pool answers when the caller is over its request budget."""
        ...


def accounts_by_secret(scenario: Scenario, pool: str) -> dict[str, Account]:
    """The pool's accounts keyed by their token / API key."""
    return {a.secret: a for a in scenario.accounts if a.pool == pool}


def json_response(payload: Any, status: int = 200, headers: tuple[tuple[str, str], ...] = ()) -> Response:
    """A compact JSON response (compact like the real pools; key order as built)."""
    body = json.dumps(payload, separators=(",", ":"), allow_nan=False).encode()
    return Response(status=status, body=body, content_type="application/json", headers=headers)


def text_response(text: str, status: int, headers: tuple[tuple[str, str], ...] = ()) -> Response:
    """A text/plain response."""
    return Response(status=status, body=text.encode(), content_type="text/plain; charset=utf-8", headers=headers)


def btc_string(sats: int) -> str:
    """Satoshis as a BTC decimal string with 8 decimals ("0.00021038"), exactly, as Braiins sends amounts."""
    sign = "-" if sats < 0 else ""
    whole, frac = divmod(abs(sats), SATS_PER_BTC)
    return f"{sign}{whole}.{frac:08d}"


def btc_float(sats: int) -> float:
    """Satoshis as a BTC float (EMCD); a correctly rounded division, so repr() shows at most 8 decimals."""
    return sats / SATS_PER_BTC


@dataclass(frozen=True, slots=True)
class HistoryBin:
    """One bin of an account's hashrate history as a pool keeps it: [start, start + length), the mean H/s."""

    start: int
    length: int
    hashrate_hs: float


def history_bins(scenario: Scenario, account: Account, t: int, length: int, count: int) -> list[HistoryBin]:
    """The last `count` complete bins of `length` s before `t` (aligned to multiples of `length`), oldest first.

    The pool keeps mining while its API is down, so bins inside a fault window are reported like any other;
    it has no record before the scenario's history start, so bins before it are not reported at all.
    """
    newest = t // length * length - length
    starts = [newest - k * length for k in range(max(0, count))]
    return [
        HistoryBin(start, length, truth.account_hashes(scenario, account, start, start + length) / length)
        for start in reversed(starts)
        if start >= scenario.history_start_ts
    ]
