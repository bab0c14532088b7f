"""Hostile payloads for every registered source: never an unhandled exception, never a made-up value.

Every source of `source_registry()` (pools, chain feeds, miners) is polled in-process from its golden cases
(see `support.py`), with one endpoint's body (a miner: one command's reply) replaced by:
- a mutation of the golden success payload: one value at a random path replaced by wrong-typed junk, or one
  key deleted; the raw bytes truncated at a random point;
- a random JSON value (dicts keyed by the golden payloads' own keys, so random shapes reach the parsers);
- deep nesting (10,000 levels, and just below the decoder's recursion limit) and huge bodies.

Two properties:
- only a `SourceError` (BadResponse, AuthFailed, ...) ever leaves a poll: the runner counts it;
- a mutation to junk only removes values (`only_removes` says which: a deleted key, junk of another type,
  non-finite or out-of-range numbers, negatives where no sign is documented, null made a boolean or "junk";
  up to five of them at once too). The points written are compared exactly
  (measurement, tag set and timestamp, and each field's value as written in line protocol) with the points
  of the unmutated payload: every mutated point must be an original point, each of its fields with the
  original's value. A few documented derived figures are held to a weaker but still exact rule (see
  `DERIVED`), each with the reason.
"""

from __future__ import annotations

import functools
import json
import math
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from property.support import (
    DEVICE_KINDS,
    HTTP_KINDS,
    AnyCase,
    DeviceCase,
    Outcome,
    cases_of,
    decode_body,
    deleted,
    encode_body,
    get_at,
    kind_of,
    nested,
    paths,
    replaced,
)

KINDS = HTTP_KINDS + DEVICE_KINDS
SETTINGS = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=False,
    database=None,  # no .hypothesis/ folder in the working tree
)
DELETE = "<delete the key>"
IDENTIFIERS = {"id"}
# Text keys that are null until set (a pending payout's txid, an unset payout address): any string there is data.
NULL_UNTIL_SET = {"tx_id", "txid", "tx", "address"}
# Fields documented as signed (a negative there is data, not junk): F2Pool's bills carry payouts as negative
# `changed_balance` (reference §3.2); EMCD's worker `active` is -1 for a dead worker (reference §1.1).
SIGNED: set[tuple[str, str]] = {("f2pool", "changed_balance"), ("emcd", "active")}
# Junk still read as a value by parsers outside the change that tightened these rules (review of issue 7), each
# (kind, key) with what happens. Listed so the gaps stay visible: remove an entry once its parser is fixed.
NOT_YET_REFUSED: dict[tuple[str, str], str] = {
    ("f2pool", "balance"): "collector/pools/f2pool/parse.py: a balance of -1 is written as -100000000i",
    ("f2pool", "id"): "collector/pools/f2pool/parse.py: a bill id of -1, 10**400, '1e999' or 'NaN' is a new event",
    ("cgminer", "Stratum Active"): "collector/devices/cgminer/parse.py: without it, another slot is made active",
    ("cgminer", "POOL"): "collector/devices/cgminer/parse.py: without it, the row's position is taken as its slot",
}
# Keys that hold text even where a golden value looks like a number (a stratum user named "2").
TEXT_KEYS = {("cgminer", "User")}
# Keys whose deletion is documented to change what is read: a ViaBTC row without `coin` is taken as the coin
# asked for (`coin_rows`: the pool filters by the coin in the request), and so is one with `coin: null`.
DELETION_CHANGES = {("viabtc", "coin")}
# Wrong-typed junk; the first group is of a non-numeric type (a mutation to it may only remove values).
NON_NUMERIC_JUNK: tuple[Any, ...] = (None, [], {}, True, False, "junk", "", [1, 2], {"a": None})
NUMERIC_JUNK: tuple[Any, ...] = (
    float("nan"),
    float("inf"),
    float("-inf"),
    10**400,
    -(10**400),
    -1,
    -0.5,
    1e308,
    2**64,
    "1e999",
    "-5",
    "NaN",
)


@functools.cache
def all_cases(kind: str) -> tuple[AnyCase, ...]:
    return tuple(cases_of(kind))


