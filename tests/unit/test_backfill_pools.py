"""Backfill after outages (issue 7, part 5): every pool's adapter, polled through the simulator on a fake clock.

Each source runs against an in-process simulator (loopback HTTP) whose clock is the test's. The requests are
recorded as the simulator receives them, so the tests assert what each pool is asked after a gap: the
rewards/payouts window reaches back to the last successful read of that history (capped by `history_days` /
`history_pages`), and F2Pool and ViaBTC read their hashrate history over the gap (capped by `backfill_hours`).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

from collector.adapters.base import SourceContext
from collector.adapters.http import HttpClient
from collector.errors import RateLimited, SourceError
from collector.models import PoolAccountSnapshot
from collector.pools.antpool.adapter import AntpoolSettings, AntpoolSource
from collector.pools.braiins.adapter import BraiinsSettings, BraiinsSource
from collector.pools.emcd.adapter import EmcdSettings, EmcdSource
from collector.pools.f2pool.adapter import F2PoolSettings, F2PoolSource
from collector.pools.viabtc.adapter import ViabtcSettings, ViabtcSource
from collector.redact import Redactor
from collector.runner import Runner
from collector.secrets import WithSecrets
from collector.sinks.base import MemorySink
from collector.sinks.lineprotocol import LineProtocolError
from collector.state import StateStore
from collector.targets import PoolTarget
from simulator import truth
from simulator.pools import f2pool as f2pool_sim
from simulator.pools import registry as sim_registry
from simulator.pools import viabtc as viabtc_sim
from simulator.scenario import Pool, Scenario, parse_scenario
from simulator.server import SimulatorServer

DAY = 86_400
HOUR = 3_600
NOW = 1_795_608_000  # 2026-11-25 12:00 UTC
START = NOW - 30 * DAY  # the collector starts a month earlier
OUTAGE_DAYS = 10
VIABTC_KEY, VIABTC_SECRET = "0123456789abcdef0123456789abcdef", "ab" * 32
EMCD_KEY = "5f1c2d3e-aaaa-4bbb-8ccc-0123456789ab"
SECRETS = {
    "braiins": ("brn", "tok-braiins-0001", None),
    "emcd": ("emc", EMCD_KEY, None),
    "f2pool": ("f2u", "tok-f2pool-0001", None),
    "viabtc": ("via", VIABTC_KEY, VIABTC_SECRET),
    "antpool": ("ant", "ak-antpool-0001", "as-antpool-0001"),
}
POOLS: tuple[Pool, ...] = ("braiins", "emcd", "f2pool", "viabtc", "antpool")


def scenario() -> Scenario:
    """One account per pool, two workers each, paying out every two days; history from two months back."""
    accounts = []
    for pool in POOLS:
        username, secret, api_secret = SECRETS[pool]
        account: dict[str, Any] = {
            "group_id": "g1",
            "pool": pool,
            "username": username,
            "secret": secret,
            "payout_address": "bc1qgwxdmj920kncmw8508t78axs2z5qra387xje0m",
            "payout_addresses": ["bc1qgwxdmj920kncmw8508t78axs2z5qra387xje0m"],
            "payout_every_days": 2,
            "payout_delay_hours": 1,
            "workers": [{"name": "w1", "nominal_ths": 200.0}, {"name": "w2", "nominal_ths": 150.0}],
        }
        if api_secret is not None:
            account["api_secret"] = api_secret
        accounts.append(account)
    return parse_scenario(
        {"seed": 7, "history_start": date(2026, 9, 1), "sats_per_phs_day": 45000, "accounts": accounts}
    )


@dataclass(frozen=True)
class Seen:
    """One request as the simulator received it: method, path, query parameters and JSON body."""

    method: str
    path: str
    query: dict[str, str]
    body: Any


class RecordingSession(requests.Session):
    """A real session that also records every request it sends."""

    def __init__(self) -> None:
        super().__init__()
        self.trust_env = False  # loopback only
        self.seen: list[Seen] = []
        self.broken: set[str] = set()  # path fragments whose requests fail to connect

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        parts = urlsplit(str(url))
        query = dict(parse_qsl(parts.query))
        query.update(kwargs.get("params") or {})
        query.update(kwargs.get("data") or {})
        self.seen.append(Seen(str(method), parts.path, query, kwargs.get("json")))
        if any(fragment in parts.path for fragment in self.broken):
            raise requests.ConnectionError("connection refused (test)")
        return super().request(method, url, *args, **kwargs)

    def take(self) -> list[Seen]:
        seen, self.seen = self.seen, []
        return seen


class Clock:
    def __init__(self, t: int) -> None:
        self.t = t

    def __call__(self) -> float:
        return float(self.t)


@dataclass
class Rig:
    """One pool's source, the simulator it polls, the shared fake clock and the recorded requests."""

    pool: Pool
    source: Any
    server: SimulatorServer
    clock: Clock
    session: RecordingSession
    http: HttpClient

    def poll(self, at: int) -> PoolAccountSnapshot | SourceError:
        self.clock.t = at
        self.http.start_poll(30.0)
        try:
            snapshot: PoolAccountSnapshot = self.source.collect()
        except SourceError as exc:
            return exc
        return snapshot

    def ok(self, at: int) -> PoolAccountSnapshot:
        result = self.poll(at)
        assert isinstance(result, PoolAccountSnapshot), result
        assert result.issues == (), result.issues
        return result

    def outage(self, fault: str | None) -> None:
        self.server.set_fault(self.pool, SECRETS[self.pool][0], fault)  # type: ignore[arg-type]

    def requests_to(self, fragment: str) -> list[Seen]:
        return [seen for seen in self.session.take() if fragment in seen.path]


