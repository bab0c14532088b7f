"""F2Pool bill rules that golden cases do not pin: what counts as a payout, and when it is stamped."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest

from collector.errors import SourceError
from collector.pools.f2pool.parse import check_error, parse_transactions


def _bills(*rows: dict[str, Any]) -> dict[str, Any]:
    return {"transactions": list(rows)}


def test_money_leaving_under_another_type_is_a_payout_not_a_negative_credit() -> None:
    earnings, payouts = parse_transactions(
        _bills(
            {
                "id": 7,
                "type": "withdraw",
                "changed_balance": -0.0125,
                "created_at": 1_790_000_000,
                "payout_extra": {"tx_id": "ab" * 32, "value": 0.0125, "paid_time": 1_790_003_600},
            },
            {"id": 8, "type": "revenue_fpps", "changed_balance": 0.0004, "created_at": 1_790_010_000},
        )
    )

    assert [e.amount_sats for e in earnings] == [40_000]
    assert [(p.amount_sats, p.sent_at) for p in payouts] == [(1_250_000, 1_790_000_000)]


def test_a_debit_without_a_txid_has_not_left_and_is_not_written() -> None:
    earnings, payouts = parse_transactions(
        _bills({"id": 9, "type": "fee", "changed_balance": -0.0001, "created_at": 1_790_000_000})
    )

    assert (earnings, payouts) == ((), ())


@pytest.mark.parametrize("code", ["²", "9" * 5000, "5010 "])
def test_odd_error_codes_never_crash_the_parser(code: str) -> None:
    """A code that looks numeric but is not (superscript digits, 5000 digits) is judged, never a crash."""
    with contextlib.suppress(SourceError):  # a typed error is a fine answer; anything else fails the test
        check_error({"code": code, "msg": "permission denied"}, "bills")
