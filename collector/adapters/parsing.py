"""Typed accessors for pool payloads: each raises BadResponse naming the path, none invents a value.

Pools send numbers as JSON numbers or as strings, and sometimes null for "not known"; these helpers accept
what the reference documents and nothing else (no booleans as numbers, no NaN, no negative counts).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from collector.errors import BadResponse
from collector.models import HashrateSample
from collector.units import UnitError, coins_to_sats

Payload = Mapping[str, Any]
# InfluxDB integers are int64: a larger count is a broken response, not a count.
MAX_INT64 = 2**63 - 1
# 2200-01-01T00:00:00Z: a later "time" is a unit or encoding error (and past 2262 not even an InfluxDB time).
MAX_UNIX_S = 7_258_118_400


def mapping(value: Any, where: str) -> Payload:
    """`value` as a JSON object."""
    if not isinstance(value, Mapping):
        raise BadResponse(f"{where}: expected an object, got {_type_name(value)}")
    return value


def sequence(value: Any, where: str) -> Sequence[Any]:
    """`value` as a JSON array."""
    if not isinstance(value, list):
        raise BadResponse(f"{where}: expected an array, got {_type_name(value)}")
    return value


def field(obj: Payload, key: str, where: str) -> Any:
    """A required key."""
    if key not in obj:
        raise BadResponse(f"{where}: missing {key!r}")
    return obj[key]


def number(obj: Payload, key: str, where: str, *, required: bool = False) -> float | None:
    """A finite, non-negative number given as a JSON number or a numeric string; None if absent or null."""
    value = obj.get(key)
    if value is None:
        if required:
            raise BadResponse(f"{where}: missing {key!r}")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise BadResponse(f"{where}.{key}: expected a number, got {_type_name(value)}")
    try:
        result = float(value)
    except (ValueError, OverflowError):
        raise BadResponse(f"{where}.{key}: not a number: {str(value)[:40]!r}") from None
    if not math.isfinite(result) or result < 0:
        raise BadResponse(f"{where}.{key}: not a finite non-negative number: {str(value)[:40]!r}")
    return result


def integer(obj: Payload, key: str, where: str, *, required: bool = False) -> int | None:
    """A non-negative whole number (JSON integer, integral float, or digit string); None if absent or null."""
    raw = obj.get(key)
    if type(raw) is int and 0 <= raw <= MAX_INT64:  # exact, also above 2**53 where a float would round
        return raw
    value = number(obj, key, where, required=required)
    if value is None:
        return None
    if not value.is_integer():
        raise BadResponse(f"{where}.{key}: expected a whole number, got {str(obj.get(key))[:40]!r}")
    if value > MAX_INT64:
        raise BadResponse(f"{where}.{key}: whole number out of range: {str(obj.get(key))[:40]!r}")
    return int(value)


def required_integer(obj: Payload, key: str, where: str) -> int:
    """Like `integer`, for a key that must be present."""
    value = integer(obj, key, where, required=True)
    if value is None:  # unreachable: required=True raises instead
        raise BadResponse(f"{where}: missing {key!r}")
    return value


def unix_time(obj: Payload, key: str, where: str, *, required: bool = False) -> int | None:
    """A time in unix seconds (a whole number up to the year 2200); None if absent or null."""
    value = integer(obj, key, where, required=required)
    if value is not None and value > MAX_UNIX_S:
        raise BadResponse(f"{where}.{key}: not a time in unix seconds: {value}")
    return value


def required_unix_time(obj: Payload, key: str, where: str) -> int:
    """Like `unix_time`, for a key that must be present."""
    value = unix_time(obj, key, where, required=True)
    if value is None:  # unreachable: required=True raises instead
        raise BadResponse(f"{where}: missing {key!r}")
    return value


def text(obj: Payload, key: str, where: str, *, required: bool = False) -> str | None:
    """A string; None if absent or null."""
    value = obj.get(key)
    if value is None:
        if required:
            raise BadResponse(f"{where}: missing {key!r}")
        return None
    if not isinstance(value, str):
        raise BadResponse(f"{where}.{key}: expected a string, got {_type_name(value)}")
    return value


def sats(obj: Payload, key: str, where: str, *, required: bool = False) -> int | None:
    """A coin amount (decimal string or JSON number in whole coins) converted exactly to 1e-8 units."""
    value = obj.get(key)
    if value is None:
        if required:
            raise BadResponse(f"{where}: missing {key!r}")
        return None
    try:
        return coins_to_sats(value)
    except UnitError as exc:
        raise BadResponse(f"{where}.{key}: {exc}") from None


def required_sats(obj: Payload, key: str, where: str) -> int:
    """Like `sats`, for a key that must be present."""
    value = sats(obj, key, where, required=True)
    if value is None:  # unreachable: required=True raises instead
        raise BadResponse(f"{where}: missing {key!r}")
    return value


def amount_sats(obj: Payload, key: str, where: str, *, required: bool = False) -> int | None:
    """A balance or a credit (money the pool owes the account): like `sats`, but a negative amount is refused."""
    value = sats(obj, key, where, required=required)
    if value is not None and value < 0:
        raise BadResponse(f"{where}.{key}: a negative amount")
    return value


def required_amount_sats(obj: Payload, key: str, where: str) -> int:
    """Like `amount_sats`, for a key that must be present."""
    value = amount_sats(obj, key, where, required=True)
    if value is None:  # unreachable: required=True raises instead
        raise BadResponse(f"{where}: missing {key!r}")
    return value


def last_share_time(obj: Payload, key: str, where: str) -> int | None:
    """A worker's last share in unix seconds; 0 (no share yet, or not known) is None, never 1970."""
    return unix_time(obj, key, where) or None