def _settings(pool: Pool, base_url: str, **extra: Any) -> WithSecrets:
    username = SECRETS[pool][0]
    raw: dict[str, Any] = {"base_url": base_url, **extra}
    if pool == "braiins":
        return BraiinsSettings.model_validate({**raw, "token_env": "K"})
    if pool == "emcd":
        return EmcdSettings.model_validate({**raw, "api_key_env": "K"})
    if pool == "f2pool":
        return F2PoolSettings.model_validate({**raw, "token_env": "K", "mining_user_name": username})
    if pool == "viabtc":
        return ViabtcSettings.model_validate({**raw, "api_key_env": "K", "secret_key_env": "S"})
    return AntpoolSettings.model_validate({**raw, "api_key_env": "K", "api_secret_env": "S", "user_id": username})


SOURCES: dict[str, Any] = {
    "braiins": BraiinsSource,
    "emcd": EmcdSource,
    "f2pool": F2PoolSource,
    "viabtc": ViabtcSource,
    "antpool": AntpoolSource,
}


@pytest.fixture(scope="module")
def world() -> Scenario:
    return scenario()


@pytest.fixture
def rig_for(world: Scenario, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    servers: list[SimulatorServer] = []

    def make(pool: Pool, *, interval_s: float = 600.0, current_bin: bool = False, **extra: Any) -> Rig:
        """`interval_s`: the poll interval the source is told; `current_bin`: the simulated F2Pool and ViaBTC
        histories also return the bin in progress, with a partial figure."""
        if current_bin:
            monkeypatch.setattr(sim_registry, "F2PoolApi", functools.partial(f2pool_sim.F2PoolApi, current_bin=True))
            monkeypatch.setattr(sim_registry, "ViabtcApi", functools.partial(viabtc_sim.ViabtcApi, current_bin=True))
        clock = Clock(START)
        server = SimulatorServer(world, clock=clock)
        server.start()
        servers.append(server)
        settings = _settings(pool, server.url, **extra)
        _, secret, api_secret = SECRETS[pool]
        settings.resolve_secrets({"K": secret, "S": api_secret or ""}, tmp_path, Redactor())
        session = RecordingSession()
        http = HttpClient(session, redact=Redactor())
        ctx = SourceContext(
            http=http, clock=clock, log=logging.getLogger("test"), target="a", coin="BTC", interval_s=interval_s
        )
        return Rig(pool, SOURCES[pool](settings, ctx), server, clock, session, http)

    yield make
    for server in servers:
        server.stop()


def _day(ts: int) -> date:
    return datetime.fromtimestamp(ts, UTC).date()


def _credited_days(snapshot: PoolAccountSnapshot) -> set[date]:
    return {_day(e.credited_at) for e in snapshot.earnings}


def _expected_credit_days(world: Scenario, pool: Pool, since: int, now: int) -> set[date]:
    """The UTC days mined from `since` on whose credit the pool shows by `now` (as each pool dates them)."""
    account = world.account(pool, SECRETS[pool][0])
    days = {e.day for e in truth.daily_earnings(world, account, now) if e.day_start_ts >= since - DAY}
    return {d for d in days if d >= _day(since)}


def _run_outage(rig: Rig, *, collector_down: bool) -> tuple[int, int]:
    """Poll normally, then lose the pool (or the collector) for OUTAGE_DAYS, then poll once more.

    Returns (the last successful poll before the outage, the first poll after it). With the collector up, it
    keeps polling every six hours and every poll fails.
    """
    rig.ok(START)
    last_ok = START + 600
    rig.ok(last_ok)
    back = last_ok + OUTAGE_DAYS * DAY + 2 * HOUR
    if not collector_down:
        rig.outage("server_error")
        for at in range(last_ok + 6 * HOUR, back, 6 * HOUR):
            assert isinstance(rig.poll(at), SourceError)
        rig.outage(None)
    rig.session.take()
    return last_ok, back


# --- rewards and payouts -------------------------------------------------------------------------------------


@pytest.mark.parametrize("collector_down", [False, True], ids=["pool-down", "collector-down"])
@pytest.mark.parametrize("pool", POOLS)
def test_the_first_poll_after_an_outage_brings_the_outage_days_credits(
    rig_for: Any, world: Scenario, pool: Pool, collector_down: bool
) -> None:
    rig: Rig = rig_for(pool)
    last_ok, back = _run_outage(rig, collector_down=collector_down)

    snapshot = rig.ok(back)

    missing = _expected_credit_days(world, pool, last_ok, back) - _credited_days(snapshot)
    assert len(_expected_credit_days(world, pool, last_ok, back)) >= OUTAGE_DAYS
    assert missing == set()
    account = world.account(pool, SECRETS[pool][0])
    sent = {p.txid for p in truth.payout_schedule(world, account, back) if p.sent_at and p.sent_at > last_ok}
    assert len(sent) >= OUTAGE_DAYS // 2 - 1
    assert sent <= {p.txid for p in snapshot.payouts}


def _span_days(query: dict[str, str]) -> int:
    return (date.fromisoformat(query["end_date" if "end_date" in query else "to"]) - _start_date(query)).days


def _start_date(query: dict[str, str]) -> date:
    return date.fromisoformat(query["start_date" if "start_date" in query else "from"])


def test_f2pool_asks_for_the_bills_since_the_last_read_plus_the_recent_window(rig_for: Any) -> None:
    rig: Rig = rig_for("f2pool")
    rig.ok(START)
    (first,) = rig.requests_to("/v2/assets/transactions/list")
    assert first.body["end_time"] - first.body["start_time"] == 40 * DAY  # history_days on the first poll
    rig.ok(START + 600)
    (normal,) = rig.requests_to("/v2/assets/transactions/list")
    assert normal.body["start_time"] == START - 3 * DAY  # recent_days before the last read
    rig.outage("server_error")
    assert isinstance(rig.poll(START + 600 + 5 * DAY), SourceError)
    rig.outage(None)
    rig.session.take()

    rig.ok(START + 600 + OUTAGE_DAYS * DAY + 2 * HOUR)

    (after,) = rig.requests_to("/v2/assets/transactions/list")
    # Back to recent_days before the last successful read: every bill a missed poll would have read.
    assert after.body["start_time"] == START + 600 - 3 * DAY
    assert after.body["end_time"] - after.body["start_time"] == (3 + OUTAGE_DAYS) * DAY + 2 * HOUR


def test_f2pool_caps_the_reach_at_history_days(rig_for: Any) -> None:
    rig: Rig = rig_for("f2pool", history_days=5)
    rig.ok(START)
    rig.session.take()

    rig.ok(START + 20 * DAY)

    (after,) = rig.requests_to("/v2/assets/transactions/list")
    assert after.body["end_time"] - after.body["start_time"] == 5 * DAY


@pytest.mark.parametrize(
    ("pool", "fragments"),
    [("braiins", ("/rewards/", "/payouts/")), ("viabtc", ("profit/history", "wallet/payment/history"))],
)
def test_dated_histories_reach_back_over_the_outage(rig_for: Any, pool: Pool, fragments: tuple[str, str]) -> None:
    rig: Rig = rig_for(pool)
    last_ok, back = _run_outage(rig, collector_down=False)

    rig.ok(back)

    seen = rig.session.take()
    for fragment in fragments:
        queries = [s.query for s in seen if fragment in s.path]
        assert queries, fragment
        # Every page asks for the same range; it starts at least the recent window before the last read.
        assert _start_date(queries[0]) <= _day(last_ok) - (date(2026, 1, 4) - date(2026, 1, 1))
        assert _span_days(queries[0]) >= OUTAGE_DAYS


def test_a_normal_poll_keeps_the_short_windows(rig_for: Any) -> None:
    rig: Rig = rig_for("braiins")
    rig.ok(START)
    rig.session.take()

    rig.ok(START + 600)

    spans = {s.path: _span_days(s.query) for s in rig.session.take() if "/rewards/" in s.path or "/payouts/" in s.path}
    assert sorted(spans.values()) == [3, 30]  # reward_days, payout_days


def test_antpool_pages_back_until_it_reaches_the_last_read(rig_for: Any, world: Scenario) -> None:
    rig: Rig = rig_for("antpool", page_size=10, history_pages=6)
    rig.ok(START)
    rig.session.take()
    rig.ok(START + 600)
    normal = [s.query["page"] for s in rig.requests_to("paymentHistoryV2") if s.query["type"] == "recv"]
    assert normal == ["1"]  # a normal poll reads one page
    rig.session.take()
    back = START + 600 + 25 * DAY

    snapshot = rig.ok(back)

    del snapshot
    pages = [s.query["page"] for s in rig.requests_to("paymentHistoryV2") if s.query["type"] == "recv"]
    assert pages == ["1", "2", "3"]  # 25 daily credits in pages of 10: the third page reaches the last read


def test_antpool_stops_at_history_pages(rig_for: Any) -> None:
    rig: Rig = rig_for("antpool", page_size=10, history_pages=2)
    rig.ok(START)
    rig.session.take()

    rig.ok(START + 25 * DAY)

    pages = [s.query["page"] for s in rig.requests_to("paymentHistoryV2") if s.query["type"] == "recv"]
    assert pages == ["1", "2"]


def test_emcd_writes_everything_since_the_last_read(rig_for: Any, world: Scenario) -> None:
    rig: Rig = rig_for("emcd")
    rig.ok(START)
    normal = rig.ok(START + 600)
    assert min(e.credited_at for e in normal.earnings) >= START + 600 - 3 * DAY - DAY
    back = START + 600 + OUTAGE_DAYS * DAY

    snapshot = rig.ok(back)

    assert min(e.credited_at for e in snapshot.earnings) >= START + 600 - 3 * DAY - DAY
    assert _expected_credit_days(world, "emcd", START + 600, back) <= _credited_days(snapshot) | {
        _day(e.credited_at - DAY) for e in snapshot.earnings
    }


# --- hashrate history ----------------------------------------------------------------------------------------

HISTORY = {"f2pool": "/v2/hash_rate/history", "viabtc": "hashrate/chart"}


def _history_span_s(pool: str, seen: Seen) -> int:
    if pool == "f2pool":
        assert seen.body["interval"] == 600
        return int(seen.body["duration"])
    assert seen.query["interval"] == "min"
    return int(seen.query["period"]) * 600


@pytest.mark.parametrize("pool", ["f2pool", "viabtc"])
def test_the_first_poll_reads_backfill_hours_of_hashrate_history(rig_for: Any, world: Scenario, pool: Pool) -> None:
    rig: Rig = rig_for(pool)

    snapshot = rig.ok(START)

    (seen,) = rig.requests_to(HISTORY[pool])
    assert _history_span_s(pool, seen) == 24 * HOUR
    assert [s.at for s in snapshot.hashrate_history] == list(range(START - 24 * HOUR, START, 600))
    assert {s.window_s for s in snapshot.hashrate_history} == {600}
    account = world.account(pool, SECRETS[pool][0])
    for sample in snapshot.hashrate_history[::20]:
        exact = truth.account_hashes(world, account, sample.at, sample.at + 600) / 600
        assert sample.hashrate_hs == pytest.approx(exact, rel=1e-9, abs=1.0)


@pytest.mark.parametrize("pool", ["f2pool", "viabtc"])
def test_a_normal_poll_reads_no_hashrate_history(rig_for: Any, pool: Pool) -> None:
    rig: Rig = rig_for(pool)
    rig.ok(START)
    for k in range(1, 4):
        rig.session.take()
        assert rig.ok(START + k * 600).hashrate_history == ()
        assert rig.requests_to(HISTORY[pool]) == []


@pytest.mark.parametrize("pool", ["f2pool", "viabtc"])
def test_a_pool_outage_is_filled_from_the_pools_history(rig_for: Any, pool: Pool) -> None:
    rig: Rig = rig_for(pool)
    rig.ok(START)
    last_ok = START + 600
    rig.ok(last_ok)
    rig.outage("server_error")
    for at in range(last_ok + 600, last_ok + 3 * HOUR, 600):  # the collector keeps polling; the pool fails
        assert isinstance(rig.poll(at), SourceError)
    rig.outage(None)
    rig.session.take()
    back = last_ok + 3 * HOUR

    snapshot = rig.ok(back)

    (seen,) = rig.requests_to(HISTORY[pool])
    assert _history_span_s(pool, seen) == 3 * HOUR + 600  # the gap and the bin the last poll fell in
    bins = [s.at for s in snapshot.hashrate_history]
    assert bins == list(range(last_ok - 600, back, 600))  # every bin of the outage, from the pool's record
    rig.session.take()
    assert rig.ok(back + 600).hashrate_history == ()  # filled: the next poll is a normal one


@pytest.mark.parametrize("pool", ["f2pool", "viabtc"])
def test_a_collector_outage_beyond_backfill_hours_is_filled_only_that_far(rig_for: Any, pool: Pool) -> None:
    rig: Rig = rig_for(pool, backfill_hours=6)
    rig.ok(START)
    rig.ok(START + 600)
    rig.session.take()
    back = START + 600 + 30 * HOUR  # no poll for 30 hours

    snapshot = rig.ok(back)

    (seen,) = rig.requests_to(HISTORY[pool])
    assert _history_span_s(pool, seen) == 6 * HOUR
    bins = [s.at for s in snapshot.hashrate_history]
    assert bins == list(range(back - 6 * HOUR, back, 600))
    assert min(bins) >= back - 6 * HOUR  # older bins stay missing


@pytest.mark.parametrize("pool", ["f2pool", "viabtc"])
def test_a_failed_history_read_is_retried_on_the_next_poll(rig_for: Any, pool: Pool) -> None:
    rig: Rig = rig_for(pool)
    rig.session.broken.add(HISTORY[pool])
    first = rig.poll(START)
    assert isinstance(first, PoolAccountSnapshot)
    assert [issue.section for issue in first.issues] == ["hashrate_history"]
    assert first.hashrate_history == ()  # nothing made up
    rig.session.broken.clear()
    rig.session.take()

    snapshot = rig.ok(START + 600)

    assert len(rig.requests_to(HISTORY[pool])) == 1
    assert [s.at for s in snapshot.hashrate_history] == list(range(START + 600 - 24 * HOUR, START + 600, 600))


# --- the poll interval is given, not guessed (review of issue 7) -------------------------------------------------


@pytest.mark.parametrize("pool", ["f2pool", "viabtc"])
def test_one_short_step_does_not_make_every_later_poll_a_gap_poll(rig_for: Any, pool: Pool) -> None:
    rig: Rig = rig_for(pool, interval_s=60)
    rig.ok(START)
    rig.ok(START + 1)  # a late run followed by an on-time one (or a clock step): one 1 s step
    rig.session.take()

    for k in range(1, 6):  # then the schedule's 60 s polls
        assert rig.ok(START + 1 + 60 * k).hashrate_history == ()

    assert rig.requests_to(HISTORY[pool]) == []


@pytest.mark.parametrize("pool", ["f2pool", "viabtc"])
def test_a_single_five_hour_stall_is_backfilled(rig_for: Any, pool: Pool) -> None:
    rig: Rig = rig_for(pool, interval_s=60)
    rig.ok(START)
    rig.session.take()
    back = START + 5 * HOUR  # the only step the source has seen: a stall, not the interval

    snapshot = rig.ok(back)

    (seen,) = rig.requests_to(HISTORY[pool])
    assert _history_span_s(pool, seen) == 5 * HOUR + 600
    assert [s.at for s in snapshot.hashrate_history] == list(range(START - 600, back, 600))


# --- only complete bins are written ---------------------------------------------------------------------------


@pytest.mark.parametrize("pool", ["f2pool", "viabtc"])
def test_the_bin_in_progress_is_not_written(rig_for: Any, pool: Pool) -> None:
    rig: Rig = rig_for(pool, current_bin=True)
    now = START + 5 * HOUR + 123  # 2 min into a bin: the pool returns that bin with a partial figure

    snapshot = rig.ok(now)

    aligned = now - 123
    bins = [s.at for s in snapshot.hashrate_history]
    assert bins == list(range(aligned - 24 * HOUR + 600, aligned, 600))  # up to the last complete bin
    assert all(s.at + s.window_s <= now for s in snapshot.hashrate_history)


def _shifted(shift: Callable[[int, int], int], rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**row, "timestamp": shift(i, row["timestamp"])} for i, row in enumerate(rows)]


