"""`minewatch collect --once --print` against the demo scenario, served by a real simulator on a free port.

stdout must be line protocol only, every demo group and account must be there with hashrates in H/s, a failed
source must leave a `source_health` point and nothing else, and no secret may reach stdout or stderr.
"""

from __future__ import annotations

import math
import re
import time

from cli_support import (
    DEMO_SECRETS,
    CliRunner,
    Finished,
    MakeConfig,
    Point,
    account_of,
    by_measurement,
    number,
    parse_output,
)

from simulator import truth
from simulator.scenario import Fault, Pool, Scenario
from simulator.server import SimulatorServer

PERIODIC = ("pool_account", "pool_worker", "permit", "site", "source_health")


def assert_no_secret(run: Finished) -> None:
    for secret in DEMO_SECRETS:
        assert secret not in run.out, f"a demo secret is on stdout of {run.args}"
        assert secret not in run.err, f"a demo secret is on stderr of {run.args}"


def accounts_with(points: list[Point], measurement: str) -> set[tuple[str, str]]:
    """(group_id, account) of every point of `measurement` (source_health names the account by `target`)."""
    if measurement == "source_health":
        return {(p.tags["group_id"], account_of(p)) for p in by_measurement(points, measurement)}
    return {(p.tags["group_id"], p.tags["account"]) for p in by_measurement(points, measurement)}


def health(points: list[Point]) -> dict[tuple[str, str], Point]:
    return {(p.tags["group_id"], account_of(p)): p for p in by_measurement(points, "source_health")}


def test_print_writes_line_protocol_for_every_demo_group(cli: CliRunner, make_config: MakeConfig) -> None:
    config = make_config()
    run = cli.run("collect", "--once", "--print", "-c", str(config.main))
    now = time.time()

    assert run.code == 0, str(run)
    points = parse_output(run.out)  # raises on the first line that is not line protocol
    assert points, str(run)
    for point in points:
        assert 10**18 <= point.timestamp < 10**19, f"not nanoseconds: {point}"
        if point.measurement in PERIODIC:
            assert point.timestamp % 10**9 == 0, f"periodic sample off a whole second: {point}"
            assert abs(point.timestamp / 1e9 - now) < 120, f"not stamped with the poll time: {point}"

    assert accounts_with(points, "pool_account") == config.accounts
    assert set(health(points)) == config.accounts
    for point in health(points).values():
        assert (point.fields["success"], point.fields["stale"]) == (1, 0), point
        assert type(point.fields["success"]) is int, f"success is not an integer field: {point}"
    for group in config.groups.values():
        assert any(p.tags["group_id"] == group.id for p in by_measurement(points, "permit")), group.id
        sites = {p.tags["site"] for p in by_measurement(points, "site") if p.tags["group_id"] == group.id}
        assert sites == set(group.sites), group.id
    assert_no_secret(run)
    assert "Traceback" not in run.err