@functools.cache
def success_cases(kind: str) -> tuple[AnyCase, ...]:
    """Cases whose unmutated poll succeeds and that serve at least one JSON body."""
    return tuple(case for case in all_cases(kind) if case.run().ok and _json_endpoints(case))


def _json_endpoints(case: AnyCase) -> list[str]:
    names = []
    for endpoint, body in sorted(case.served.items()):
        try:
            value = decode_body(case, endpoint, body)
        except (ValueError, UnicodeDecodeError, Exception):
            continue
        if isinstance(value, dict | list) and any(True for _ in paths(value)):
            names.append(endpoint)
    return names


@functools.cache
def _original(case_id: str, kind: str, endpoint: str) -> tuple[Any, Outcome]:
    """An endpoint's payload and the outcome of serving it re-encoded (the baseline of its mutations)."""
    case = next(c for c in all_cases(kind) if c.id == case_id)
    value = decode_body(case, endpoint, case.served[endpoint])
    return value, case.run({endpoint: encode_body(value)})


# --- derived figures --------------------------------------------------------------------------------------

# (kind, measurement, field) -> why a mutation may change the value, and the exact rule it is held to instead.
# (Worker counts summed from categories are not here: a category missing makes the total unknown, not smaller.)
DERIVED: dict[tuple[str, str, str], str] = {
    # A miner's figures are the preferred one of several readings (hashrate windows, chip then board
    # temperatures, uptime from summary or stats): a lost reading falls back to another real one, so the value
    # written must be one of the original replies' readings (as sent, or scaled by a unit factor).
    ("cgminer", "device", "hashrate_hs"): "fallback",
    ("cgminer", "device", "online"): "fallback",
    ("cgminer", "device", "temp_max_c"): "fallback",
    ("cgminer", "device", "uptime_s"): "fallback",
    # The slowest fan of those reported: losing one can only make the minimum larger (or leave it).
    ("cgminer", "device", "fan_min_rpm"): "min",
}


# Points whose time is documented to fall back to another real time when a field is missing: F2Pool dates a
# revenue bill by `mining_extra.mining_date`, else by `created_at` (golden f2pool/missing-optional-fields). Such
# a point must be an original point, same series and fields, at another time.
RETIMED = {("f2pool", "pool_earning")}

# A miner's `model` tag is "unknown" when the reply that names it is missing, and Avalon's comes from `PROD`,
# else `MODEL` (both documented in collector/devices/cgminer/parse.py): a mutation may change the model tag (a
# new series name for the same miner), so miner points are matched with it left out; their fields still must
# be the original's.
MODEL_TAGGED = {"cgminer"}
Key = tuple[str, str, str]


def _without_model(key: Key) -> Key:
    return key[0], ",".join(tag for tag in key[1].split(",") if not tag.startswith("model=")), key[2]


def _same_point_any_model(key: Key, before: dict[Key, Any]) -> Key:
    return next((candidate for candidate in before if _without_model(candidate) == _without_model(key)), key)


def _number(raw: str) -> float:
    return float(raw.rstrip("i"))


# Unit factors between a reading as sent and as written (MH/s, GH/s, TH/s to H/s; ms to s).
UNIT_FACTORS = (1.0, 1e3, 1e6, 1e9, 1e12, 1e15, 1e-3)


@functools.cache
def readings(case_id: str, kind: str) -> frozenset[float]:
    """Every number (or numeric string) of every reply a case serves unmutated: the readings a value may
    fall back to."""
    case = next(c for c in all_cases(kind) if c.id == case_id)
    found: set[float] = set()
    for endpoint, body in case.served.items():
        try:
            value = decode_body(case, endpoint, body)
        except Exception:
            continue
        for path in paths(value):
            leaf = get_at(value, path)
            if kind_of(leaf) == "number" and not _non_finite(leaf):
                found.add(float(leaf))
            elif isinstance(leaf, str):  # Avalon packs its readings in text: "GHSavg[37235.34] Temp[28]"
                found.update(float(number) for number in re.findall(r"-?\d+(?:\.\d+)?", leaf))
    return frozenset(found)


