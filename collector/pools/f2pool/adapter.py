"""F2Pool source: account hashrate, workers, balance, revenue and payouts of one mining user (API v2)."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, Field

from collector.adapters.base import HttpUrl, PoolSourceSettings, SectionCollector, SourceContext, credential_budget_key
from collector.errors import NoData
from collector.models import PoolAccountSnapshot
from collector.pools.f2pool import parse
from collector.ratelimit import RateBudget

DAY_S = 86_400


class F2PoolSettings(PoolSourceSettings):
    """An F2Pool mining user: the API token (`F2P-API-SECRET`) and the mining user's name.

    Each poll asks for the bills (revenue and payouts) created in the last `recent_days`; the first poll
    after start-up asks for `history_days`, so a restart leaves no gap.
    """

    secret_names = ("token",)
    required_secrets = ("token",)

    token_env: str | None = None
    token_file: str | None = None
    mining_user_name: str = Field(min_length=1, pattern=r"^\S+$")
    base_url: HttpUrl = "https://api.f2pool.com"
    recent_days: int = Field(3, ge=1, le=30)
    history_days: int = Field(40, ge=1, le=365)


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
        self._first_poll = True

    @staticmethod
    def budget_key(settings: F2PoolSettings) -> str:
        return credential_budget_key("f2pool", settings.secret("token"))

    @staticmethod
    def requests_per_poll(settings: F2PoolSettings) -> int:
        return 5

    def collect(self) -> PoolAccountSnapshot:
        """Account hashrate is required; workers, balance, bills and the wallet degrade to an issue if they fail."""
        now = int(self._ctx.clock())
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
        days = self._settings.history_days if self._first_poll else self._settings.recent_days
        bills = {**account, "type": "revenue,payout", "start_time": now - days * DAY_S, "end_time": now}
        transactions = sections.fetch(
            "transactions",
            lambda: parse.parse_transactions(self._post("/v2/assets/transactions/list", bills)),
        )
        wallet = sections.fetch(
            "mining_user",
            lambda: parse.parse_mining_user(self._post("/v2/mining_user/get", {"mining_user_name": user}), currency),
        )
        self._first_poll = self._first_poll and sections.failed("transactions")
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
        )

    def _post(self, path: str, body: dict[str, Any]) -> object:
        token = self._settings.secret("token") or ""
        headers = {"F2P-API-SECRET": token, "Accept": "application/json"}
        return self._ctx.http.post_json(self._base + path, body=body, headers=headers)
