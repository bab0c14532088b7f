"""Braiins Pool source: profile, workers, daily rewards and payouts of one account (token per access profile)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import ClassVar

from pydantic import BaseModel, Field

from collector.adapters.backfill import Bookmarks, history_days
from collector.adapters.base import HttpUrl, PoolSourceSettings, SectionCollector, SourceContext, credential_budget_key
from collector.errors import NoData
from collector.models import PoolAccountSnapshot
from collector.pools.braiins import parse
from collector.ratelimit import RateBudget


class BraiinsSettings(PoolSourceSettings):
    """A Braiins Pool account: its access-profile token and how many days of credits and payouts to fetch.

    Each poll asks for the last `reward_days` of daily rewards and `payout_days` of payouts, plus the days since
    each was last read (the first poll after start-up: `history_days`, the cap; Braiins keeps 90 days), so
    neither a restart nor an outage of the pool leaves a gap. Braiins' API has no hashrate history to backfill.
    """

    secret_names = ("token",)
    required_secrets = ("token",)

    token_env: str | None = None
    token_file: str | None = None
    base_url: HttpUrl = "https://pool.braiins.com"
    reward_days: int = Field(3, ge=1, le=90)
    payout_days: int = Field(30, ge=1, le=365)
    history_days: int = Field(40, ge=1, le=90)


class BraiinsSource:
    """Polls one Braiins Pool account."""

    kind: ClassVar[str] = "braiins"
    settings_model: ClassVar[type[BaseModel]] = BraiinsSettings
    # Braiins documents "about 1 request every 5 seconds" per token; a burst of 4 lets one poll go at once.
    default_budget: ClassVar[RateBudget] = RateBudget(per_minute=12, burst=4, scope="credential")

    def __init__(self, settings: BraiinsSettings, ctx: SourceContext) -> None:
        self._settings = settings
        self._ctx = ctx
        self._base = settings.base_url.rstrip("/")
        self._read = Bookmarks()  # when the daily rewards and the payouts were last read

    @staticmethod
    def budget_key(settings: BraiinsSettings) -> str:
        return credential_budget_key("braiins", settings.secret("token"))

    @staticmethod
    def requests_per_poll(settings: BraiinsSettings) -> int:
        return 4

    def collect(self) -> PoolAccountSnapshot:
        """Profile is required; workers, rewards and payouts degrade to an issue if they fail."""
        now = int(self._ctx.clock())
        self._read.begin()
        if self._ctx.coin != "BTC":
            raise NoData(f"Braiins Pool's account API serves BTC only, not {self._ctx.coin}")
        profile = parse.parse_profile(self._get("/accounts/profile/json/btc/"))
        # Each history reaches back to its own last success (the first poll after start-up: `history_days`).
        cap = self._settings.history_days
        reward_days = history_days(now, self._read.get("rewards"), self._settings.reward_days, cap)
        payout_days = history_days(now, self._read.get("payouts"), self._settings.payout_days, cap)
        sections = SectionCollector()
        workers = sections.fetch(
            "workers", lambda: parse.parse_workers(self._get("/accounts/workers/json/btc/"), profile.username)
        )
        earnings = sections.fetch(
            "rewards",
            lambda: parse.parse_daily_rewards(self._get("/accounts/rewards/json/btc", self._days(now, reward_days))),
        )
        payouts = sections.fetch(
            "payouts",
            lambda: parse.parse_payouts(self._get("/accounts/payouts/json/btc", self._days(now, payout_days))),
        )
        if not sections.failed("rewards"):
            self._read.mark("rewards", now)
        if not sections.failed("payouts"):
            self._read.mark("payouts", now)
        return PoolAccountSnapshot(
            observed_at=now,
            coin=self._ctx.coin,
            hashrate_hs=profile.hashrate_hs,
            hashrate_1h_hs=profile.hashrate_1h_hs,
            hashrate_24h_hs=profile.hashrate_24h_hs,
            workers_active=profile.workers_active,
            workers_inactive=profile.workers_inactive,
            balance_sats=profile.balance_sats,
            workers=workers or (),
            earnings=earnings or (),
            payouts=payouts or (),
            settings=None,  # Braiins' API does not show the configured payout address.
            issues=tuple(sections.issues),
        )

    def rollback(self) -> None:
        """Undo this poll's bookmarks (the runner could not turn its snapshot into points): the next poll reads
        the histories this one read again."""
        self._read.rollback()

    def _get(self, path: str, params: dict[str, str] | None = None) -> object:
        token = self._settings.secret("token") or ""
        return self._ctx.http.get_json(self._base + path, headers={"Pool-Auth-Token": token}, params=params)

    @staticmethod
    def _days(now: int, days: int) -> dict[str, str]:
        today = datetime.fromtimestamp(now, UTC).date()
        return {"from": (today - timedelta(days=days)).isoformat(), "to": today.isoformat()}