def _is_reading(value: float, known: frozenset[float]) -> bool:
    return any(math.isclose(value, reading * factor, rel_tol=1e-9) for reading in known for factor in UNIT_FACTORS)


def assert_only_removes(kind: str, before: Outcome, after: Outcome, what: str, known: frozenset[float]) -> None:
    """Every point of `after` is a point of `before`, every field with the same value (or DERIVED's rule);
    `known` are the original payload's readings (for the "fallback" rule)."""
    if not after.ok:
        return
    assert before.points is not None
    assert after.points is not None
    for written, fields in after.points.items():
        key = _same_point_any_model(written, before.points) if kind in MODEL_TAGGED else written
        if key not in before.points and (kind, key[0]) in RETIMED:
            retimed = [k for k, v in before.points.items() if k[:2] == key[:2] and v == fields]
            assert retimed, f"{what}: a point that was not there before, at any time: {key} {fields}"
            continue
        assert key in before.points, f"{what}: a point that was not there before: {key} {fields}"
        original = before.points[key]
        for name, value in fields.items():
            assert name in original, f"{what}: a field that was not there before: {key} {name}={value}"
            if value == original[name]:
                continue
            rule = DERIVED.get((kind, key[0], name))
            assert rule is not None, f"{what}: {key} {name} changed from {original[name]} to {value}"
            if rule == "fallback":
                assert _is_reading(_number(value), known), f"{what}: {name} {original[name]} -> {value}: no reading"
            elif rule == "min":
                assert _number(value) >= _number(original[name]), f"{what}: {name} {original[name]} -> {value}"


# --- the registry is covered -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_every_source_has_mutable_golden_payloads(kind: str) -> None:
    cases = success_cases(kind)
    assert cases, f"{kind}: no golden success case to mutate"
    assert all(case.served for case in cases)


# --- one mutation of a golden payload ----------------------------------------------------------------------


def _non_finite(junk: Any) -> bool:
    """NaN, an infinity, "1e999", 10**400: numeric junk beyond any float, never a pool's value."""
    try:
        return not math.isfinite(float(junk))
    except OverflowError:
        return True


def only_removes(kind: str, path: tuple[str | int, ...], old: Any, junk: Any) -> bool:
    """Whether putting `junk` in place of `old` at `path` may only take values away (the subset rule applies).

    - A deleted key: always.
    - Numeric junk that is not finite or beyond range (NaN, inf, "1e999", 10**400): always; a negative number:
      except on a field documented as signed (`SIGNED`). A plausible number may be a value: not checked.
    - Junk of another, non-numeric type (null, bool, array, object, text) in place of a non-null value: always,
      except a string in place of a record id (F2Pool bills, ViaBTC payments take ids as integers or strings
      alike: another string is another record) and a non-empty array or object, which is data
      ({"a": null} for EMCD's `detailsDead` is a dead worker "a").
    - In place of a null: a boolean or the text "junk" (null → [] may be data: "no workers").
    """
    key = path[-1] if path else None
    if (kind, str(key)) in NOT_YET_REFUSED:
        return False
    if junk == DELETE or (junk is None and (kind, str(key)) in DELETION_CHANGES):
        return (kind, str(key)) not in DELETION_CHANGES
    if isinstance(junk, str) and (kind, str(key)) in TEXT_KEYS:
        return False
    junk_kind = kind_of(junk)
    if isinstance(junk, str) and (kind_of(old) == "string" or (old is None and key in NULL_UNTIL_SET)):
        return False  # "1e999" in place of a name or an address is another text, as good as any
    if junk_kind == "number":
        if _non_finite(junk):
            return True
        return float(junk) < 0 and (kind, str(key)) not in SIGNED
    if isinstance(junk, list | dict) and junk:
        return False
    old_kind = kind_of(old)
    if old_kind == "null":
        return junk_kind == "bool" or (junk == "junk" and key not in NULL_UNTIL_SET)
    if key in IDENTIFIERS and junk_kind == "string":
        return False
    return old_kind != junk_kind


