"""mempool.space: the pure parsers on every golden body and on broken ones, fuzzed, and the adapter end to end
against a loopback `http.server` that serves the golden case folders at mempool's real paths.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pydantic
import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.adapters.base import SourceContext
from collector.adapters.http import HttpClient
from collector.errors import BadResponse, NoData, ServerError
from collector.models import NetworkSnapshot, SectionIssue
from collector.network.mempool import parse
from collector.network.mempool.adapter import MempoolSettings, MempoolSource
from collector.redact import Redactor

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "mempool"
SAMPLE = Path(__file__).resolve().parents[2] / "collector" / "network" / "mempool" / "sample.toml"
NOW = 1_775_300_000


def body(case: str, name: str) -> Any:
    return json.loads((GOLDEN / case / f"{name}.json").read_bytes())


# --- parsers on the golden bodies ---------------------------------------------------------------------------


def test_reference_example_hashrate() -> None:
    current = parse.parse_hashrate(body("reference-example", "hashrate"))
    assert current == parse.NetworkHashrate(difficulty=31251101365711.12, hashrate_hs=2.520332473552123e20)


def test_reference_example_reward_stats_average_is_exact() -> None:
    stats = parse.parse_reward_stats(body("reference-example", "reward_stats"), 100)
    assert stats == parse.RewardStats(
        start_block=736556,
        end_block=736655,
        total_reward_sats=63811748254,
        total_fee_sats=1311748254,
        block_count=100,
        block_reward_sats=638117483,  # 638117482.54 rounded
    )


def test_current_hashrate_zero_means_unknown_not_zero() -> None:
    assert parse.parse_hashrate(body("current-hashrate-zero", "hashrate")) == parse.NetworkHashrate(None, None)
    stats = parse.parse_reward_stats(body("current-hashrate-zero", "reward_stats"), 144)
    assert (stats.block_count, stats.total_reward_sats, stats.block_reward_sats) == (144, 45345678901, 314900548)


def test_only_current_hashrate_zero_keeps_the_difficulty() -> None:
    payload = {"currentHashrate": 0, "currentDifficulty": 136039872848261.3}
    assert parse.parse_hashrate(payload) == parse.NetworkHashrate(136039872848261.3, None)


def test_reward_stats_missing_case_hashrate() -> None:
    current = parse.parse_hashrate(body("reward-stats-missing", "hashrate"))
    assert current == parse.NetworkHashrate(136039872848261.3, 9.735123456789011e20)


def test_malformed_hashrate_case_is_truncated_json() -> None:
    with pytest.raises(json.JSONDecodeError):
        body("malformed-hashrate", "hashrate")


def test_strings_as_numbers_case() -> None:
    current = parse.parse_hashrate(body("strings-as-numbers", "hashrate"))
    assert current == parse.NetworkHashrate(136039872848261.3, 1.0123456789012345e21)
    with pytest.raises(BadResponse, match=r"reward_stats\.totalReward: expected a whole number of satoshis, got 'NaN'"):
        parse.parse_reward_stats(body("strings-as-numbers", "reward_stats"), 144)


@pytest.mark.parametrize(
    ("total", "count", "expected"),
    [
        (10, 4, 2),  # 2.5: half to even
        (14, 4, 4),  # 3.5: half to even
        (0, 1, 0),  # a real zero reward (no subsidy, no fees) is kept
        (parse.MAX_MONEY_SATS, 1, parse.MAX_MONEY_SATS),  # the largest total accepted
        (2 * 10**15 + 3, 2, 10**15 + 2),  # 1e15 + 1.5: half to even, no float on the way
        (parse.MAX_MONEY_SATS, 2016, round(parse.MAX_MONEY_SATS / 2016)),
    ],
)
def test_average_is_rounded_exactly(total: int, count: int, expected: int) -> None:
    payload = {"startBlock": 800_000, "endBlock": 800_000 + count - 1, "totalReward": str(total)}
    assert parse.parse_reward_stats(payload, 2016).block_reward_sats == expected


def test_totals_as_json_integers_and_a_missing_fee_are_accepted() -> None:
    stats = parse.parse_reward_stats({"startBlock": 1, "endBlock": 2, "totalReward": 625000000}, 2)
    assert (stats.total_reward_sats, stats.total_fee_sats, stats.block_reward_sats) == (625000000, None, 312500000)


def test_a_narrower_span_than_asked_is_averaged_over_the_span() -> None:
    # A young self-hosted instance that has indexed only 10 blocks so far.
    stats = parse.parse_reward_stats({"startBlock": 0, "endBlock": 9, "totalReward": "50000000000"}, 144)
    assert (stats.block_count, stats.block_reward_sats) == (10, 5000000000)


# --- parsers on broken bodies -------------------------------------------------------------------------------

GOOD_HASHRATE: dict[str, Any] = {"currentHashrate": 9.7e20, "currentDifficulty": 1.36e14}
GOOD_REWARDS: dict[str, Any] = {"startBlock": 100, "endBlock": 243, "totalReward": "45000000000", "totalFee": "1"}


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        ([], "hashrate: expected an object, got list"),
        (None, "hashrate: expected an object, got null"),
        ({"currentDifficulty": 1.0}, "missing 'currentHashrate'"),
        ({"currentHashrate": 1.0}, "missing 'currentDifficulty'"),
        ({**GOOD_HASHRATE, "currentHashrate": None}, "missing 'currentHashrate'"),
        ({**GOOD_HASHRATE, "currentHashrate": -1}, "not a finite non-negative number"),
        ({**GOOD_HASHRATE, "currentDifficulty": -1.5}, "not a finite non-negative number"),
        ({**GOOD_HASHRATE, "currentHashrate": "fast"}, "not a number"),
        ({**GOOD_HASHRATE, "currentHashrate": "inf"}, "not a finite non-negative number"),
        ({**GOOD_HASHRATE, "currentHashrate": True}, "expected a number, got bool"),
        ({**GOOD_HASHRATE, "currentDifficulty": [1]}, "expected a number, got list"),
        ({**GOOD_HASHRATE, "currentHashrate": 10**400}, "not a number"),
        ({**GOOD_HASHRATE, "currentHashrate": 1e32}, "implausibly large"),
        ({**GOOD_HASHRATE, "currentDifficulty": 1e25}, "implausibly large"),
    ],
)
def test_broken_hashrate_bodies_are_bad_responses(payload: Any, match: str) -> None:
    with pytest.raises(BadResponse, match=match):
        parse.parse_hashrate(payload)


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        ("63811748254", "reward_stats: expected an object, got str"),
        ({k: v for k, v in GOOD_REWARDS.items() if k != "totalReward"}, "missing 'totalReward'"),
        ({k: v for k, v in GOOD_REWARDS.items() if k != "startBlock"}, "missing 'startBlock'"),
        ({**GOOD_REWARDS, "totalReward": None}, r"totalReward: null \(the instance has no indexed blocks\?\)"),
        ({**GOOD_REWARDS, "totalReward": "NaN"}, "expected a whole number of satoshis"),
        ({**GOOD_REWARDS, "totalReward": "-5"}, "expected a whole number of satoshis"),
        ({**GOOD_REWARDS, "totalReward": "6.5"}, "expected a whole number of satoshis"),
        ({**GOOD_REWARDS, "totalReward": " 65"}, "expected a whole number of satoshis"),
        ({**GOOD_REWARDS, "totalReward": "１２"}, "expected a whole number of satoshis"),  # fullwidth digits
        ({**GOOD_REWARDS, "totalReward": "1" * 40}, "expected a whole number of satoshis"),
        ({**GOOD_REWARDS, "totalReward": 6.5}, "expected a whole number"),
        ({**GOOD_REWARDS, "totalReward": -5}, "not a finite non-negative number"),
        ({**GOOD_REWARDS, "totalReward": False}, "expected a number, got bool"),
        ({**GOOD_REWARDS, "totalReward": str(parse.MAX_MONEY_SATS + 1)}, "more than all bitcoin"),
        ({**GOOD_REWARDS, "totalReward": 10**30}, "more than all bitcoin"),
        ({**GOOD_REWARDS, "totalFee": "45000000001"}, "totalFee 45000000001 exceeds totalReward"),
        ({**GOOD_REWARDS, "totalFee": "x"}, r"totalFee: expected a whole number"),
        ({**GOOD_REWARDS, "endBlock": 99}, "endBlock 99 is below startBlock 100"),
        ({**GOOD_REWARDS, "endBlock": 244}, "span 145 blocks but 144 were asked for"),
        ({**GOOD_REWARDS, "startBlock": -1}, "not a finite non-negative number"),
        ({**GOOD_REWARDS, "startBlock": 1.5}, "expected a whole number"),
        ({**GOOD_REWARDS, "endBlock": 10**8}, "implausible block height"),
    ],
)
def test_broken_reward_stats_are_bad_responses(payload: Any, match: str) -> None:
    with pytest.raises(BadResponse, match=match):
        parse.parse_reward_stats(payload, 144)


# --- fuzzing: whatever JSON arrives, the parsers return a sane value or raise BadResponse --------------------

JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text()
    | st.from_regex(r"\A-?[0-9]{0,25}(\.[0-9]{0,3})?([eE][+-]?[0-9]{1,3})?\Z")
)
JSON_VALUES = st.recursive(
    JSON_SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4)
)


def _object_with(keys: tuple[str, ...]) -> st.SearchStrategy[dict[str, Any]]:
    """Objects that have some of `keys` (with any value) plus stray keys: near misses of the real shape."""
    return st.builds(
        lambda known, extra: {**extra, **known},
        st.dictionaries(st.sampled_from(keys), JSON_VALUES),
        st.dictionaries(st.text(max_size=8), JSON_SCALARS, max_size=2),
    )


def _check_hashrate(payload: Any) -> None:
    try:
        current = parse.parse_hashrate(payload)
    except BadResponse:
        return
    for value, limit in ((current.difficulty, parse.MAX_DIFFICULTY), (current.hashrate_hs, parse.MAX_HASHRATE_HS)):
        assert value is None or (isinstance(value, float) and math.isfinite(value) and 0 < value <= limit)


def _check_rewards(payload: Any, requested: int) -> None:
    try:
        stats = parse.parse_reward_stats(payload, requested)
    except BadResponse:
        return
    assert 1 <= stats.block_count <= requested
    assert stats.end_block - stats.start_block + 1 == stats.block_count
    assert 0 <= stats.block_reward_sats <= stats.total_reward_sats <= parse.MAX_MONEY_SATS
    assert type(stats.block_reward_sats) is int
    assert stats.total_fee_sats is None or stats.total_fee_sats <= stats.total_reward_sats


@settings(max_examples=300, deadline=None)
@given(JSON_VALUES | _object_with(("currentHashrate", "currentDifficulty", "hashrates", "difficulty")))
def test_fuzzed_hashrate_bodies_never_raise_anything_but_bad_response(payload: Any) -> None:
    _check_hashrate(payload)


@settings(max_examples=300, deadline=None)
@given(
    JSON_VALUES | _object_with(("startBlock", "endBlock", "totalReward", "totalFee", "totalTx")),
    st.integers(min_value=1, max_value=2016),
)
def test_fuzzed_reward_stats_never_raise_anything_but_bad_response(payload: Any, requested: int) -> None:
    _check_rewards(payload, requested)


@settings(max_examples=300, deadline=None)
@given(
    st.integers(min_value=0, max_value=2_000_000),
    st.integers(min_value=1, max_value=2016),
    st.integers(min_value=0, max_value=parse.MAX_MONEY_SATS),
)
def test_fuzzed_valid_reward_stats_average_exactly(start: int, count: int, total: int) -> None:
    payload = {"startBlock": start, "endBlock": start + count - 1, "totalReward": str(total)}
    stats = parse.parse_reward_stats(payload, 2016)
    # The exact nearest integer: no float rounding error, whatever the size of the total.
    assert abs(2 * (stats.block_reward_sats * count - total)) <= count


# --- settings ---------------------------------------------------------------------------------------------


def test_settings_defaults_and_bounds() -> None:
    defaults = MempoolSettings()
    assert (defaults.base_url, defaults.reward_blocks) == ("https://mempool.space/api", 144)
    assert MempoolSettings(base_url="http://127.0.0.1:18400/api", reward_blocks=2016).reward_blocks == 2016
    for bad in ({"reward_blocks": 0}, {"reward_blocks": 2017}, {"base_url": "ftp://x"}, {"api_key_env": "X"}):
        with pytest.raises(pydantic.ValidationError):
            MempoolSettings.model_validate(bad)


def test_budget_is_per_host_and_one_poll_fits_the_burst() -> None:
    public, other_port = MempoolSettings(), MempoolSettings(base_url="http://127.0.0.1:18400/api")
    assert MempoolSource.budget_key(public) == "mempool:host:mempool.space"
    assert MempoolSource.budget_key(other_port) == "mempool:host:127.0.0.1:18400"
    assert MempoolSource.budget_key(MempoolSettings(reward_blocks=6)) == MempoolSource.budget_key(public)
    assert MempoolSource.default_budget.scope == "host"
    assert MempoolSource.requests_per_poll(public) == 2 <= MempoolSource.default_budget.burst


# --- the adapter against a loopback server ------------------------------------------------------------------


@dataclass
class MempoolServer:
    """Serves a golden case at mempool's paths under `/api`; `statuses` overrides an endpoint's status."""

    case_dir: Path
    statuses: Mapping[str, int]
    requests_seen: list[str] = field(default_factory=list)

    def endpoint(self, path: str) -> str | None:
        if path == "/api/v1/mining/hashrate/3d":
            return "hashrate"
        if path.startswith("/api/v1/mining/reward-stats/") and path.rsplit("/", 1)[1].isdigit():
            return "reward_stats"
        return None

    @property
    def handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests_seen.append(self.path)
                name = server.endpoint(self.path)
                status, payload = (404, b"Not Found") if name is None else (200, b"")
                if name is not None:
                    status = server.statuses.get(name, 200)
                    payload = (server.case_dir / f"{name}.json").read_bytes()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


@contextmanager
def serve(case: str, statuses: Mapping[str, int] | None = None) -> Iterator[tuple[MempoolServer, str]]:
    """Serve a golden case on 127.0.0.1 (a free port); yield the server and its `/api` base URL."""
    server = MempoolServer(GOLDEN / case, statuses or {})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), server.handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server, f"http://127.0.0.1:{httpd.server_address[1]}/api"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def collect(base_url: str, *, coin: str = "BTC", reward_blocks: int = 144) -> NetworkSnapshot:
    with requests.Session() as session:
        session.trust_env = False  # loopback only: never through a proxy from the environment
        http = HttpClient(session, redact=Redactor())
        http.start_poll(10.0)
        ctx = SourceContext(http=http, clock=lambda: NOW + 0.75, log=logging.getLogger("test"), target="net", coin=coin)
        return MempoolSource(MempoolSettings(base_url=base_url, reward_blocks=reward_blocks), ctx).collect()


def test_collect_reference_example() -> None:
    with serve("reference-example") as (server, base_url):
        snapshot = collect(base_url, reward_blocks=100)
    assert snapshot == NetworkSnapshot(
        observed_at=NOW,
        coin="BTC",
        difficulty=31251101365711.12,
        hashrate_hs=2.520332473552123e20,
        block_reward_sats=638117483,
        issues=(),
    )
    assert server.requests_seen == ["/api/v1/mining/hashrate/3d", "/api/v1/mining/reward-stats/100"]


def test_collect_current_hashrate_zero_is_a_partial_poll() -> None:
    with serve("current-hashrate-zero") as (server, base_url):
        snapshot = collect(base_url)
    assert (snapshot.difficulty, snapshot.hashrate_hs, snapshot.block_reward_sats) == (None, None, 314900548)
    assert snapshot.issues == (
        SectionIssue(
            "hashrate",
            "no_data",
            "currentDifficulty and currentHashrate are 0: mempool's backend could not reach Bitcoin Core",
        ),
    )
    assert server.requests_seen == ["/api/v1/mining/hashrate/3d", "/api/v1/mining/reward-stats/144"]


def test_collect_reward_stats_missing_keeps_difficulty_and_hashrate() -> None:
    with serve("reward-stats-missing", {"reward_stats": 500}) as (_, base_url):
        snapshot = collect(base_url)
    assert (snapshot.difficulty, snapshot.hashrate_hs) == (136039872848261.3, 9.735123456789011e20)
    assert snapshot.block_reward_sats is None
    [issue] = snapshot.issues
    assert (issue.section, issue.kind) == ("reward_stats", ServerError.kind)
    assert "HTTP 500" in issue.message


def test_collect_malformed_hashrate_fails_without_asking_for_rewards() -> None:
    with serve("malformed-hashrate") as (server, base_url), pytest.raises(BadResponse, match="invalid JSON"):
        collect(base_url)
    assert server.requests_seen == ["/api/v1/mining/hashrate/3d"]


def test_collect_hashrate_server_error_fails_the_poll() -> None:
    with serve("reference-example", {"hashrate": 503}) as (_, base_url), pytest.raises(ServerError):
        collect(base_url)


def test_collect_strings_as_numbers() -> None:
    with serve("strings-as-numbers") as (_, base_url):
        snapshot = collect(base_url)
    assert (snapshot.difficulty, snapshot.hashrate_hs, snapshot.block_reward_sats) == (
        136039872848261.3,
        1.0123456789012345e21,
        None,
    )
    [issue] = snapshot.issues
    assert (issue.section, issue.kind) == ("reward_stats", "bad_response")
    assert "totalReward" in issue.message


def test_collect_nothing_known_is_no_data() -> None:
    with (
        serve("current-hashrate-zero", {"reward_stats": 500}) as (_, base_url),
        pytest.raises(NoData, match="could not reach Bitcoin Core; reward_stats: server_error"),
    ):
        collect(base_url)


def test_collect_other_coin_is_no_data_without_a_request() -> None:
    with serve("reference-example") as (server, base_url), pytest.raises(NoData, match="Bitcoin network only"):
        collect(base_url, coin="LTC")
    assert server.requests_seen == []
