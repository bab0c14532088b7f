"""EMCD source: account info, workers, income and payouts of one account and coin (API key in the URL path)."""

from __future__ import annotations

from typing import ClassVar
from urllib.parse import quote

from pydantic import BaseModel, Field

from collector.adapters.backfill import Bookmarks
from collector.adapters.base import HttpUrl, PoolSourceSettings, SectionCollector, SourceContext, host_budget_key
from collector.errors import NoData
from collector.models import PoolAccountSnapshot
from collector.pools.emcd import parse
from collector.ratelimit import RateBudget


class EmcdSettings(PoolSourceSettings):
    """An EMCD account: its API key (shown on the account's Settings page).

    EMCD v1 returns the whole income and payout history on every call; the first poll after start-up
    writes all of it, later polls the last `recent_days` before the list was last read (so after an outage
    of the pool, everything since; replays of the rest would change nothing). EMCD v1 has no hashrate history.
    """

    secret_names = ("api_key",)
    required_secrets = ("api_key",)

    api_key_env: str | None = None
    api_key_file: str | None = None
    base_url: HttpUrl = "https://api.emcd.io"
    recent_days: int = Field(3, ge=1, le=90)


class EmcdSource:
    """Polls one EMCD account for one coin."""

    kind: ClassVar[str] = "emcd"
    settings_model: ClassVar[type[BaseModel]] = EmcdSettings
    # EMCD v1 documents no limit; its clients poll about once a minute. The budget is per API host (per IP).
    default_budget: ClassVar[RateBudget] = RateBudget(per_minute=120, burst=20, scope="host")

    def __init__(self, settings: EmcdSettings, ctx: SourceContext) -> None:
        self._settings = settings
        self._ctx = ctx
        self._base = settings.base_url.rstrip("/")
        self._read = Bookmarks()  # when the income and the payout lists were last read

    @staticmethod
    def budget_key(settings: EmcdSettings) -> str:
        return host_budget_key("emcd", settings.base_url)

    @staticmethod
    def requests_per_poll(settings: EmcdSettings) -> int:
        return 4

    def collect(self) -> PoolAccountSnapshot:
        """Workers (hashrate) are required; info, income and payouts degrade to an issue if they fail."""
        now = int(self._ctx.clock())
        self._read.begin()
        coin = self._ctx.coin
        if coin not in parse.COIN_NAMES:
            raise NoData(f"EMCD does not mine {coin}")
        ticker = coin.lower()
        summary = parse.parse_workers(self._get(f"/v1/{ticker}/workers/"))
        sections = SectionCollector()
        info = sections.fetch("info", lambda: parse.parse_info(self._get("/v1/info/"), coin))
        earnings = sections.fetch("income", lambda: parse.parse_income(self._get(f"/v1/{ticker}/income/")))
        payouts = sections.fetch("payouts", lambda: parse.parse_payouts(self._get(f"/v1/{ticker}/payouts/")))
        recent_s = self._settings.recent_days * 86_400
        # Each list is written back to `recent_days` before its own last success; all of it until one succeeds.
        income_read, payouts_read = self._read.get("income"), self._read.get("payouts")
        if earnings is not None and income_read is not None:
            earnings = tuple(e for e in earnings if e.credited_at >= income_read - recent_s)
        if payouts is not None and payouts_read is not None:
            payouts = tuple(p for p in payouts if p.sent_at >= payouts_read - recent_s)
        if earnings is not None:
            self._read.mark("income", now)
        if payouts is not None:
            self._read.mark("payouts", now)
        return PoolAccountSnapshot(
            observed_at=now,
            coin=coin,
            hashrate_hs=summary.hashrate_hs,
            hashrate_1h_hs=summary.hashrate_1h_hs,
            hashrate_24h_hs=summary.hashrate_24h_hs,
            workers_active=summary.workers_active,
            workers_inactive=summary.workers_inactive,
            balance_sats=None if info is None else info.balance_sats,
            workers=summary.workers,
            earnings=earnings or (),
            payouts=payouts or (),
            settings=None if info is None else info.settings,
            issues=tuple(sections.issues),
        )

    def rollback(self) -> None:
        """Undo this poll's bookmarks (the runner could not turn its snapshot into points): the next poll writes
        the lists this one read again."""
        self._read.rollback()

    def _get(self, path_prefix: str) -> object:
        # The key travels in the path; HttpClient redacts it from every message it builds.
        key = quote(self._settings.secret("api_key") or "", safe="")
        return self._ctx.http.get_json(f"{self._base}{path_prefix}{key}", headers={"Accept": "application/json"})