@pytest.mark.parametrize("kind", KINDS)
@SETTINGS
@given(data=st.data())
def test_one_value_replaced_or_deleted(kind: str, data: st.DataObject) -> None:
    case = data.draw(st.sampled_from(success_cases(kind)), label="case")
    endpoint = data.draw(st.sampled_from(_json_endpoints(case)), label="endpoint")
    original, before = _original(case.id, kind, endpoint)
    path = data.draw(st.sampled_from(list(paths(original))), label="path")
    junk = data.draw(st.sampled_from((DELETE, *NON_NUMERIC_JUNK, *NUMERIC_JUNK)), label="junk")
    old = get_at(original, path)
    parent = get_at(original, path[:-1])
    if junk == DELETE and not isinstance(parent, dict):
        junk = None
    mutant = deleted(original, path) if junk == DELETE else replaced(original, path, junk)
    after = case.run({endpoint: encode_body(mutant)})
    if only_removes(kind, path, old, junk):
        what = f"{case.id} {endpoint} {list(path)}: {old!r} -> {junk!r}"
        assert_only_removes(kind, before, after, what, readings(case.id, kind))


@pytest.mark.parametrize("kind", KINDS)
@SETTINGS
@given(data=st.data())
def test_several_values_replaced(kind: str, data: st.DataObject) -> None:
    """Up to five junk replacements at once: only typed errors; when every one of them may only remove values
    (`only_removes`), the points are a subset of the original's; whatever the junk, every number written is
    finite."""
    case = data.draw(st.sampled_from(success_cases(kind)), label="case")
    endpoint = data.draw(st.sampled_from(_json_endpoints(case)), label="endpoint")
    original, before = _original(case.id, kind, endpoint)
    mutant, removes_only, changes = original, True, []
    first_values: dict[tuple[str | int, ...], Any] = {}  # what each path held before it was first replaced
    for _ in range(data.draw(st.integers(1, 5), label="mutations")):
        node_paths = list(paths(mutant))
        if not node_paths:
            break
        path = data.draw(st.sampled_from(node_paths), label="path")
        junk = data.draw(st.sampled_from((*NON_NUMERIC_JUNK, *NUMERIC_JUNK)), label="junk")
        old = get_at(mutant, path)
        # Judged against the value before any replacement: a name replaced by null, then by "1e999", is a name
        # replaced by another text, which may be data.
        first = first_values.setdefault(path, old)
        removes_only = removes_only and only_removes(kind, path, first, junk)
        changes.append(f"{list(path)}: {old!r} -> {junk!r}")
        mutant = replaced(mutant, path, junk)
    after = case.run({endpoint: encode_body(mutant)})
    what = f"{case.id} {endpoint} {'; '.join(changes)}"
    for key, fields in (after.points or {}).items():
        for name, value in fields.items():
            if not value.startswith('"') and value not in ("true", "false"):
                assert math.isfinite(_number(value)), f"{what}: {key} {name}={value}"
    if removes_only:
        assert_only_removes(kind, before, after, what, readings(case.id, kind))


@pytest.mark.parametrize("kind", KINDS)
@SETTINGS
@given(data=st.data())
def test_truncated_body(kind: str, data: st.DataObject) -> None:
    """A body cut at any byte: a typed error, or (a miner's reply repaired) only fewer values."""
    case = data.draw(st.sampled_from(success_cases(kind)), label="case")
    endpoint = data.draw(st.sampled_from(sorted(case.served)), label="endpoint")
    body = case.served[endpoint]
    cut = data.draw(st.integers(0, max(len(body) - 1, 0)), label="cut")
    after = case.run({endpoint: body[:cut]})
    what = f"{case.id} {endpoint} cut at {cut} of {len(body)}"
    assert_only_removes(kind, case.run(), after, what, readings(case.id, kind))


# --- random JSON -------------------------------------------------------------------------------------------


@functools.cache
def _vocabulary(kind: str) -> tuple[str, ...]:
    """Every key of the kind's golden payloads: random objects built from them reach deep into the parsers."""
    keys: set[str] = set()
    for case in all_cases(kind):
        for endpoint, body in case.served.items():
            try:
                value = decode_body(case, endpoint, body)
            except Exception:
                continue
            keys.update(str(p[-1]) for p in paths(value) if isinstance(p[-1], str))
    return tuple(sorted(keys))


