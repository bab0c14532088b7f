"""The runner: one poll of one target, with a scripted fake source and an in-memory sink."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import ClassVar

import pytest
import requests
from pydantic import BaseModel

from collector.adapters.base import SourceContext
from collector.adapters.http import HttpClient
from collector.config import Group, GroupFile, PoolAccount
from collector.errors import AuthFailed, BadResponse, NoData, RateLimited, SourceError, Unreachable
from collector.models import Payout, PoolAccountSnapshot, SectionIssue, WorkerStats
from collector.ratelimit import RateBudget
from collector.redact import Redactor
from collector.runner import PollResult, Runner
from collector.secrets import WithSecrets
from collector.sinks.base import MemorySink
from collector.state import StateStore
from collector.targets import PoolTarget
from unit.support import Point, parse_line

INTERVAL = 60.0
LOGGER = "minewatch.test.runner"


class FakeSettings(WithSecrets):
    """No keys, no secrets."""


class ScriptedSource:
    """A source whose `collect()` returns or raises the next scripted outcome."""

    kind: ClassVar[str] = "fake"
    settings_model: ClassVar[type[BaseModel]] = FakeSettings
    default_budget: ClassVar[RateBudget] = RateBudget(per_minute=60, burst=10, scope="host")

    def __init__(self, settings: BaseModel, ctx: SourceContext | None = None) -> None:
        self.script: list[PoolAccountSnapshot | BaseException] = []
        self.calls = 0

    def collect(self) -> PoolAccountSnapshot:
        self.calls += 1
        outcome = self.script.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    @staticmethod
    def budget_key(settings: BaseModel) -> str:
        return "fake"

    @staticmethod
    def requests_per_poll(settings: BaseModel) -> int:
        return 1


class Harness:
    """A runner polling one fake target on a clock the test sets."""

    def __init__(self, permits: list[dict[str, object]] | None = None) -> None:
        default = [{"version": "p1", "valid_from": "2020-01-01", "coins": ["BTC"], "pools": ["fake"]}]
        spec = GroupFile.model_validate(
            {
                "id": "g1",
                "legal_name": "OOO G1",
                "inn": "3811000009",
                "register_record": "7102500009001",
                "sites": [{"id": "s1", "region": "RU-IRK", "timezone": "Asia/Irkutsk"}],
                "permits": permits or default,
            }
        )
        self.source = ScriptedSource(FakeSettings())
        account = PoolAccount("g1", "acc", "fake", None, "BTC", FakeSettings())
        http = HttpClient(requests.Session(), redact=Redactor())
        group = Group(spec, (account,), Path("g1.toml"))
        self.target = PoolTarget(group, account, self.source, http, interval_s=INTERVAL, timeout_s=20.0)
        self.sink = MemorySink()
        self.state = StateStore()
        self.now = 0.0
        self.runner = Runner(
            self.sink,
            self.state,
            clock=lambda: self.now,
            log=logging.getLogger(LOGGER),
            monotonic=lambda: 5.0,
        )

    def poll(
        self, at: float, outcome: PoolAccountSnapshot | BaseException | None = None
    ) -> tuple[PollResult, list[Point]]:
        """Poll at time `at` (the outcome is what the source returns if it is called); return the new points."""
        self.now = at
        if outcome is not None:
            self.source.script.append(outcome)
        before = len(self.sink.lines)
        result = self.runner.poll(self.target)
        return result, [parse_line(line) for line in self.sink.lines[before:]]


def snapshot(at: float, **fields: object) -> PoolAccountSnapshot:
    values: dict[str, object] = {"hashrate_hs": 1.0e15, "workers_active": 3, "balance_sats": 830_608}
    return PoolAccountSnapshot(observed_at=int(at), coin="BTC", **(values | fields))  # type: ignore[arg-type]


def only_health(points: list[Point]) -> Point:
    assert [p.measurement for p in points] == ["source_health"]
    return points[0]


def test_success_writes_the_snapshot_and_a_success_health_point() -> None:
    harness = Harness()

    result, points = harness.poll(1000.0, snapshot(1000.0, workers=(WorkerStats("rig1", True, 1.0e14),)))

    assert result.success
    assert result.error_kind is None
    assert [p.measurement for p in points] == ["pool_account", "pool_worker", "source_health"]
    account, _, health = points
    assert account.tags == {"group_id": "g1", "pool": "fake", "account": "acc", "coin": "BTC"}
    assert account.fields == {"hashrate_hs": "1000000000000000.0", "workers_active": "3i", "balance_sats": "830608i"}
    assert health.tags == {"group_id": "g1", "kind": "fake", "target": "acc"}
    assert health.fields["success"] == "1i"
    assert health.fields["stale"] == "0i"
    assert "error_kind" not in health.fields
    assert health.timestamp == 1000 * 1_000_000_000


def test_a_source_error_writes_only_a_stale_health_point_with_the_age_of_the_last_data() -> None:
    harness = Harness()
    harness.poll(1000.0, snapshot(1000.0))

    result, points = harness.poll(1120.0, Unreachable("connection refused"))

    assert (result.success, result.error_kind) == (False, "unreachable")
    health = only_health(points)  # no pool_account point: a failure is never written as zeros
    assert health.fields["success"] == "0i"
    assert health.fields["stale"] == "1i"
    assert health.fields["error_kind"] == '"unreachable"'
    assert float(health.fields["data_age_s"]) == 120.0
    assert harness.state.snapshot(harness.target.key).observed_at == 1000  # the last good data is kept


def test_a_failure_before_any_success_has_no_data_age() -> None:
    harness = Harness()

    _, points = harness.poll(1000.0, AuthFailed("401"))

    health = only_health(points)
    assert "data_age_s" not in health.fields
    assert health.fields["error_kind"] == '"auth"'


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (Unreachable("x"), "unreachable"),
        (AuthFailed("x"), "auth"),
        (BadResponse("x"), "bad_response"),
        (NoData("x"), "no_data"),
        (RateLimited("x", retry_after=None), "rate_limited"),
    ],
)
def test_each_source_error_is_reported_by_its_kind(error: SourceError, kind: str) -> None:
    result, points = Harness().poll(1000.0, error)

    assert result.error_kind == kind
    assert only_health(points).fields["error_kind"] == f'"{kind}"'


@pytest.mark.parametrize("bug", [ZeroDivisionError("division by zero"), KeyError("hashrate"), TypeError("None")])
def test_a_bug_in_a_source_is_counted_as_internal_and_does_not_propagate(
    bug: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    harness = Harness()
    harness.poll(1000.0, snapshot(1000.0))

    result, points = harness.poll(1060.0, bug)

    assert (result.success, result.error_kind) == (False, "internal")
    health = only_health(points)
    assert health.fields["error_kind"] == '"internal"'
    assert float(health.fields["data_age_s"]) == 60.0
    assert any(record.exc_info for record in caplog.records)  # the bug is logged with its traceback


def test_retry_after_longer_than_the_interval_skips_the_next_poll() -> None:
    harness = Harness()
    harness.poll(0.0, RateLimited("429", retry_after=90.0))

    skipped, points = harness.poll(60.0, snapshot(60.0))

    assert (skipped.success, skipped.error_kind) == (False, "backoff")
    assert harness.source.calls == 1  # the pool was not asked
    health = only_health(points)
    assert health.fields["error_kind"] == '"backoff"'
    assert health.fields["stale"] == "1i"

    resumed, _ = harness.poll(120.0)
    assert resumed.success
    assert harness.source.calls == 2


def test_retry_after_shorter_than_the_interval_skips_nothing() -> None:
    harness = Harness()
    harness.poll(0.0, RateLimited("429", retry_after=30.0))

    result, _ = harness.poll(60.0, snapshot(60.0))

    assert result.success
    assert harness.source.calls == 2


def test_429s_without_retry_after_skip_2_then_4_intervals_whatever_the_scheduling_jitter() -> None:
    harness = Harness()
    harness.poll(0.0, RateLimited("429"))
    skipped, _ = harness.poll(60.9)  # a run late by 0.9 s is still inside the backoff
    harness.poll(119.2, RateLimited("429"))  # ... and one early relative to that is still let through

    outcomes = [harness.poll(at)[0].error_kind for at in (180.0, 240.0, 300.0)]
    result, _ = harness.poll(359.5, snapshot(359.5))

    assert skipped.error_kind == "backoff"
    assert outcomes == ["backoff"] * 3
    assert result.success
    assert harness.source.calls == 3


def test_a_failure_is_logged_once_and_the_recovery_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    harness = Harness()
    harness.poll(0.0, Unreachable("down"))
    harness.poll(60.0, Unreachable("down"))
    harness.poll(120.0, snapshot(120.0))
    harness.poll(180.0, snapshot(180.0))

    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    recoveries = [r for r in caplog.records if "recovered" in r.getMessage()]
    assert len(warnings) == 1
    assert len(recoveries) == 1
    assert recoveries[0].levelno == logging.INFO


def test_a_partial_poll_succeeds_and_names_the_failed_part() -> None:
    harness = Harness()

    issue = SectionIssue("payouts", "bad_response", "missing 'txid'")
    result, points = harness.poll(1000.0, snapshot(1000.0, issues=(issue,)))

    assert result.success
    health = points[-1]
    assert health.fields["success"] == "1i"
    assert health.fields["error_kind"] == '"bad_response"'


def test_a_payout_is_judged_by_the_permit_in_force_when_it_was_made() -> None:
    """A permit version that drops an address must not rewrite the payouts made under the earlier one."""
    old_address = "bc1qgwxdmj920kncmw8508t78axs2z5qra387xje0m"
    new_address = "bc1q3ecf4tq03mvhng2wm6f872l42l3gut2m38sn4u"
    harness = Harness(
        permits=[
            {
                "version": "2025",
                "valid_from": "2025-01-01",
                "valid_to": "2025-12-31",
                "coins": ["BTC"],
                "pools": ["fake"],
                "payout_addresses": [old_address],
            },
            {
                "version": "2026",
                "valid_from": "2026-01-01",
                "coins": ["BTC"],
                "pools": ["fake"],
                "payout_addresses": [new_address],
            },
        ]
    )
    in_2025 = 1_750_000_000  # 2025-06-15
    in_2026 = 1_780_000_000  # 2026-05-28
    payouts = (
        Payout(in_2025, 1000, old_address, "aa" * 32, "confirmed", "p-2025"),
        Payout(in_2026, 2000, old_address, "bb" * 32, "confirmed", "p-2026"),
    )

    _, points = harness.poll(float(in_2026 + 60), snapshot(float(in_2026 + 60), payouts=payouts))

    declared = {p.fields["amount_sats"]: p.fields["declared"] for p in points if p.measurement == "pool_payout"}
    assert declared == {"1000i": "1i", "2000i": "0i"}
