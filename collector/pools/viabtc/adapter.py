"""ViaBTC source: hashrate, account, workers, daily profit and payments of one account and coin (X-API-KEY)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, Field

from collector.adapters.backfill import Bookmarks, GapWatch, bins_between, complete_bins, history_days
from collector.adapters.base import HttpUrl, PoolSourceSettings, SectionCollector, SourceContext, credential_budget_key
from collector.errors import RateLimited
from collector.models import HashrateSample, PoolAccountSnapshot, SectionIssue
from collector.pools.viabtc import parse
from collector.ratelimit import RateBudget

API_PREFIX = "/res/openapi/v1/"
PAGE_SIZE = 100
HOUR_S = 3_600
# `hashrate/chart?interval=min`: one point per 10 minutes; `period` is the number of points (reference §4.2).
CHART_BIN_S = 600
T = TypeVar("T")


class ViabtcSettings(PoolSourceSettings):
    """A ViaBTC account (or sub-account): its API key and, optionally, its secret key for signed requests.

    Each poll asks for the last `profit_days` of daily profit and `payment_days` of payments (UTC days), plus the
    days since that history was last read (the first poll after start-up: `history_days`, the cap), so neither
    a restart nor an outage of the pool leaves a gap. After a gap in polling, the poll also reads the account's
    10-minute hashrate chart back to the last poll, at most `backfill_hours`.
    """

    secret_names = ("api_key", "secret_key")
    required_secrets = ("api_key",)

    api_key_env: str | None = None
    api_key_file: str | None = None
    secret_key_env: str | None = None
    secret_key_file: str | None = None
    base_url: HttpUrl = "https://pool.viabtc.com"
    profit_days: int = Field(3, ge=1, le=90)
    payment_days: int = Field(30, ge=1, le=365)
    history_days: int = Field(40, ge=1, le=365)
    max_pages: int = Field(10, ge=1, le=100)
    backfill_hours: int = Field(24, ge=1, le=720)


class ViabtcSource:
    """Polls one ViaBTC account for one coin."""

    kind: ClassVar[str] = "viabtc"
    settings_model: ClassVar[type[BaseModel]] = ViabtcSettings
    # ViaBTC documents no limit. Its keys are per account and IP-allow-listed, so the budget is per API key:
    # 30 requests a minute on average (one every 2 s), 10 at once so a poll's 5 requests go out together.
    default_budget: ClassVar[RateBudget] = RateBudget(per_minute=30, burst=10, scope="credential")

    def __init__(self, settings: ViabtcSettings, ctx: SourceContext) -> None:
        self._settings = settings
        self._ctx = ctx
        self._base = settings.base_url.rstrip("/")
        self._read = Bookmarks()  # when the profit and payment histories were last read in full
        self._gaps = GapWatch(settings.backfill_hours * HOUR_S, ctx.interval_s)

    @staticmethod
    def budget_key(settings: ViabtcSettings) -> str:
        return credential_budget_key("viabtc", settings.secret("api_key"))

    @staticmethod
    def requests_per_poll(settings: ViabtcSettings) -> int:
        # One page each of hashrate, account, workers, profit history, payment history; plus the hashrate chart
        # on a poll after a gap (counted, as the config check has no separate figure for such polls).
        return 6

    def collect(self) -> PoolAccountSnapshot:
        """Hashrate is required; account, workers, profit and payments degrade to an issue if they fail."""
        now = int(self._ctx.clock())
        self._read.begin()
        gap_start = self._gaps.gap_start(now)
        try:
            return self._collect(now, gap_start)
        except RateLimited:
            self._gaps.rate_limited()
            raise

    def _collect(self, now: int, gap_start: int | None) -> PoolAccountSnapshot:
        coin = self._ctx.coin
        totals = parse.parse_hashrate(self._get("hashrate", [("coin", coin)]))
        sections = SectionCollector()
        account = sections.fetch("account", lambda: parse.parse_account(self._get("account", []), coin))
        username = None if account is None else account.username
        cap = self._settings.history_days
        profit_range = self._days(now, history_days(now, self._read.get("profit"), self._settings.profit_days, cap))
        payment_days = history_days(now, self._read.get("payments"), self._settings.payment_days, cap)
        payment_range = self._days(now, payment_days)

        workers = self._paged_section(
            sections,
            "workers",
            "hashrate/worker",
            [("coin", coin)],
            lambda rows: parse.parse_workers(rows, username, sections.issues),
        )
        earnings = self._paged_section(
            sections,
            "profit",
            "profit/history",
            [("coin", coin), *profit_range, ("utc", "true")],
            parse.parse_profit_history,
        )
        payouts = self._paged_section(
            sections,
            "payments",
            "wallet/payment/history",
            [("coin", coin), *payment_range, ("utc", "true")],
            parse.parse_payments,
        )
        history: tuple[HashrateSample, ...] | None = ()
        if gap_start is not None:
            history = sections.fetch("hashrate_history", lambda: self._hashrate_chart(coin, now, gap_start))
        # Each history reaches back to its own last success, whatever else failed.
        if not sections.failed("profit"):
            self._read.mark("profit", now)
        if not sections.failed("payments"):
            self._read.mark("payments", now)
        if history is not None:
            self._gaps.covered(now)
        return PoolAccountSnapshot(
            observed_at=now,
            coin=coin,
            hashrate_hs=totals.hashrate_hs,
            hashrate_1h_hs=totals.hashrate_1h_hs,
            hashrate_24h_hs=totals.hashrate_24h_hs,
            workers_active=totals.workers_active,
            workers_inactive=totals.workers_inactive,
            balance_sats=None if account is None else account.balance_sats,
            workers=workers or (),
            earnings=earnings or (),
            payouts=payouts or (),
            settings=None if account is None else account.settings,
            issues=tuple(sections.issues),
            hashrate_history=history or (),
        )

    def rollback(self) -> None:
        """Undo this poll's bookmarks (the runner could not turn its snapshot into points): the next poll reads
        the profit, payments and hashrate chart this one read again."""
        self._read.rollback()
        self._gaps.rollback()

    def _hashrate_chart(self, coin: str, now: int, since: int) -> tuple[HashrateSample, ...]:
        """The account's complete 10-minute points from the one holding `since` to now (at most the cap)."""
        points = bins_between(now, since, CHART_BIN_S, self._settings.backfill_hours * HOUR_S)
        params = [("coin", coin), ("interval", "min"), ("period", str(points))]
        samples = parse.parse_hashrate_chart(self._get("hashrate/chart", params), CHART_BIN_S)
        oldest = now - points * CHART_BIN_S
        return complete_bins(samples, oldest=oldest, now=now, bin_s=CHART_BIN_S, where="hashrate/chart")

    def _paged_section(
        self,
        sections: SectionCollector,
        section: str,
        endpoint: str,
        params: list[tuple[str, str]],
        parse_rows: Callable[[Sequence[Any]], tuple[T, ...]],
    ) -> tuple[T, ...] | None:
        """Fetch every page of `endpoint` (up to `max_pages`) and parse the rows of the account's coin.

        More pages than `max_pages` keeps what was fetched and records an issue: the rest is missing, not zero.
        """

        def fetch() -> tuple[tuple[T, ...], bool]:
            rows: list[Any] = []
            for number in range(1, self._settings.max_pages + 1):
                page = parse.parse_page(
                    self._get(endpoint, [*params, ("page", str(number)), ("limit", str(PAGE_SIZE))]), endpoint
                )
                rows.extend(parse.coin_rows(page.rows, self._ctx.coin, endpoint))
                if not page.has_next or not page.rows:
                    return parse_rows(rows), False
            return parse_rows(rows), True

        result = sections.fetch(section, fetch)
        if result is None:
            return None
        items, truncated = result
        if truncated:
            message = f"{endpoint}: more than {self._settings.max_pages} pages; the rest was not read"
            sections.issues.append(SectionIssue(section, "bad_response", message))
        return items

    def _get(self, endpoint: str, params: list[tuple[str, str]]) -> object:
        """GET an endpoint; with a secret key, add `tonce` (ms, from the injected clock) and `X-SIGNATURE`."""
        headers = {"X-API-KEY": self._settings.secret("api_key") or "", "Accept": "application/json"}
        secret_key = self._settings.secret("secret_key")
        if secret_key:
            tonce_ms = int(self._ctx.clock() * 1000)
            query, headers["X-SIGNATURE"] = parse.signed_query(params, tonce_ms=tonce_ms, secret_key=secret_key)
        else:
            query = parse.query_string(params)
        # The query string goes into the URL as built, so the pool sees exactly the bytes that were signed.
        url = self._base + API_PREFIX + endpoint + (f"?{query}" if query else "")
        return self._ctx.http.get_json(url, headers=headers)

    @staticmethod
    def _days(now: int, days: int) -> list[tuple[str, str]]:
        today = datetime.fromtimestamp(now, UTC).date()
        return [("start_date", (today - timedelta(days=days)).isoformat()), ("end_date", today.isoformat())]