def record_id(obj: Payload, key: str, where: str) -> int:
    """A record's id (a bill, a payment): a positive whole number up to int64, as a JSON integer or digit string.

    Anything else (absent, null, 0, negative, fractional, "1e999", larger than int64) is refused: an id made up
    from junk would be written as a new event.
    """
    raw = obj.get(key)
    if isinstance(raw, str) and raw.isascii() and raw.isdigit():
        value: Any = int(raw) if len(raw) <= 20 else None
    elif type(raw) is int:
        value = raw
    else:
        value = None
    if value is None or not 0 < value <= MAX_INT64:
        if isinstance(raw, str):
            shown = repr(raw[:40])
        elif type(raw) is int:
            shown = str(raw) if raw.bit_length() < 64 else "an integer out of range"
        else:
            shown = _type_name(raw)
        raise BadResponse(f"{where}: {key!r} is not a positive whole-number id: got {shown}")
    return int(value)


def without_account_prefix(name: str, account: str | None) -> str:
    """A worker's name as the design's `worker` tag wants it: without a leading `<account>.`."""
    if account and name.startswith(account + ".") and len(name) > len(account) + 1:
        return name[len(account) + 1 :]
    return name


def payout_sats(obj: Payload, key: str, where: str) -> int:
    """A payout's amount: required, and money that left the account is never negative."""
    value = required_sats(obj, key, where)
    if value < 0:
        raise BadResponse(f"{where}.{key}: a payout of a negative amount")
    return value


def scaled(value: float | None, factor: float, where: str = "value") -> float | None:
    """Multiply a possibly-missing number by a unit factor; a product too large for a float is refused."""
    if value is None:
        return None
    result = value * factor
    if not math.isfinite(result):
        raise BadResponse(f"{where}: {value:g} times {factor:g} is out of range")
    return result


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def hashrate_samples(rows: Any, where: str, *, rate_key: str, window_s: int) -> tuple[HashrateSample, ...]:
    """A pool's hashrate history (rows of `timestamp` unix s and `rate_key` in H/s) as samples, oldest first.

    A row without a figure (absent or null) is left out: that bin stays missing, never 0. A timestamp that is
    not unix seconds (milliseconds, say) or that is repeated is a BadResponse: which of two figures for one bin
    is right cannot be told. Every sample spans `window_s`.
    """
    seen: set[int] = set()
    samples: list[HashrateSample] = []
    for i, raw in enumerate(sequence([] if rows is None else rows, where)):
        item_where = f"{where}[{i}]"
        item = mapping(raw, item_where)
        at = required_unix_time(item, "timestamp", item_where)
        if at in seen:
            raise BadResponse(f"{item_where}.timestamp: bin {at} appears twice")
        seen.add(at)
        rate = scaled(number(item, rate_key, item_where), 1.0, item_where)
        if rate is not None:
            samples.append(HashrateSample(at=at, hashrate_hs=rate, window_s=window_s))
    return tuple(sorted(samples, key=lambda sample: sample.at))
