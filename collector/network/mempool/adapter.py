"""mempool.space source: Bitcoin's difficulty, network hashrate and average block reward (no account, no auth)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, Field

from collector.adapters.base import HttpUrl, PoolSourceSettings, SectionCollector, SourceContext, host_budget_key
from collector.errors import NoData
from collector.models import NetworkSnapshot, SectionIssue
from collector.network.mempool import parse
from collector.ratelimit import RateBudget

# The hashrate endpoint's period. Only `currentHashrate`/`currentDifficulty` are read, which do not depend on
# it, so the shortest period the router accepts for this route with little history in the body is used.
HASHRATE_PERIOD = "3d"


class MempoolSettings(PoolSourceSettings):
    """A mempool.space instance (the public one, a self-hosted one, or the simulator) and the reward window.

    `reward_blocks` is how many of the latest blocks the average block reward is taken over (one day is 144;
    at most one difficulty epoch, 2016). No secrets: the API is public.
    """

    base_url: HttpUrl = "https://mempool.space/api"
    reward_blocks: int = Field(144, ge=1, le=2016)


class MempoolSource:
    """Polls a mempool instance for the Bitcoin network's figures."""

    kind: ClassVar[str] = "mempool"
    settings_model: ClassVar[type[BaseModel]] = MempoolSettings
    # The public instance publishes no numbers but bans abusers; its mining responses are cached for 60-300 s,
    # so polling faster than every few minutes gains nothing. 6/min with a burst of 4 lets one poll go at once.
    default_budget: ClassVar[RateBudget] = RateBudget(per_minute=6, burst=4, scope="host")

    def __init__(self, settings: MempoolSettings, ctx: SourceContext) -> None:
        self._settings = settings
        self._ctx = ctx
        self._base = settings.base_url.rstrip("/")

    @staticmethod
    def budget_key(settings: MempoolSettings) -> str:
        """mempool limits per client IP, so every target on one instance shares one bucket."""
        return host_budget_key("mempool", settings.base_url)

    @staticmethod
    def requests_per_poll(settings: MempoolSettings) -> int:
        """Hashrate and reward stats: two requests."""
        return 2

    def collect(self) -> NetworkSnapshot:
        """Fetch the network figures; the hashrate endpoint is required, reward stats degrade to an issue.

        Raises:
            NoData: the configured coin is not BTC, or mempool knew none of the three figures.
            SourceError: any failure of the hashrate endpoint (`BadResponse`, `Unreachable`, `RateLimited`, ...),
                or a 429 from the reward-stats endpoint.
        """
        now = int(self._ctx.clock())
        if self._ctx.coin != "BTC":
            raise NoData(f"mempool.space serves the Bitcoin network only (coin BTC), not {self._ctx.coin}")
        current = parse.parse_hashrate(self._get(f"/v1/mining/hashrate/{HASHRATE_PERIOD}"))
        sections = SectionCollector()
        if current.hashrate_hs is None or current.difficulty is None:
            unknown = [
                name
                for name, value in (("currentDifficulty", current.difficulty), ("currentHashrate", current.hashrate_hs))
                if value is None
            ]
            said = " and ".join(unknown) + (" is 0" if len(unknown) == 1 else " are 0")
            sections.issues.append(
                SectionIssue("hashrate", NoData.kind, f"{said}: mempool's backend could not reach Bitcoin Core")
            )
        blocks = self._settings.reward_blocks
        rewards = sections.fetch(
            "reward_stats",
            lambda: parse.parse_reward_stats(self._get(f"/v1/mining/reward-stats/{blocks}"), blocks),
        )
        reward = None if rewards is None else rewards.block_reward_sats
        if current.difficulty is None and current.hashrate_hs is None and reward is None:
            # An all-empty snapshot would be a point without fields: the poll has nothing to show.
            raise NoData("; ".join(str(issue) for issue in sections.issues))
        return NetworkSnapshot(
            observed_at=now,
            coin=self._ctx.coin,
            difficulty=current.difficulty,
            hashrate_hs=current.hashrate_hs,
            block_reward_sats=reward,
            issues=tuple(sections.issues),
        )

    def _get(self, path: str) -> object:
        return self._ctx.http.get_json(self._base + path)
