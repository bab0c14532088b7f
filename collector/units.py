"""Unit conversions into minewatch's base units (H/s, 1e-8 coin units, watts). Pure and table-tested."""

from __future__ import annotations

import math
import re
from decimal import Decimal

_HASHRATE_PREFIXES: dict[str, float] = {
    "": 1.0,
    "k": 1e3,
    "m": 1e6,
    "g": 1e9,
    "t": 1e12,
    "p": 1e15,
    "e": 1e18,
    "z": 1e21,
}
# Case matters for power: "mW" would be milliwatts, which no permit means; only these spellings are read.
_POWER_PREFIXES: dict[str, Decimal] = {
    "": Decimal(1),
    "k": Decimal(10**3),
    "K": Decimal(10**3),
    "M": Decimal(10**6),
    "G": Decimal(10**9),
}
_QUANTITY = re.compile(r"^\s*([-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)\s*([A-Za-z/]*)\s*$")
SATS_PER_COIN = Decimal(100_000_000)
MAX_SATS = 2**63 - 1  # InfluxDB integers are int64; a larger amount is a broken response, not money


class UnitError(ValueError):
    """A value or unit that cannot be converted."""


def hashrate_factor(unit: str) -> float:
    """Return the multiplier from `unit` ("Gh/s", "TH/s", "H/s", "MH/s", ...) to H/s."""
    normalized = unit.strip().lower().replace(" ", "")
    if not normalized.endswith("h/s"):
        raise UnitError(f"unknown hashrate unit {unit!r}")
    prefix = normalized[: -len("h/s")]
    if prefix not in _HASHRATE_PREFIXES:
        raise UnitError(f"unknown hashrate unit {unit!r}")
    return _HASHRATE_PREFIXES[prefix]


def parse_hashrate(text: str) -> float:
    """Parse "50 PH/s" or "306.23 TH/s" into H/s (exactly: "2.2 PH/s" is 2.2e15, not 2200000000000000.2)."""
    number, unit = _split_quantity(text)
    try:
        return _finite(number * Decimal(repr(hashrate_factor(unit or "H/s"))), text)
    except ArithmeticError:
        raise UnitError(f"not a finite quantity: {text!r}") from None


def parse_power(text: str) -> float:
    """Parse "12 MW", "3500 W" or "3.5kW" into watts."""
    number, unit = _split_quantity(text)
    normalized = (unit or "W").strip()
    if not normalized.endswith("W") or normalized[:-1] not in _POWER_PREFIXES:
        raise UnitError(f"unknown power unit {unit!r} in {text!r} (use W, kW, MW or GW)")
    try:
        return _finite(number * _POWER_PREFIXES[normalized[:-1]], text)
    except ArithmeticError:
        raise UnitError(f"not a finite quantity: {text!r}") from None


def coins_to_sats(amount: object) -> int:
    """Convert a coin amount (decimal string, int or float as sent by a pool) to 1e-8 units, exactly.

    Floats go through their shortest repr so 0.00830608 becomes 830608, not 830607.
    """
    if isinstance(amount, bool):
        raise UnitError(f"not an amount: {amount!r}")
    if isinstance(amount, float):
        if not math.isfinite(amount):
            raise UnitError(f"not a finite amount: {amount!r}")
        text = repr(amount)
    elif isinstance(amount, int | str | Decimal):
        text = str(amount).strip()
    else:
        raise UnitError(f"not an amount: {amount!r}")
    try:
        value = Decimal(text)
        if not value.is_finite():
            raise UnitError(f"not a finite amount: {amount!r}")
        result = int((value * SATS_PER_COIN).to_integral_value())
    except ArithmeticError as exc:  # InvalidOperation, Overflow ("1e999999999")
        raise UnitError(f"not an amount: {str(amount)[:40]!r}") from exc
    if abs(result) > MAX_SATS:
        raise UnitError(f"amount out of range: {str(amount)[:40]!r}")
    return result


def _finite(value: Decimal, text: str) -> float:
    try:
        result = float(value)
    except ArithmeticError:
        raise UnitError(f"not a finite quantity: {text!r}") from None
    if not math.isfinite(result):
        raise UnitError(f"not a finite quantity: {text!r}")
    return result


def _split_quantity(text: str) -> tuple[Decimal, str]:
    match = _QUANTITY.match(text)
    if not match:
        raise UnitError(f"not a quantity: {text!r}")
    number = Decimal(match.group(1))
    if not number.is_finite() or number < 0:
        raise UnitError(f"not a non-negative quantity: {text!r}")
    return number, match.group(2)
