"""Unit conversions into base units: H/s, watts, 1e-8 coin units (exact)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from collector.units import UnitError, coins_to_sats, hashrate_factor, parse_hashrate, parse_power


@pytest.mark.parametrize(
    ("unit", "factor"),
    [
        ("H/s", 1.0),
        ("h/s", 1.0),
        ("kH/s", 1e3),
        ("MH/s", 1e6),
        ("Gh/s", 1e9),
        ("GH/s", 1e9),
        ("TH/s", 1e12),
        ("th/s", 1e12),
        (" PH/s ", 1e15),
        ("EH/s", 1e18),
        ("ZH/s", 1e21),
        ("T H/s", 1e12),
    ],
)
def test_hashrate_factor(unit: str, factor: float) -> None:
    assert hashrate_factor(unit) == factor


@pytest.mark.parametrize("unit", ["", "TH", "T/s", "Sol/s", "XH/s", "kW", "TH/h", "hs"])
def test_hashrate_factor_rejects_unknown_units(unit: str) -> None:
    with pytest.raises(UnitError):
        hashrate_factor(unit)


@pytest.mark.parametrize(
    ("text", "hs"),
    [
        ("50 PH/s", 50e15),
        ("306.23 TH/s", 306.23e12),
        ("1e3 GH/s", 1e12),
        ("200TH/s", 200e12),
        ("100", 100.0),
        ("  0.5 EH/s  ", 0.5e18),
        ("0 H/s", 0.0),
    ],
)
def test_parse_hashrate(text: str, hs: float) -> None:
    assert parse_hashrate(text) == pytest.approx(hs, rel=1e-12)


@pytest.mark.parametrize(
    "text", ["", "TH/s", "12 parsecs", "-1 TH/s", "inf TH/s", "nan TH/s", "1e400 H/s", "1,5 TH/s", "3.5 kW", "5 PH"]
)
def test_parse_hashrate_rejects(text: str) -> None:
    with pytest.raises(UnitError):
        parse_hashrate(text)


@pytest.mark.parametrize(
    ("text", "watts"),
    [
        ("12 MW", 12e6),
        ("3500 W", 3500.0),
        ("3.5kW", 3500.0),
        ("1.5 MW", 1.5e6),
        ("600 kW", 6e5),
        ("42", 42.0),
        ("1 GW", 1e9),
    ],
)
def test_parse_power(text: str, watts: float) -> None:
    assert parse_power(text) == pytest.approx(watts, rel=1e-12)


@pytest.mark.parametrize("text", ["12 parsecs", "5 kWh", "-3 kW", "TW", "1 TW", "12 PH/s", "", "MW 12"])
def test_parse_power_rejects(text: str) -> None:
    with pytest.raises(UnitError):
        parse_power(text)


@pytest.mark.parametrize(
    ("amount", "sats"),
    [
        (0.00830608, 830_608),  # binary float 0.00830608 * 1e8 is 830607.99999...; must not truncate
        ("0.00830608", 830_608),
        (Decimal("0.00830608"), 830_608),
        (0.1, 10_000_000),
        (0.3, 30_000_000),
        (1.1, 110_000_000),
        (0.29, 29_000_000),
        (1e-8, 1),
        ("1e-8", 1),
        (1, 100_000_000),
        ("1", 100_000_000),
        (0, 0),
        (" 2.5 ", 250_000_000),
        (21_000_000, 2_100_000_000_000_000),
        (20999999.9769, 2_099_999_997_690_000),
        ("6.25000000", 625_000_000),
    ],
)
def test_coins_to_sats_is_exact(amount: object, sats: int) -> None:
    result = coins_to_sats(amount)
    assert result == sats
    assert type(result) is int


@pytest.mark.parametrize(
    "amount",
    [
        float("nan"),
        float("inf"),
        float("-inf"),
        "NaN",
        "Infinity",
        "sNaN",
        True,
        False,
        None,
        "",
        " ",
        "abc",
        "0x10",
        "1.5 BTC",
        [1],
        {"amount": 1},
        b"1",
    ],
)
def test_coins_to_sats_rejects(amount: object) -> None:
    with pytest.raises(UnitError):
        coins_to_sats(amount)


@pytest.mark.parametrize("amount", ["1e999999999", "1e300", 10**30])
def test_an_amount_too_large_for_int64_is_a_unit_error_not_an_overflow(amount: object) -> None:
    with pytest.raises(UnitError):
        coins_to_sats(amount)


def test_a_hashrate_exponent_too_large_for_decimal_is_a_unit_error() -> None:
    with pytest.raises(UnitError):
        parse_hashrate("1e999999999 TH/s")