@pytest.mark.parametrize("pool", ["f2pool", "viabtc"])
@pytest.mark.parametrize(
    ("case", "shift"),
    [
        ("outside-the-window", lambda i, at: at - 7 * DAY),
        ("not-600-s-apart", lambda i, at: at + 300 * (i % 2)),
    ],
)
def test_a_history_that_does_not_answer_the_question_is_an_issue_and_is_asked_again(
    rig_for: Any, monkeypatch: pytest.MonkeyPatch, pool: Pool, case: str, shift: Callable[[int, int], int]
) -> None:
    module: Any = f2pool_sim if pool == "f2pool" else viabtc_sim
    name = "hash_rate_history" if pool == "f2pool" else "chart_rows"
    real = getattr(module, name)
    monkeypatch.setattr(module, name, lambda *args: _shifted(shift, real(*args)))
    rig: Rig = rig_for(pool)

    first = rig.poll(START)

    assert isinstance(first, PoolAccountSnapshot)
    assert [(i.section, i.kind) for i in first.issues] == [("hashrate_history", "bad_response")], case
    assert first.hashrate_history == ()
    monkeypatch.setattr(module, name, real)
    rig.session.take()
    assert len(rig.ok(START + 600).hashrate_history) == 24 * 6  # the gap stayed open: asked again
    assert len(rig.requests_to(HISTORY[pool])) == 1


