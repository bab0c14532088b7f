"""AntPool source: overview, balance, workers, payouts and daily credits of one account (HMAC-signed forms)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field

from collector.adapters.backfill import Bookmarks
from collector.adapters.base import HttpUrl, PoolSourceSettings, SectionCollector, SourceContext, host_budget_key
from collector.errors import BadResponse
from collector.models import Earning, Payout, PoolAccountSnapshot, WorkerStats
from collector.pools.antpool import parse
from collector.ratelimit import RateBudget

HistoryType = Literal["payout", "recv"]
MAX_WORKER_PAGES = 100
DAY_S = 86_400
# A history is paged back until its rows are this much older than its last successful read: a daily credit is
# dated by its day, which starts up to a day before the credit appears.
HISTORY_OVERLAP_S = DAY_S


class AntpoolSettings(PoolSourceSettings):
    """An AntPool account (or sub-account): its name, API key and API secret, and how much history to read.

    `endpoints = "current"` reads `accountOverview.htm` + `userWorkerList.htm`; `"legacy"` reads
    `hashrate.htm` + `workers.htm` instead. `history` names the `paymentHistoryV2.htm` lists read each poll:
    `payout` (payouts) and `recv` (daily credits). Each poll reads a list's pages (newest first) until they reach
    back to the list's last successful read, at most `history_pages` (normally one page); the first poll after
    start-up reads `history_pages` pages. So neither a restart nor an outage of the pool leaves a gap.
    """

    secret_names = ("api_key", "api_secret")
    required_secrets = ("api_key", "api_secret")

    user_id: str = Field(min_length=1)
    api_key_env: str | None = None
    api_key_file: str | None = None
    api_secret_env: str | None = None
    api_secret_file: str | None = None
    base_url: HttpUrl = "https://antpool.com"
    endpoints: Literal["current", "legacy"] = "current"
    history: tuple[HistoryType, ...] = ("payout", "recv")
    page_size: int = Field(50, ge=10, le=100)
    history_pages: int = Field(4, ge=1, le=20)


class AntpoolSource:
    """Polls one AntPool account."""

    kind: ClassVar[str] = "antpool"
    settings_model: ClassVar[type[BaseModel]] = AntpoolSettings
    # "≤ 600 requests per 10 minutes per IP", otherwise a temporary ban: 58/min per API host (a burst of 10 plus
    # 10 minutes of refill stays under 600), shared by every AntPool account this process polls.
    default_budget: ClassVar[RateBudget] = RateBudget(per_minute=58, burst=10, scope="host")

    def __init__(self, settings: AntpoolSettings, ctx: SourceContext) -> None:
        self._settings = settings
        self._ctx = ctx
        self._base = settings.base_url.rstrip("/")
        self._last_nonce = 0
        self._read = Bookmarks()  # when each history list was last read

    @staticmethod
    def budget_key(settings: AntpoolSettings) -> str:
        return host_budget_key("antpool", settings.base_url)

    @staticmethod
    def requests_per_poll(settings: AntpoolSettings) -> int:
        # A normal poll: summary + balance + one page of workers + one page per history list. Not counted: the
        # burst of the first poll after start-up or after an outage of the pool, which pages back up to
        # `history_pages` per list (3 + len(history) * history_pages); the README's "Rate limit" says how the
        # budget absorbs it. Counting the burst would make the config check warn about every normal interval.
        return 3 + len(set(settings.history))

    def collect(self) -> PoolAccountSnapshot:
        """The overview (or legacy hashrate) is required; balance, workers and histories degrade to an issue."""
        now = int(self._ctx.clock())
        self._read.begin()
        legacy = self._settings.endpoints == "legacy"
        if legacy:
            summary = parse.parse_hashrate_legacy(self._post("hashrate", {}))
        else:
            summary = parse.parse_overview(self._post("accountOverview", {"userId": self._settings.user_id}))
        sections = SectionCollector()
        balance = sections.fetch("account", lambda: parse.parse_balance(self._post("account", {})))
        workers = sections.fetch("workers", self._legacy_workers if legacy else self._user_workers)
        payouts: tuple[Payout, ...] | None = None
        earnings: tuple[Earning, ...] | None = None
        if "payout" in self._settings.history:
            payouts = sections.fetch("payouts", lambda: parse.parse_payouts(self._history("payout")))
            if payouts is not None:
                self._read.mark("payout", now)
        if "recv" in self._settings.history:
            earnings = sections.fetch("earnings", lambda: parse.parse_earnings(self._history("recv")))
            if earnings is not None:
                self._read.mark("recv", now)
        return PoolAccountSnapshot(
            observed_at=now,
            coin=self._ctx.coin,
            hashrate_hs=summary.hashrate_hs,
            hashrate_1h_hs=summary.hashrate_1h_hs,
            hashrate_24h_hs=summary.hashrate_24h_hs,
            workers_active=summary.workers_active,
            workers_inactive=summary.workers_inactive,
            balance_sats=balance,
            workers=workers or (),
            earnings=earnings or (),
            payouts=payouts or (),
            settings=None,  # AntPool's API does not show the configured payout address.
            issues=tuple(sections.issues),
        )

    def rollback(self) -> None:
        """Undo this poll's bookmarks (the runner could not turn its snapshot into points): the next poll reads
        the histories this one read again."""
        self._read.rollback()

    def _user_workers(self) -> tuple[WorkerStats, ...]:
        params = {"coinType": self._ctx.coin, "userId": self._settings.user_id, "workerStatus": "0"}
        rows = self._pages("userWorkerList", params, MAX_WORKER_PAGES, must_finish=True)
        return parse.parse_user_workers(rows, self._settings.user_id)

    def _legacy_workers(self) -> tuple[WorkerStats, ...]:
        rows = self._pages("workers", {"pageEnable": "1"}, MAX_WORKER_PAGES, must_finish=True)
        return parse.parse_legacy_workers(rows, self._settings.user_id)

    def _history(self, kind: HistoryType) -> tuple[Any, ...]:
        """Pages of a payment history back to its last successful read (normally one page), at most
        `history_pages`; all `history_pages` until it has been read once."""
        last_ok = self._read.get(kind)

        def reached(rows: Sequence[Any]) -> bool:
            return last_ok is not None and any(at < last_ok - HISTORY_OVERLAP_S for at in self._row_times(kind, rows))

        return self._pages(
            "paymentHistoryV2",
            {"type": kind, "pageEnable": "1"},
            self._settings.history_pages,
            must_finish=False,
            reached=reached,
        )

    @staticmethod
    def _row_times(kind: HistoryType, rows: Sequence[Any]) -> list[int]:
        """The times of a history page's rows, as they will be written (payouts not yet sent have none)."""
        if kind == "payout":
            return [p.sent_at for p in parse.parse_payouts(rows)]
        return [e.credited_at for e in parse.parse_earnings(rows)]

    def _pages(
        self,
        name: str,
        params: dict[str, str],
        max_pages: int,
        *,
        must_finish: bool,
        reached: Callable[[Sequence[Any]], bool] | None = None,
    ) -> tuple[Any, ...]:
        """Rows of pages 1.. of a list: stop at `totalPage` when the pool gives it, else at a short page, or after
        `max_pages`, or (lists newest first) at the first page for which `reached(rows)` holds.

        AntPool reports `page=1` for a short last page (reference §5.2), so the page number we asked for,
        not the one it echoes, decides. A server that caps the page size below ours sends short pages that are
        not the last: `totalPage`, where present, wins over the short-page rule.
        """
        rows: list[Any] = []
        size = self._settings.page_size
        for number in range(1, max_pages + 1):
            result = parse.page(self._post(name, {**params, "page": str(number), "pageSize": str(size)}), name)
            rows.extend(result.rows)
            last = number >= result.total_pages if result.total_pages is not None else len(result.rows) < size
            if last or not result.rows or (reached is not None and reached(result.rows)):
                return tuple(rows)
        if must_finish:
            raise BadResponse(f"{name}: more than {max_pages} pages of {size} rows")
        return tuple(rows)

    def _nonce(self) -> int:
        """Milliseconds of the injected clock, made strictly increasing (two requests may share a ms)."""
        self._last_nonce = max(int(self._ctx.clock() * 1000), self._last_nonce + 1)
        return self._last_nonce

    def _post(self, name: str, params: dict[str, str]) -> object:
        key = self._settings.secret("api_key") or ""
        secret = self._settings.secret("api_secret") or ""
        nonce = self._nonce()
        form = {
            "key": key,
            "nonce": str(nonce),
            "signature": parse.signature(self._settings.user_id, key, secret, nonce),
            "coin": self._ctx.coin,
            **params,
        }
        return self._ctx.http.post_form(f"{self._base}/api/{name}.htm", form=form)
