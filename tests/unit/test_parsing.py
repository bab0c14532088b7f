"""Shared payload accessors: what every pool parser relies on."""

from __future__ import annotations

import pytest

from collector.adapters.parsing import payout_sats, without_account_prefix
from collector.errors import BadResponse


def test_a_payout_of_a_negative_amount_is_a_bad_response() -> None:
    with pytest.raises(BadResponse, match="negative"):
        payout_sats({"amount": "-0.01"}, "amount", "payments[0]")


def test_a_payout_amount_is_exact_in_satoshis() -> None:
    assert payout_sats({"amount": "0.01664480"}, "amount", "payments[0]") == 1_664_480


@pytest.mark.parametrize(
    ("name", "account", "worker"),
    [
        ("farm.rack1", "farm", "rack1"),
        ("rack1", "farm", "rack1"),
        ("farm.", "farm", "farm."),  # nothing would be left: keep what the pool sent
        ("other.rack1", "farm", "other.rack1"),
        ("farm.rack1", None, "farm.rack1"),
    ],
)
def test_worker_names_lose_only_their_own_accounts_prefix(name: str, account: str | None, worker: str) -> None:
    assert without_account_prefix(name, account) == worker