# --- a poll whose points could not be built gives its bookmarks back --------------------------------------------


@dataclass
class BrokenLinesTarget:
    """A pool account whose snapshot fails to become line protocol once (as a LineProtocolError would)."""

    source: Any
    broken: bool = True
    key: str = "g1/f2pool/a"
    health_tags: tuple[str, str, str] = ("g1", "f2pool", "a")
    interval_s: float = 600.0
    timeout_s: float = 30.0

    def start_poll(self) -> None:
        pass

    def collect(self) -> PoolAccountSnapshot:
        snapshot: PoolAccountSnapshot = self.source.collect()
        return snapshot

    def lines(self, snapshot: PoolAccountSnapshot) -> list[str]:
        if self.broken:
            raise LineProtocolError("a value that cannot be written (test)")
        return []

    def rollback(self) -> None:
        self.source.rollback()


@pytest.mark.parametrize("pool", ["f2pool", "viabtc"])
def test_a_poll_that_fails_to_build_its_points_is_backfilled_by_the_next(rig_for: Any, pool: Pool) -> None:
    rig: Rig = rig_for(pool)
    rig.ok(START)
    rig.ok(START + 600)
    rig.session.take()
    target = BrokenLinesTarget(rig.source)
    runner = Runner(MemorySink(), StateStore(), clock=rig.clock, log=logging.getLogger("test"))
    stalled = START + 600 + 5 * HOUR

    rig.clock.t = stalled
    rig.http.start_poll(30.0)
    result = runner.poll(target)

    assert (result.success, result.error_kind) == (False, "bad_response")
    assert len(rig.requests_to(HISTORY[pool])) == 1  # the history was read, but never became points
    target.broken = False
    rig.session.take()

    snapshot = rig.ok(stalled + 600)

    (seen,) = rig.requests_to(HISTORY[pool])
    assert _history_span_s(pool, seen) == 5 * HOUR + 2 * 600  # still from the last poll whose points were built
    assert snapshot.hashrate_history[0].at == START


