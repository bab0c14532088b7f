"""`HttpClient` against a real local server: every failure maps to its typed error, within the poll deadline."""

from __future__ import annotations

import time

import pytest
import requests

from collector.adapters.http import HttpClient
from collector.errors import AuthFailed, BadResponse, RateLimited, ServerError, SourceError, Timeout, Unreachable
from collector.ratelimit import RateBudget, TokenBucket
from collector.redact import Redactor


def _client(**kwargs: object) -> HttpClient:
    client = HttpClient(requests.Session(), redact=Redactor(), **kwargs)  # type: ignore[arg-type]
    client.start_poll(5.0)
    return client


def test_ok_returns_the_decoded_json(http_base: str) -> None:
    assert _client().get_json(f"{http_base}/ok") == {"ok": True}


@pytest.mark.parametrize(
    ("path", "error"),
    [
        ("status/401", AuthFailed),
        ("status/403", AuthFailed),
        ("status/500", ServerError),
        ("status/502", ServerError),
        ("status/503", ServerError),
        ("status/404", BadResponse),
        ("status/400", BadResponse),
        ("body/nan", BadResponse),
        ("body/badutf8", BadResponse),
        ("body/malformed", BadResponse),
    ],
)
def test_failures_map_to_typed_errors(http_base: str, path: str, error: type[SourceError]) -> None:
    with pytest.raises(error) as caught:
        _client().get_json(f"{http_base}/{path}")
    assert type(caught.value) is error


def test_429_with_retry_after_seconds(http_base: str) -> None:
    with pytest.raises(RateLimited) as caught:
        _client().get_json(f"{http_base}/retry-after/30")
    assert caught.value.retry_after == 30.0


def test_429_with_an_http_date_retry_after_leaves_the_backoff_to_the_runner(http_base: str) -> None:
    with pytest.raises(RateLimited) as caught:
        _client().get_json(f"{http_base}/retry-after/date")
    assert caught.value.retry_after is None


def test_trailing_nul_bytes_are_accepted(http_base: str) -> None:
    assert _client().get_json(f"{http_base}/body/nul") == {"hashrate": 1.5}


def test_body_over_the_limit_is_refused(http_base: str) -> None:
    client = _client(max_body_bytes=1000)

    assert client.get_json(f"{http_base}/big/1000") == "x" * 998
    with pytest.raises(BadResponse, match="larger than 1000 bytes"):
        client.get_json(f"{http_base}/big/1001")


def test_connection_refused_is_unreachable(closed_port: int) -> None:
    with pytest.raises(Unreachable, match="connection failed"):
        _client().get_json(f"http://127.0.0.1:{closed_port}/ok")


def test_a_server_sleeping_past_the_deadline_fails_at_the_deadline(http_base: str) -> None:
    client = HttpClient(requests.Session(), redact=Redactor())
    client.start_poll(0.5)
    started = time.monotonic()

    with pytest.raises(Unreachable):
        client.get_json(f"{http_base}/sleep/2")

    assert time.monotonic() - started < 1.0


def test_a_server_trickling_its_body_fails_at_the_deadline(http_base: str) -> None:
    """Each byte arrives within the read timeout, but the poll's deadline still bounds the whole request."""
    client = HttpClient(requests.Session(), redact=Redactor())
    client.start_poll(0.5)
    started = time.monotonic()

    with pytest.raises(Unreachable):
        client.get_json(f"{http_base}/trickle/2.5")

    assert time.monotonic() - started < 1.0


def test_a_body_cut_off_mid_stream_is_a_bad_response_not_a_crash(http_base: str) -> None:
    with pytest.raises(BadResponse, match="cut off"):
        _client().get_json(f"{http_base}/cut")


def test_a_body_that_stalls_mid_stream_times_out(http_base: str) -> None:
    client = HttpClient(requests.Session(), redact=Redactor(), read_timeout_s=0.3)
    client.start_poll(5.0)
    started = time.monotonic()

    with pytest.raises(Timeout, match="timed out"):
        client.get_json(f"{http_base}/stall/2")

    assert time.monotonic() - started < 1.5


