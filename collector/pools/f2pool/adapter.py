"""F2Pool source: account hashrate, workers, balance, revenue and payouts of one mining user (API v2)."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, Field

from collector.adapters.backfill import DAY_S, Bookmarks, GapWatch, bins_between, complete_bins, history_start
from collector.adapters.base import HttpUrl, PoolSourceSettings, SectionCollector, SourceContext, credential_budget_key
from collector.errors import NoData, RateLimited
from collector.models import HashrateSample, PoolAccountSnapshot
from collector.pools.f2pool import parse
from collector.ratelimit import RateBudget

HOUR_S = 3_600
# `/v2/hash_rate/history`: `interval` is a multiple of 600 s, `duration` at most 30 days (reference §3.2).
HISTORY_BIN_S = 600
HISTORY_MAX_S = 30 * DAY_S


class F2PoolSettings(PoolSourceSettings):
    """An F2Pool mining user: the API token (`F2P-API-SECRET`) and the mining user's name.

    Each poll asks for the bills (revenue and payouts) created in the last `recent_days`, plus the days since
    the bills were last read (the first poll after start-up: `history_days`, the cap), so neither a restart
    nor an outage of the pool leaves a gap. After a gap in polling, the poll also reads the account's
    hashrate history (10-minute bins) back to the last poll, at most `backfill_hours`.
    """

    secret_names = ("token",)
    required_secrets = ("token",)

    token_env: str | None = None
    token_file: str | None = None
    mining_user_name: str = Field(min_length=1, pattern=r"^\S+$")
    base_url: HttpUrl = "https://api.f2pool.com"
    recent_days: int = Field(3, ge=1, le=30)
    history_days: int = Field(40, ge=1, le=365)
    backfill_hours: int = Field(24, ge=1, le=720)


class F2PoolSource:
    """Polls one F2Pool mining user for one coin."""

    kind: ClassVar[str] = "f2pool"
    settings_model: ClassVar[type[BaseModel]] = F2PoolSettings
    # F2Pool documents no limit; Tether's production client waits 1 s between calls. Per API token.
    default_budget: ClassVar[RateBudget] = RateBudget(per_minute=60, burst=5, scope="credential")

    def __init__(self, settings: F2PoolSettings, ctx: SourceContext) -> None:
        self._settings = settings
        self._ctx = ctx
        self._base = settings.base_url.rstrip("/")
        self._read = Bookmarks()  # when the bills were last read in full
        self._gaps = GapWatch(min(settings.backfill_hours * HOUR_S, HISTORY_MAX_S), ctx.interval_s)

    @staticmethod
    def budget_key(settings: F2PoolSettings) -> str:
        return credential_budget_key("f2pool", settings.secret("token"))

    @staticmethod
    def requests_per_poll(settings: F2PoolSettings) -> int:
        # info, workers, balance, bills, wallet; plus the hashrate history on a poll after a gap (counted, as
        # the config check has no separate figure for such polls: it is the worst case).
        return 6

    def collect(self) -> PoolAccountSnapshot:
        """Account hashrate is required; workers, balance, bills and the wallet degrade to an issue if they fail."""
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
        currency = parse.CURRENCIES.get(coin)
        if currency is None:
            raise NoData(f"F2Pool's hashrate API serves BTC, BCH and LTC, not {coin}")
        user = self._settings.mining_user_name
        account = {"mining_user_name": user, "currency": currency}
        totals = parse.parse_hashrate_info(self._post("/v2/hash_rate/info", account))
        sections = SectionCollector()
        workers = sections.fetch(
            "workers", lambda: parse.parse_workers(self._post("/v2/hash_rate/worker/list", account), user)
        )
        balance = sections.fetch("balance", lambda: parse.parse_balance(self._post("/v2/assets/balance", account)))
        start = history_start(now, self._read.get("bills"), self._settings.recent_days, self._settings.history_days)
        bills = {**account, "type": "revenue,payout", "start_time": start, "end_time": now}
        transactions = sections.fetch(
            "transactions",
            lambda: parse.parse_transactions(self._post("/v2/assets/transactions/list", bills)),
        )
        wallet = sections.fetch(
            "mining_user",
            lambda: parse.parse_mining_user(self._post("/v2/mining_user/get", {"mining_user_name": user}), currency),
        )
        history: tuple[HashrateSample, ...] | None = ()
        if gap_start is not None:
            history = sections.fetch("hashrate_history", lambda: self._hashrate_history(account, now, gap_start))
        if not sections.failed("transactions"):
            self._read.mark("bills", now)
        if history is not None:
            self._gaps.covered(now)
        earnings, payouts = transactions if transactions is not None else ((), ())
        return PoolAccountSnapshot(
            observed_at=now,
            coin=coin,
            hashrate_hs=totals.hashrate_hs,
            hashrate_1h_hs=totals.hashrate_1h_hs,
            hashrate_24h_hs=totals.hashrate_24h_hs,
            workers_active=None if workers is None else workers.active,
            workers_inactive=None if workers is None else workers.inactive,
            balance_sats=balance,
            workers=() if workers is None else workers.workers,
            earnings=earnings,
            payouts=payouts,
            settings=wallet,
            issues=tuple(sections.issues),
            hashrate_history=history or (),
        )

    def rollback(self) -> None:
        """Undo this poll's bookmarks (the runner could not turn its snapshot into points): the next poll reads
        the bills and the hashrate history this one read again."""
        self._read.rollback()
        self._gaps.rollback()

    def _hashrate_history(self, account: dict[str, Any], now: int, since: int) -> tuple[HashrateSample, ...]:
        """The account's complete 10-minute bins from the bin holding `since` to now (at most the cap)."""
        cap = min(self._settings.backfill_hours * HOUR_S, HISTORY_MAX_S)
        duration = bins_between(now, since, HISTORY_BIN_S, cap) * HISTORY_BIN_S
        body = {**account, "interval": HISTORY_BIN_S, "duration": duration}
        samples = parse.parse_hashrate_history(self._post("/v2/hash_rate/history", body), HISTORY_BIN_S)
        return complete_bins(samples, oldest=now - duration, now=now, bin_s=HISTORY_BIN_S, where="hash_rate/history")

    def _post(self, path: str, body: dict[str, Any]) -> object:
        token = self._settings.secret("token") or ""
        headers = {"F2P-API-SECRET": token, "Accept": "application/json"}
        return self._ctx.http.post_json(self._base + path, body=body, headers=headers)
