"""Every pool kind × every injected fault: the real collector against the simulator, its points held to the truth.

One faulty simulator and one healthy twin (the same scenario with every fault removed, hence the same answers
at the same simulated time) serve the whole module; the collector polls them a few times with different
timeouts and the tests read what it wrote (a MemorySink: the line protocol it would send to InfluxDB).

What must hold for every fault: no exception escapes, the poll is counted in a `source_health` point with the
fault's `error_kind`, and no `pool_*` point carries a value a healthy poll would not have written. For
`wrong_types` and `missing_fields` the collector may either fail the poll as a bad response or write what it
could still read, each value exactly as the healthy twin's, with the partial poll's issue named in
`source_health`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from demo_config import ROOT
from scenario_support import FAULT_KINDS
from unit.support import Point, parse_line

from collector.adapters.registry import source_registry
from collector.app import build_collector, collect_once
from collector.config import load_config
from collector.errors import SOURCE_ERROR_KINDS
from collector.redact import Redactor
from collector.runner import PollResult
from collector.sinks.base import MemorySink
from simulator.configgen import write_config
from simulator.scenario import FAULTS, POOLS, Account, Fault, Scenario, load_scenario
from simulator.server import SimulatorServer

NOW = int(datetime(2026, 11, 25, 12, 0, tzinfo=UTC).timestamp())
LOG = logging.getLogger("test")
HANG_S = 1.5
LATENCY_S = 0.3
POLL_TIMEOUT_S = 1.0  # shorter than HANG_S: a hanging pool is a timeout
SHORT_TIMEOUT_S = 0.2  # shorter than LATENCY_S: a slow pool is a timeout
LONG_TIMEOUT_S = 8.0  # longer than every request of a poll at LATENCY_S each: a slow pool still answers
PERMISSIVE = ("wrong_types", "missing_fields")  # bad_response, or a poll that writes only true values


# --- polling ---


@dataclass(frozen=True)
class Poll:
    """What one collect_once wrote for each account: its result and its points, keyed by account id."""

    results: dict[str, PollResult]
    points: dict[str, list[Point]]


def _account_id(account: Account) -> str:
    return f"{account.pool}-{account.username}"  # simulator.configgen's ids


def _schedule(timeout_s: float) -> str:
    budgets = "".join(
        f"\n[rate_budgets.{pool}]\nrequests_per_minute = 60000\nburst = 1000\n" for pool in POOLS
    )  # the pools' real budgets would delay a poll of 55 accounts on one host past its timeout
    return f"interval_s = 10\ntimeout_s = {timeout_s}\n{budgets}"


def _poll(dest: Path, scenario: Scenario, accounts: Iterable[Account], url: str, timeout_s: float) -> Poll:
    chosen = tuple(accounts)
    path = write_config(
        dest,
        replace(scenario, accounts=chosen),
        simulator_url=url,
        influx_url="http://127.0.0.1:9",  # never contacted: the points go to a MemorySink
        database="unused",
        schedule=_schedule(timeout_s),
    )
    redactor = Redactor()
    config = load_config(path, source_registry(), redactor=redactor)
    sink = MemorySink()
    collector = build_collector(config, source_registry(), sink, redactor=redactor, log=LOG, clock=lambda: NOW)
    results = collect_once(collector)  # an exception escaping the collector fails the whole module here
    ids = {_account_id(a) for a in chosen}
    points: dict[str, list[Point]] = {account_id: [] for account_id in ids}
    for point in map(parse_line, sink.lines):
        owner = point.tags.get("account") or point.tags.get("target")
        if owner in points:
            points[owner].append(point)
    by_id = {result.key.rsplit("/", 1)[1]: result for result in results}
    assert set(by_id) >= ids, sorted(ids - set(by_id))
    return Poll({i: by_id[i] for i in ids}, points)


@dataclass(frozen=True)
class Outcomes:
    """Every poll the module's tests look at."""

    scenario: Scenario
    main: Poll  # every account but the latency ones, POLL_TIMEOUT_S
    slow_client: Poll  # latency accounts, SHORT_TIMEOUT_S
    patient_client: Poll  # latency accounts, LONG_TIMEOUT_S
    healthy: Poll  # every account, against the fault-free twin


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Outcomes]:
    scenario = load_scenario(ROOT / "simulator" / "scenarios" / "faults.toml")
    assert {(a.pool, a.fault) for a in scenario.accounts} >= {(p, f) for p in POOLS for f in FAULTS}
    twin = replace(scenario, accounts=tuple(replace(a, fault=None) for a in scenario.accounts))
    latency = [a for a in scenario.accounts if a.fault == "latency"]
    others = [a for a in scenario.accounts if a.fault != "latency"]
    slow = {"hang_seconds": HANG_S, "latency_seconds": LATENCY_S}
    # The patient client polls the latency accounts a second time at the same fixed clock, so its AntPool
    # nonces repeat the slow client's: it gets its own server, whose nonce memory is fresh.
    with (
        SimulatorServer(scenario, clock=lambda: NOW, **slow) as faulty,
        SimulatorServer(scenario, clock=lambda: NOW, **slow) as faulty_again,
        SimulatorServer(twin, clock=lambda: NOW) as healthy,
    ):
        yield Outcomes(
            scenario=scenario,
            main=_poll(tmp_path_factory.mktemp("main"), scenario, others, faulty.url, POLL_TIMEOUT_S),
            slow_client=_poll(tmp_path_factory.mktemp("slow"), scenario, latency, faulty.url, SHORT_TIMEOUT_S),
            patient_client=_poll(
                tmp_path_factory.mktemp("patient"), scenario, latency, faulty_again.url, LONG_TIMEOUT_S
            ),
            healthy=_poll(tmp_path_factory.mktemp("healthy"), twin, twin.accounts, healthy.url, POLL_TIMEOUT_S),
        )