def test_print_hashrates_are_floats_in_hashes_per_second(
    cli: CliRunner, make_config: MakeConfig, scenario: Scenario
) -> None:
    run = cli.run("collect", "--once", "--print", "-c", str(make_config().main))
    assert run.code == 0, str(run)
    points = parse_output(run.out)

    for point in points:
        for name, value in point.fields.items():
            if name.endswith("_hs"):
                assert isinstance(value, float), f"{name} is not a float: {point}"
    accounts = {(p.tags["pool"], p.tags["account"]): p for p in by_measurement(points, "pool_account")}
    for sim_account in scenario.accounts:
        reported = accounts[(sim_account.pool, sim_account.username)]
        t = reported.timestamp // 10**9
        # Units: within 25 % of the nominal rate of the online workers (a Th/s or Gh/s slip is 1000x off).
        nominal = sum(w.nominal_ths for w in sim_account.workers if truth.is_online(w, t)) * 1e12
        assert 0.75 * nominal < number(reported, "hashrate_hs") < 1.25 * nominal, reported
        # The account figure matches the sum of its workers (a dead worker reports no hashrate at all).
        workers = [
            p
            for p in by_measurement(points, "pool_worker")
            if (p.tags["pool"], p.tags["account"]) == (sim_account.pool, sim_account.username)
        ]
        worker_sum = sum(number(w, "hashrate_hs") for w in workers if "hashrate_hs" in w.fields)
        assert len(workers) == len(sim_account.workers), reported
        assert math.isclose(worker_sum, number(reported, "hashrate_hs"), rel_tol=1e-3), reported

    baikal = accounts[("braiins", "baikal")]
    expected = truth.account_windows(scenario, scenario.account("braiins", "baikal"), baikal.timestamp // 10**9)
    # The simulator's clock may have read a second later than the collector's: 1e12 H/s is ample for that.
    assert abs(number(baikal, "hashrate_hs") - expected.h5m) < 1e12
    assert abs(number(baikal, "hashrate_1h_hs") - expected.h1h) < 1e12
    assert abs(number(baikal, "hashrate_24h_hs") - expected.h24h) < 1e12


def test_print_group_selects_one_group(cli: CliRunner, make_config: MakeConfig) -> None:
    config = make_config()
    run = cli.run("collect", "--once", "--print", "--group", "baikal", "-c", str(config.main))

    assert run.code == 0, str(run)
    points = parse_output(run.out)
    assert {p.tags.get("group_id") for p in points} == {"baikal"}
    assert accounts_with(points, "pool_account") == {("baikal", a) for a in config.groups["baikal"].accounts}
    assert accounts_with(points, "source_health") == {("baikal", a) for a in config.groups["baikal"].accounts}


def test_collect_usage_errors_exit_2(cli: CliRunner, make_config: MakeConfig) -> None:
    config = make_config()
    unknown_group = cli.run("collect", "--once", "--print", "--group", "nosuch", "-c", str(config.main))
    without_once = cli.run("collect", "--print", "-c", str(config.main))

    assert unknown_group.code == 2, str(unknown_group)
    assert "nosuch" in unknown_group.err
    assert unknown_group.out == ""
    assert without_once.code == 2, str(without_once)
    assert "--once" in without_once.err
    assert without_once.out == ""
    for run in (unknown_group, without_once):
        assert "Traceback" not in run.err


# (pool, group, account) -> (simulator fault, the error kind minewatch must report)
FAULTS: dict[tuple[Pool, str, str], tuple[Fault, str]] = {
    ("braiins", "uralhash", "uralhash"): ("auth", "auth"),
    ("emcd", "tverpower", "tverpower"): ("malformed", "bad_response"),
    ("braiins", "baikal", "baikal"): ("server_error", "server_error"),
}


def test_failed_sources_exit_1_with_health_points_only(
    cli: CliRunner, make_config: MakeConfig, simulator: SimulatorServer
) -> None:
    config = make_config()
    for (pool, _, account), (fault, _) in FAULTS.items():
        simulator.set_fault(pool, account, fault)
    run = cli.run("collect", "--once", "--print", "-c", str(config.main))

    assert run.code == 1, str(run)
    points = parse_output(run.out)
    failed = {(group, account) for _, group, account in FAULTS}
    for (_, group, account), (_, kind) in FAULTS.items():
        line = re.compile(rf"\b{group}/(\w+/)?{account}\b.*\b{kind}\b")
        assert any(line.search(text) for text in run.err.splitlines()), f"stderr does not name {group}/{account}"
        point = health(points)[(group, account)]
        assert (point.fields["success"], point.fields["stale"], point.fields["error_kind"]) == (0, 1, kind)
    for measurement in ("pool_account", "pool_worker", "pool_earning", "pool_payout", "pool_settings"):
        assert not accounts_with(points, measurement) & failed, f"{measurement} written for a failed source"
    assert accounts_with(points, "pool_account") == config.accounts - failed
    assert "Traceback" not in run.err
    assert_no_secret(run)  # tverpower's EMCD key travels in the URL path that the error message shows