def test_a_failed_build_also_gives_the_dated_histories_back(rig_for: Any) -> None:
    rig: Rig = rig_for("f2pool")
    rig.ok(START)
    target = BrokenLinesTarget(rig.source)
    runner = Runner(MemorySink(), StateStore(), clock=rig.clock, log=logging.getLogger("test"))
    rig.clock.t = START + 2 * DAY
    rig.http.start_poll(30.0)
    assert not runner.poll(target).success
    rig.session.take()

    rig.ok(START + 2 * DAY + 600)

    (bills,) = rig.requests_to("/v2/assets/transactions/list")
    assert bills.body["start_time"] == START - 3 * DAY  # recent_days before the last read whose points were built


@pytest.mark.parametrize("pool", ["f2pool", "viabtc"])
def test_the_first_poll_after_a_429_defers_the_history_read_to_the_next(rig_for: Any, pool: Pool) -> None:
    rig: Rig = rig_for(pool)
    rig.ok(START)
    rig.ok(START + 600)
    rig.outage("rate_limit")
    for at in range(START + 1200, START + 3 * HOUR, 600):
        assert isinstance(rig.poll(at), RateLimited)
    rig.outage(None)
    rig.session.take()
    back = START + 3 * HOUR

    assert rig.ok(back).hashrate_history == ()  # right after the backoff: the normal requests only
    assert rig.requests_to(HISTORY[pool]) == []
    snapshot = rig.ok(back + 600)  # the next poll fills the gap, from the last recorded poll

    (seen,) = rig.requests_to(HISTORY[pool])
    assert _history_span_s(pool, seen) == 3 * HOUR + 600
    assert [s.at for s in snapshot.hashrate_history] == list(range(START, back + 600, 600))