def json_values(kind: str) -> st.SearchStrategy[Any]:
    keys = st.sampled_from(_vocabulary(kind)) | st.text(max_size=6)
    scalars = (
        st.none()
        | st.booleans()
        | st.integers()
        | st.integers(min_value=-(10**30), max_value=10**30)
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(max_size=12)
        | st.sampled_from(["0", "1", "12.5", "-3", "1e999", "5 TH/s", "2026-04-04", "S", "E", "ok", "BTC"])
    )
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=6),
        max_leaves=30,
    )


@pytest.mark.parametrize("kind", KINDS)
@SETTINGS
@given(data=st.data())
def test_random_json_at_any_endpoint(kind: str, data: st.DataObject) -> None:
    case = data.draw(st.sampled_from(success_cases(kind)), label="case")
    endpoint = data.draw(st.sampled_from(sorted(case.served)), label="endpoint")
    value = data.draw(json_values(kind), label="payload")
    if isinstance(case, DeviceCase) and data.draw(st.booleans(), label="with status S"):
        value = {"STATUS": [{"STATUS": "S"}], **value} if isinstance(value, dict) else value
    case.run({endpoint: json.dumps(value).encode()})


# --- deep nesting, huge bodies, bytes that are not JSON ------------------------------------------------------

HOSTILE_BODIES: dict[str, bytes] = {
    "nested 10,000 arrays": nested(10_000),
    "nested 10,000 objects": b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
    "nested 990 arrays": nested(990),
    "empty": b"",
    "null": b"null",
    "a string": b'"ok"',
    "a number": b"42",
    "true": b"true",
    "an array": b"[]",
    "html": b"<html><body>502 Bad Gateway</body></html>",
    "invalid utf-8": b'{"a": "\xff\xfe"}',
    "utf-16 with BOM": '{"code": 0}'.encode("utf-16"),
    "NaN": b"NaN",
    "huge integer": b"1" + b"0" * 5000,
    "20 MB string": b'"' + b"x" * (20 * 1024 * 1024) + b'"',
    "a million zeros": b"[" + b"0," * 999_999 + b"0]",
    "NUL bytes": b"\x00" * 100,
}


# Bodies slow to decode (about 60 ms each): served once at each distinct endpoint, not in every case.
SLOW_BODIES = {"a million zeros"}


def every_endpoint(kind: str, *, once: bool = False) -> list[tuple[AnyCase, str]]:
    """(case, endpoint) for every endpoint of every success case; with `once`, each endpoint in its first case."""
    pairs, seen = [], set()
    for case in success_cases(kind):
        for endpoint in sorted(case.served):
            if not (once and endpoint in seen):
                pairs.append((case, endpoint))
            seen.add(endpoint)
    return pairs


@pytest.mark.parametrize(("kind", "name"), [(k, n) for k in KINDS for n in HOSTILE_BODIES])
def test_hostile_body_at_every_endpoint(kind: str, name: str) -> None:
    pairs = every_endpoint(kind, once=name in SLOW_BODIES)
    assert {endpoint for _, endpoint in pairs} == {e for case in success_cases(kind) for e in case.served}
    for case, endpoint in pairs:
        case.run({endpoint: HOSTILE_BODIES[name]})


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("depth", [500, 900, 990, 10_000])
def test_deep_nesting_inside_a_golden_payload(kind: str, depth: int) -> None:
    """Deeply nested junk at every top-level key of every endpoint (placed by text: json.dumps would recurse)."""
    case = success_cases(kind)[0]
    for endpoint in _json_endpoints(case):
        original, _ = _original(case.id, kind, endpoint)
        for path in [p for p in paths(original) if len(p) <= 2][:40]:
            text = encode_body(replaced(original, path, "@@NEST@@"))
            case.run({endpoint: text.replace(b'"@@NEST@@"', nested(depth, '{"a":null}'))})


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=40, deadline=None, database=None)
@given(blob=st.binary(max_size=200))
def test_random_bytes(kind: str, blob: bytes) -> None:
    """The same random bytes at every endpoint of every case."""
    for case, endpoint in every_endpoint(kind):
        case.run({endpoint: blob})