# --- checks ---


def _health(points: list[Point]) -> Point:
    health = [p for p in points if p.measurement == "source_health"]
    assert len(health) == 1, health
    return health[0]


def _pool_points(points: list[Point]) -> list[Point]:
    return [p for p in points if p.measurement.startswith("pool_")]


def _series(point: Point) -> tuple[str, tuple[tuple[str, str], ...], int]:
    return point.measurement, tuple(sorted(point.tags.items())), point.timestamp


def _made_up(points: list[Point], truth: list[Point]) -> list[str]:
    """Each field of `points` that the healthy poll did not write with the same value for the same series."""
    expected = {_series(p): p.fields for p in truth}
    wrong = []
    for point in points:
        fields = expected.get(_series(point))
        if fields is None:
            wrong.append(f"{point.measurement} {point.tags} @{point.timestamp}: a point the healthy poll lacks")
            continue
        wrong += [
            f"{point.measurement} {point.tags} @{point.timestamp}: {key}={value} (healthy: {fields.get(key)})"
            for key, value in point.fields.items()
            if fields.get(key) != value
        ]
    return wrong


def _contents(points: list[Point]) -> set[tuple[object, ...]]:
    return {(_series(p), tuple(sorted(p.fields.items()))) for p in points}


def _assert_failed_as(poll: Poll, account_id: str, kind: str) -> None:
    result = poll.results[account_id]
    assert (result.success, result.error_kind) == (False, kind), result
    health = _health(poll.points[account_id])
    assert (health.fields["success"], health.fields["stale"]) == ("0i", "1i")
    assert health.fields["error_kind"] == f'"{kind}"'
    assert _pool_points(poll.points[account_id]) == [], "a failed poll wrote pool points"


def test_healthy_twin_answers_every_account(outcomes: Outcomes) -> None:
    """The reference the mutated polls are compared with is complete: every poll succeeded without issue."""
    for account_id, result in outcomes.healthy.results.items():
        assert (result.success, result.error_kind) == (True, None), result
        assert any(p.measurement == "pool_account" for p in outcomes.healthy.points[account_id]), account_id


# Collector bugs these tests found; owned by collector/, not fixed here. strict: an XPASS means the bug is
# fixed and the entry must go.
@pytest.mark.parametrize(("pool", "fault"), [(pool, fault) for pool in POOLS for fault in FAULTS])
def test_fault_is_counted_by_kind_and_writes_no_made_up_value(outcomes: Outcomes, pool: str, fault: Fault) -> None:
    account = next(a for a in outcomes.scenario.accounts if a.pool == pool and a.fault == fault)
    account_id = _account_id(account)
    poll = outcomes.slow_client if fault == "latency" else outcomes.main
    result = poll.results[account_id]
    assert result.error_kind != "internal", f"the collector crashed: {result.message}"
    if fault not in PERMISSIVE:
        _assert_failed_as(poll, account_id, FAULT_KINDS[fault])
        return
    if not result.success:
        _assert_failed_as(poll, account_id, "bad_response")
        return
    written = _pool_points(poll.points[account_id])
    truth = _pool_points(outcomes.healthy.points[account_id])
    assert _made_up(written, truth) == []
    health = _health(poll.points[account_id])
    assert health.fields["success"] == "1i"
    if _contents(written) != _contents(truth):
        # Something the healthy poll wrote is missing: the partial poll must say why.
        assert result.error_kind in SOURCE_ERROR_KINDS, result
        assert health.fields.get("error_kind") == f'"{result.error_kind}"'


@pytest.mark.parametrize("pool", POOLS)
def test_latency_within_the_timeout_is_a_normal_poll(outcomes: Outcomes, pool: str) -> None:
    account = next(a for a in outcomes.scenario.accounts if a.pool == pool and a.fault == "latency")
    account_id = _account_id(account)
    result = outcomes.patient_client.results[account_id]
    assert (result.success, result.error_kind) == (True, None), result
    written = _pool_points(outcomes.patient_client.points[account_id])
    truth = _pool_points(outcomes.healthy.points[account_id])
    assert written
    assert _made_up(written, truth) == []
    assert len(written) == len(truth)