def test_a_pool_target_hands_the_rollback_to_its_source() -> None:
    calls: list[str] = []

    class Source:
        def rollback(self) -> None:
            calls.append("rollback")

    PoolTarget.rollback(cast(Any, SimpleNamespace(source=Source())))
    PoolTarget.rollback(cast(Any, SimpleNamespace(source=object())))  # a source without bookmarks: nothing to do

    assert calls == ["rollback"]


def test_emcd_writes_again_what_a_poll_that_failed_to_build_its_points_had_read(rig_for: Any) -> None:
    rig: Rig = rig_for("emcd")
    rig.ok(START)
    target = BrokenLinesTarget(rig.source)
    runner = Runner(MemorySink(), StateStore(), clock=rig.clock, log=logging.getLogger("test"))
    rig.clock.t = START + 10 * DAY
    rig.http.start_poll(30.0)
    assert not runner.poll(target).success

    snapshot = rig.ok(START + 10 * DAY + 600)

    # EMCD sends its whole history; the list is written back to recent_days (3) before the last read whose points
    # were built (START), not before the failed poll's read, so the credits of days 1..7 are written again.
    oldest = min(e.credited_at for e in snapshot.earnings)
    assert oldest < START + 7 * DAY, "the failed poll's read moved the bookmark: its credits were never written"
