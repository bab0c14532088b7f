"""ViaBTC: the request signer (the wiki's test vector), the envelope, both paging shapes, and the adapter's
paging, date ranges and tonce, against a fake HTTP client that records every URL and header it is given.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qsl, urlsplit

import pytest

from collector.adapters.base import SourceContext
from collector.adapters.http import HttpClient
from collector.errors import AuthFailed, BadResponse, Unreachable
from collector.pools.viabtc import parse
from collector.pools.viabtc.adapter import ViabtcSettings, ViabtcSource
from collector.redact import Redactor

# Reference §4.1 (the official wiki's authentication page).
WIKI_SECRET = "d186ababcb0eb1f6af5c1519424f462b84c631f86c06309992ae1f15604668b0"
WIKI_PAYLOAD = "coin=BTC&amount=1.0&tonce=1513746038205"
WIKI_SIGNATURE = "4a1c9e4c73629b62fd999cbbcd2bc8b87a07f1791ae61ba576427f820dd3bc59"
API_KEY = "0123456789abcdef0123456789abcdef"
NOW = 1_700_020_000.25  # 2023-11-15T03:46:40.25Z


def test_signature_matches_the_wiki_test_vector() -> None:
    assert parse.sign(WIKI_SECRET, WIKI_PAYLOAD) == WIKI_SIGNATURE


def test_signed_query_appends_tonce_last_and_signs_exactly_that_string() -> None:
    query, signature = parse.signed_query(
        [("coin", "BTC"), ("amount", "1.0")], tonce_ms=1513746038205, secret_key=WIKI_SECRET
    )
    assert query == WIKI_PAYLOAD
    assert signature == WIKI_SIGNATURE


def test_query_string_form_encodes_in_the_given_order() -> None:
    assert parse.query_string([("b", "2"), ("a", "x y&z")]) == "b=2&a=x+y%26z"
    assert parse.query_string([]) == ""


@pytest.mark.parametrize("code", [12001, 12002, 12003, 12004, "12001"])
def test_auth_codes_raise_auth_failed(code: object) -> None:
    with pytest.raises(AuthFailed, match="ViaBTC refused"):
        parse.unwrap({"code": code, "data": None, "message": "x"}, "hashrate")


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ({"code": 5001, "data": None, "message": "invalid coin"}, "error code 5001: invalid coin"),
        ({"code": 2, "message": "invalid argument"}, "error code 2"),
        ({"data": {}, "message": "OK"}, "missing 'code'"),
        ({"code": True, "data": {}}, "expected an integer"),
        ({"code": "zero", "data": {}}, "expected an integer"),
        ([], "expected an object"),
    ],
)
def test_other_errors_and_drift_are_bad_responses(body: object, match: str) -> None:
    with pytest.raises(BadResponse, match=match):
        parse.unwrap(body, "hashrate")


def test_both_paging_shapes_are_read() -> None:
    nested = {"code": 0, "data": {"data": [{"id": 1}], "has_next": True}, "message": "OK"}
    flat = {"code": 0, "data": [{"id": 2}], "has_next": False, "message": "OK"}
    assert parse.parse_page(nested, "p") == parse.Page(rows=[{"id": 1}], has_next=True)
    assert parse.parse_page(flat, "p") == parse.Page(rows=[{"id": 2}], has_next=False)


@pytest.mark.parametrize(
    ("holder", "expected"),
    [({"curr_page": 1, "total_page": 3}, True), ({"curr_page": 3, "total_page": 3}, False), ({}, False)],
)
def test_without_has_next_the_page_numbers_decide(holder: dict[str, Any], expected: bool) -> None:
    assert parse.parse_page({"code": 0, "data": {"data": [], **holder}}, "p").has_next is expected


def test_a_non_boolean_has_next_is_drift() -> None:
    with pytest.raises(BadResponse, match="has_next"):
        parse.parse_page({"code": 0, "data": {"data": [], "has_next": "yes"}}, "p")


@pytest.mark.parametrize("day", ["2023-11-1", "13-11-2023", "2023-13-01", None, "2023-11-13T00:00:00"])
def test_a_bad_profit_date_is_drift(day: str | None) -> None:
    with pytest.raises(BadResponse):
        parse.parse_profit_history([{"date": day, "total_profit": "0.1"}])


def test_a_payment_without_id_is_drift() -> None:
    with pytest.raises(BadResponse, match="'id'"):
        parse.parse_payments([{"amount": "0.1", "create_time": 1, "tx": "ab"}])


@pytest.mark.parametrize("value", ["110 TH/s", "-1", "NaN", True])
def test_hashrates_are_plain_numbers_only(value: object) -> None:
    with pytest.raises(BadResponse):
        parse.parse_hashrate({"code": 0, "data": {"hashrate_10min": value}})


# --- the adapter, with a fake HTTP client ---

Reply = Callable[[str, Mapping[str, str]], Any]


class FakeHttp:
    """Answers `get_json(url, headers=...)` from a function of (endpoint, query); records every call."""

    def __init__(self, reply: Reply) -> None:
        self.reply = reply
        self.calls: list[tuple[str, dict[str, str]]] = []

    def get_json(
        self, url: str, *, headers: Mapping[str, str] | None = None, params: Mapping[str, str] | None = None
    ) -> Any:
        assert params is None, "the query string is built (and signed) by the adapter, not by requests"
        self.calls.append((url, dict(headers or {})))
        parts = urlsplit(url)
        return self.reply(parts.path.removeprefix("/res/openapi/v1/"), dict(parse_qsl(parts.query)))


def ok(data: Any) -> dict[str, Any]:
    return {"code": 0, "data": data, "message": "OK"}


def page(rows: list[Any], has_next: bool) -> dict[str, Any]:
    return ok({"data": rows, "has_next": has_next})


def worker(name: str) -> dict[str, Any]:
    return {"worker_name": name, "worker_status": "active", "coin": "BTC", "hashrate_10min": "1"}


def default_reply(endpoint: str, query: Mapping[str, str]) -> Any:
    if endpoint == "hashrate":
        return ok({"hashrate_10min": "5", "active_workers": 1, "unactive_workers": 0})
    if endpoint == "account":
        return ok({"account": {"account": "farmop"}, "balance": [], "withdraw_address": []})
    return page([], False)


def source(
    reply: Reply = default_reply, *, secret_key: str | None = None, **settings: Any
) -> tuple[ViabtcSource, FakeHttp]:
    values = {"api_key_env": "K", **({"secret_key_env": "S"} if secret_key else {}), **settings}
    model = ViabtcSettings.model_validate(values)
    model.resolve_secrets({"K": API_KEY, "S": secret_key or ""}, Path("."), Redactor())
    http = FakeHttp(reply)
    ctx = SourceContext(
        http=cast(HttpClient, http), clock=lambda: NOW, log=logging.getLogger("t"), target="main", coin="BTC"
    )
    return ViabtcSource(model, ctx), http


def test_every_request_carries_the_api_key_and_no_signature_without_a_secret() -> None:
    src, http = source()
    src.collect()
    assert len(http.calls) == 6  # the first poll after start-up also reads the hashrate chart
    for url, headers in http.calls:
        assert headers["X-API-KEY"] == API_KEY
        assert "X-SIGNATURE" not in headers
        assert "tonce" not in url
        assert API_KEY not in url


def test_with_a_secret_every_request_is_signed_over_its_exact_query_string() -> None:
    src, http = source(secret_key=WIKI_SECRET)
    src.collect()
    assert len(http.calls) == 6  # the first poll after start-up also reads the hashrate chart
    for url, headers in http.calls:
        query = urlsplit(url).query
        assert query.endswith("tonce=1700020000250"), "tonce = the injected clock in ms"
        assert headers["X-SIGNATURE"] == parse.sign(WIKI_SECRET, query)


def test_workers_are_read_page_by_page_until_has_next_is_false() -> None:
    pages = {"1": page([worker("a"), worker("farmop.b")], True), "2": page([worker("c")], False)}

    def reply(endpoint: str, query: Mapping[str, str]) -> Any:
        if endpoint == "hashrate/worker":
            assert query["limit"] == "100"
            return pages[query["page"]]
        return default_reply(endpoint, query)

    src, _ = source(reply)
    snapshot = src.collect()
    assert [w.name for w in snapshot.workers] == ["a", "b", "c"]
    assert snapshot.issues == ()


def test_a_list_longer_than_max_pages_is_kept_as_read_and_reported() -> None:
    def reply(endpoint: str, query: Mapping[str, str]) -> Any:
        if endpoint == "hashrate/worker":
            return page([worker(f"w{query['page']}")], True)
        return default_reply(endpoint, query)

    src, http = source(reply, max_pages=3)
    snapshot = src.collect()
    assert [w.name for w in snapshot.workers] == ["w1", "w2", "w3"]
    assert [(i.section, i.kind) for i in snapshot.issues] == [("workers", "bad_response")]
    assert sum("hashrate/worker" in url for url, _ in http.calls) == 3


def test_an_empty_page_that_claims_more_ends_the_list() -> None:
    def reply(endpoint: str, query: Mapping[str, str]) -> Any:
        return page([], True) if endpoint == "profit/history" else default_reply(endpoint, query)

    src, http = source(reply)
    assert src.collect().issues == ()
    assert sum("profit/history" in url for url, _ in http.calls) == 1


def test_the_first_poll_reaches_back_history_days_later_polls_their_own_windows() -> None:
    src, http = source(profit_days=2, payment_days=7, history_days=20)

    def ranges() -> dict[str, tuple[str, str, str]]:
        found = {}
        for url, _ in http.calls:
            parts = urlsplit(url)
            query = dict(parse_qsl(parts.query))
            if "start_date" in query:
                found[parts.path.rsplit("/v1/", 1)[1]] = (query["start_date"], query["end_date"], query["utc"])
        http.calls.clear()
        return found

    src.collect()
    assert ranges() == {
        "profit/history": ("2023-10-26", "2023-11-15", "true"),
        "wallet/payment/history": ("2023-10-26", "2023-11-15", "true"),
    }
    src.collect()
    assert ranges() == {
        "profit/history": ("2023-11-13", "2023-11-15", "true"),
        "wallet/payment/history": ("2023-11-08", "2023-11-15", "true"),
    }


def test_a_failed_secondary_section_keeps_the_first_poll_window() -> None:
    calls = {"n": 0}

    def reply(endpoint: str, query: Mapping[str, str]) -> Any:
        if endpoint == "wallet/payment/history":
            calls["n"] += 1
            if calls["n"] == 1:
                raise Unreachable("down")
            assert query["start_date"] == "2023-10-06", "the window stays wide until a clean poll"
        return default_reply(endpoint, query)

    src, _ = source(reply)
    assert [i.section for i in src.collect().issues] == ["payments"]
    assert src.collect().issues == ()


def test_the_required_endpoint_failing_fails_the_poll() -> None:
    def reply(endpoint: str, query: Mapping[str, str]) -> Any:
        if endpoint == "hashrate":
            return {"code": 12003, "data": None, "message": "invalid tonce"}
        return default_reply(endpoint, query)

    src, http = source(reply)
    with pytest.raises(AuthFailed, match="12003"):
        src.collect()
    assert len(http.calls) == 1


def test_budget_key_is_per_api_key_and_never_the_key_itself() -> None:
    src, _ = source()
    key = ViabtcSource.budget_key(src._settings)
    assert key.startswith("viabtc:credential:")
    assert API_KEY not in key