def test_a_redirect_to_another_host_does_not_carry_the_pool_token(http_base: str) -> None:
    """requests drops `Authorization` on a cross-host redirect, but not a pool's own header (Braiins' token)."""
    other_host = http_base.replace("http://127.0.0.1:", "localhost:")
    try:
        echoed = _client().get_json(f"{http_base}/redirect/{other_host}", headers={"Pool-Auth-Token": "SEKRIT-tok"})
    except SourceError:
        return  # refusing to follow the redirect is as good
    assert "SEKRIT-tok" not in str(echoed)


def test_no_request_is_made_after_the_deadline(http_base: str) -> None:
    now = [100.0]
    client = HttpClient(requests.Session(), redact=Redactor(), monotonic=lambda: now[0])
    client.start_poll(5.0)
    now[0] = 105.0

    with pytest.raises(Unreachable, match="deadline"):
        client.get_json(f"{http_base}/ok")
    assert client.requests_made == 0


# --- the rate budget -------------------------------------------------------------------------------------


class FakeClock:
    """A monotonic clock that moves only when told to; `sleep` records and advances it."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


ONE_PER_SECOND = RateBudget(per_minute=60, burst=2, scope="credential")


def test_bucket_gives_the_burst_then_waits_one_token_interval_each() -> None:
    clock = FakeClock()
    bucket = TokenBucket(ONE_PER_SECOND, clock)
    deadline = clock.now + 60

    waits = [bucket.reserve(deadline) for _ in range(5)]

    assert waits == pytest.approx([0.0, 0.0, 1.0, 2.0, 3.0])


def test_bucket_refills_with_time_up_to_the_burst() -> None:
    clock = FakeClock()
    bucket = TokenBucket(ONE_PER_SECOND, clock)
    deadline = clock.now + 600
    bucket.reserve(deadline)
    bucket.reserve(deadline)

    clock.now += 0.25
    assert bucket.reserve(deadline) == pytest.approx(0.75)
    clock.now += 100  # long idle: refills to the burst of 2, no more
    assert [bucket.reserve(deadline) for _ in range(3)] == pytest.approx([0.0, 0.0, 1.0])


def test_bucket_refuses_a_token_that_would_come_after_the_deadline_and_keeps_it() -> None:
    clock = FakeClock()
    bucket = TokenBucket(ONE_PER_SECOND, clock)
    bucket.reserve(clock.now + 60)
    bucket.reserve(clock.now + 60)

    with pytest.raises(RateLimited) as caught:
        bucket.reserve(clock.now + 0.5)

    assert caught.value.retry_after == pytest.approx(1.0)
    assert bucket.reserve(clock.now + 60) == pytest.approx(1.0)  # the refused token was not consumed


def test_client_sleeps_exactly_the_bucket_wait(http_base: str) -> None:
    clock = FakeClock()
    bucket = TokenBucket(ONE_PER_SECOND, clock)
    client = HttpClient(requests.Session(), redact=Redactor(), bucket=bucket, monotonic=clock, sleep=clock.sleep)
    client.start_poll(10.0)

    for _ in range(3):
        client.get_json(f"{http_base}/ok")

    assert clock.slept == pytest.approx([1.0])
    assert client.requests_made == 3


def test_client_raises_rate_limited_without_sleeping_when_the_wait_passes_the_deadline(http_base: str) -> None:
    clock = FakeClock()
    bucket = TokenBucket(RateBudget(per_minute=12, burst=1, scope="credential"), clock)  # one per 5 s
    client = HttpClient(requests.Session(), redact=Redactor(), bucket=bucket, monotonic=clock, sleep=clock.sleep)
    client.start_poll(3.0)
    client.get_json(f"{http_base}/ok")

    with pytest.raises(RateLimited) as caught:
        client.get_json(f"{http_base}/ok")

    assert caught.value.retry_after == pytest.approx(5.0)
    assert clock.slept == []
    assert client.requests_made == 1
