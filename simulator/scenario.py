"""Scenario files: TOML describing simulated pool accounts, workers, payouts and faults, validated once."""

from __future__ import annotations

import math
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal, TypeVar, cast

Pool = Literal["braiins", "emcd", "f2pool", "viabtc", "antpool"]
Fault = Literal[
    "auth",
    "server_error",
    "rate_limit",
    "malformed",
    "hang",
    "latency",
    "refused",
    "truncated",
    "wrong_types",
    "missing_fields",
]
DeadEmptyForm = Literal["object", "list"]

POOLS: tuple[Pool, ...] = ("braiins", "emcd", "f2pool", "viabtc", "antpool")
FAULTS: tuple[Fault, ...] = (
    "auth",
    "server_error",
    "rate_limit",
    "malformed",
    "hang",
    "latency",
    "refused",
    "truncated",
    "wrong_types",
    "missing_fields",
)
# What a miner's TCP API can do wrong (it has no auth, status codes or rate limits on its read commands).
MINER_FAULTS: tuple[Fault, ...] = (
    "malformed",
    "hang",
    "latency",
    "refused",
    "truncated",
    "wrong_types",
    "missing_fields",
)
# Units Braiins is known to send in `hash_rate_unit` (reference §2.1); the value is a divisor of H/s.
HASH_RATE_UNITS: dict[str, float] = {"Mh/s": 1e6, "Gh/s": 1e9, "Th/s": 1e12, "Ph/s": 1e15}
DEFAULT_HANG_SECONDS = 30.0

_T = TypeVar("_T")
_TOP_KEYS = {"name", "description", "seed", "history_start", "sats_per_phs_day", "hang_seconds", "accounts"}
_ACCOUNT_KEYS = {
    "group_id",
    "pool",
    "username",
    "secret",
    "api_secret",
    "coin",
    "hash_rate_unit",
    "payout_address",
    "payout_addresses",
    "payout_every_days",
    "payout_delay_hours",
    "min_payout_sats",
    "fault",
    "fault_from",
    "fault_until",
    "details_dead_empty",
    "workers",
}
_WORKER_KEYS = {"name", "nominal_ths", "online", "offline_from", "variation", "disabled"}


class ScenarioError(ValueError):
    """A scenario file that cannot be used; the message names the file and the offending key."""


@dataclass(frozen=True, slots=True)
class Worker:
    """One simulated worker: a smooth deterministic hashrate curve around `nominal_ths` until `offline_from`."""

    name: str
    nominal_ths: float
    variation: float = 0.03
    # Unix seconds from which the worker sends no shares; `online = false` in the file means history_start.
    offline_from: int | None = None
    # Braiins "dis": monitoring switched off at the pool; the worker still hashes and earns.
    disabled: bool = False


@dataclass(frozen=True, slots=True)
class Account:
    """One pool account: credentials, payout behaviour, fault injection and its workers."""

    pool: Pool
    group_id: str
    username: str
    secret: str = field(repr=False)
    # The signing secret where a pool signs requests (ViaBTC's X-SIGNATURE, AntPool's HMAC); `secret` is the key.
    api_secret: str | None = field(default=None, repr=False)
    coin: str = "BTC"
    hash_rate_unit: str = "Gh/s"
    payout_address: str | None = None
    payout_addresses: tuple[str, ...] = ()
    payout_every_days: int = 7
    payout_delay_hours: float = 2.0
    min_payout_sats: int = 0
    fault: Fault | None = None
    fault_from: int | None = None
    fault_until: int | None = None
    details_dead_empty: DeadEmptyForm = "object"
    workers: tuple[Worker, ...] = ()

    def fault_at(self, t: float) -> Fault | None:
        """The fault the scenario schedules for this account at unix time `t`, if any."""
        if self.fault is None:
            return None
        if self.fault_from is not None and t < self.fault_from:
            return None
        if self.fault_until is not None and t >= self.fault_until:
            return None
        return self.fault


@dataclass(frozen=True, slots=True)
class Scenario:
    """A whole simulated world: global constants plus every account the simulator serves."""

    seed: int
    history_start: date
    sats_per_phs_day: float
    accounts: tuple[Account, ...]
    hang_seconds: float = DEFAULT_HANG_SECONDS
    name: str = ""
    description: str = ""

    @property
    def history_start_ts(self) -> int:
        """Unix seconds of 00:00 UTC on `history_start`."""
        return day_start_ts(self.history_start)

    def account(self, pool: Pool, username: str) -> Account:
        """The account `username` at `pool`; KeyError if the scenario has none."""
        for account in self.accounts:
            if account.pool == pool and account.username == username:
                return account
        raise KeyError(f"{pool}:{username}")


def day_start_ts(day: date) -> int:
    """Unix seconds of 00:00 UTC on `day`."""
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())


def load_scenario(path: Path) -> Scenario:
    """Read and validate a scenario TOML file; raise ScenarioError naming the file and key on bad input."""
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read scenario: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path}: invalid TOML: {exc}") from None
    return parse_scenario(data, source=str(path))


def parse_scenario(data: Mapping[str, Any], *, source: str = "<scenario>") -> Scenario:
    """Validate an already-decoded scenario mapping (what tomllib returns) into a Scenario."""
    try:
        return _parse_top(data)
    except ScenarioError as exc:
        raise ScenarioError(f"{source}: {exc}") from None


def _parse_top(data: Mapping[str, Any]) -> Scenario:
    _reject_unknown(data, _TOP_KEYS, "")
    seed = _get(data, "", "seed", _as_int)
    history_start = _get(data, "", "history_start", _as_date)
    sats = _get(data, "", "sats_per_phs_day", _as_positive_number)
    hang = _opt(data, "", "hang_seconds", _as_positive_number, DEFAULT_HANG_SECONDS)
    raw_accounts = _get(data, "", "accounts", _as_table_list)
    if not raw_accounts:
        raise ScenarioError("accounts: at least one [[accounts]] table is required")
    history_ts = day_start_ts(history_start)
    accounts = tuple(_parse_account(raw, f"accounts[{index}]", history_ts) for index, raw in enumerate(raw_accounts))
    _check_unique(accounts)
    return Scenario(
        seed=seed,
        history_start=history_start,
        sats_per_phs_day=sats,
        accounts=accounts,
        hang_seconds=hang,
        name=_opt(data, "", "name", _as_str, ""),
        description=_opt(data, "", "description", _as_str, ""),
    )


def _parse_account(raw: Mapping[str, Any], where: str, history_ts: int) -> Account:
    _reject_unknown(raw, _ACCOUNT_KEYS, where)
    pool = cast(Pool, _get(raw, where, "pool", _choice(POOLS)))
    coin = _opt(raw, where, "coin", _as_str, "BTC")
    if coin != "BTC":
        # Truth and both wire formats are written for Bitcoin only (EMCD `bitcoin`, Braiins `btc`).
        raise ScenarioError(f"{where}.coin: only 'BTC' is simulated, got {coin!r}")
    if pool != "braiins" and "hash_rate_unit" in raw:
        raise ScenarioError(f"{where}.hash_rate_unit: only Braiins accounts have a hash_rate_unit")
    fault_from = _opt_or_none(raw, where, "fault_from", _as_timestamp)
    fault_until = _opt_or_none(raw, where, "fault_until", _as_timestamp)
    if fault_from is not None and fault_until is not None and fault_until <= fault_from:
        raise ScenarioError(f"{where}.fault_until: must be later than fault_from")
    no_workers: list[Mapping[str, Any]] = []
    raw_workers = _opt(raw, where, "workers", _as_table_list, no_workers)
    workers = tuple(_parse_worker(w, f"{where}.workers[{index}]", history_ts) for index, w in enumerate(raw_workers))
    names = [w.name for w in workers]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ScenarioError(f"{where}.workers: duplicate worker name {duplicates[0]!r}")
    return Account(
        pool=pool,
        group_id=_get(raw, where, "group_id", _as_name),
        username=_get(raw, where, "username", _as_name),
        secret=_get(raw, where, "secret", _as_name),
        api_secret=_opt_or_none(raw, where, "api_secret", _as_name),
        coin=coin,
        hash_rate_unit=_opt(raw, where, "hash_rate_unit", _choice(tuple(HASH_RATE_UNITS)), "Gh/s"),
        payout_address=_opt_or_none(raw, where, "payout_address", _as_name),
        payout_addresses=tuple(_opt(raw, where, "payout_addresses", _as_name_list, [])),
        payout_every_days=_opt(raw, where, "payout_every_days", _as_positive_int, 7),
        payout_delay_hours=_opt(raw, where, "payout_delay_hours", _as_non_negative, 2.0),
        min_payout_sats=_opt(raw, where, "min_payout_sats", _as_non_negative_int, 0),
        fault=cast(Fault | None, _opt_or_none(raw, where, "fault", _choice(FAULTS))),
        fault_from=fault_from,
        fault_until=fault_until,
        details_dead_empty=cast(
            DeadEmptyForm,
            _opt(raw, where, "details_dead_empty", _choice(("object", "list")), "object"),
        ),
        workers=workers,
    )


def _parse_worker(raw: Mapping[str, Any], where: str, history_ts: int) -> Worker:
    _reject_unknown(raw, _WORKER_KEYS, where)
    online = _opt(raw, where, "online", _as_bool, True)
    offline_from = _opt_or_none(raw, where, "offline_from", _as_timestamp)
    if not online:
        if offline_from is not None:
            raise ScenarioError(f"{where}.offline_from: give either online = false or offline_from, not both")
        offline_from = history_ts
    variation = _opt(raw, where, "variation", _as_non_negative, 0.03)
    if variation > 0.45:
        # The curve's amplitudes add up to 2 × variation; this keeps it above 10 % of nominal.
        raise ScenarioError(f"{where}.variation: must be between 0 and 0.45, got {variation}")
    return Worker(
        name=_get(raw, where, "name", _as_name),
        nominal_ths=_get(raw, where, "nominal_ths", _as_positive_number),
        variation=variation,
        offline_from=offline_from,
        disabled=_opt(raw, where, "disabled", _as_bool, False),
    )


def _check_unique(accounts: tuple[Account, ...]) -> None:
    seen_users: set[tuple[str, str]] = set()
    seen_secrets: set[tuple[str, str]] = set()
    for index, account in enumerate(accounts):
        user_key = (account.pool, account.username)
        if user_key in seen_users:
            raise ScenarioError(f"accounts[{index}].username: duplicate {account.pool} username {account.username!r}")
        secret_key = (account.pool, account.secret)
        if secret_key in seen_secrets:
            # The secret selects the account, so two accounts of one pool cannot share it.
            raise ScenarioError(f"accounts[{index}].secret: another {account.pool} account has the same secret")
        seen_users.add(user_key)
        seen_secrets.add(secret_key)


# --- small typed readers: each returns the value or raises ScenarioError(f"{where}: reason") ---


def _reject_unknown(raw: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise ScenarioError(f"{_key_path(where, unknown[0])}: unknown key (allowed: {', '.join(sorted(allowed))})")


def _key_path(table: str, key: str) -> str:
    return f"{table}.{key}" if table else key


def _get(raw: Mapping[str, Any], table: str, key: str, convert: Callable[[Any, str], _T]) -> _T:
    if key not in raw:
        raise ScenarioError(f"{_key_path(table, key)}: required key is missing")
    return convert(raw[key], _key_path(table, key))


def _opt(raw: Mapping[str, Any], table: str, key: str, convert: Callable[[Any, str], _T], default: _T) -> _T:
    return convert(raw[key], _key_path(table, key)) if key in raw else default


def _opt_or_none(raw: Mapping[str, Any], table: str, key: str, convert: Callable[[Any, str], _T]) -> _T | None:
    return convert(raw[key], _key_path(table, key)) if key in raw else None


def _as_str(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ScenarioError(f"{where}: expected a string, got {type(value).__name__}")
    return value


def _as_name(value: Any, where: str) -> str:
    text = _as_str(value, where)
    if not text.strip() or text != text.strip():
        raise ScenarioError(f"{where}: must be non-empty without surrounding spaces")
    return text


def _as_name_list(value: Any, where: str) -> list[str]:
    if not isinstance(value, list):
        raise ScenarioError(f"{where}: expected a list of strings, got {type(value).__name__}")
    return [_as_name(item, f"{where}[{index}]") for index, item in enumerate(value)]


def _as_bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ScenarioError(f"{where}: expected true or false, got {type(value).__name__}")
    return value


def _as_int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ScenarioError(f"{where}: expected an integer, got {type(value).__name__}")
    return value


def _as_positive_int(value: Any, where: str) -> int:
    number = _as_int(value, where)
    if number <= 0:
        raise ScenarioError(f"{where}: must be a positive integer, got {number}")
    return number


def _as_non_negative_int(value: Any, where: str) -> int:
    number = _as_int(value, where)
    if number < 0:
        raise ScenarioError(f"{where}: must not be negative, got {number}")
    return number


def _as_number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ScenarioError(f"{where}: expected a finite number, got {value!r}")
    return float(value)


def _as_positive_number(value: Any, where: str) -> float:
    number = _as_number(value, where)
    if number <= 0:
        raise ScenarioError(f"{where}: must be greater than 0, got {number}")
    return number


def _as_non_negative(value: Any, where: str) -> float:
    number = _as_number(value, where)
    if number < 0:
        raise ScenarioError(f"{where}: must not be negative, got {number}")
    return number


def _as_date(value: Any, where: str) -> date:
    if isinstance(value, datetime):
        raise ScenarioError(f"{where}: expected a date (YYYY-MM-DD), got a date-time")
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise ScenarioError(f"{where}: expected a date (YYYY-MM-DD), got {value!r}")


def _as_timestamp(value: Any, where: str) -> int:
    """Accept a TOML date-time (no offset = UTC), a TOML date (00:00 UTC) or unix seconds."""
    if isinstance(value, datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return math.floor(moment.timestamp())
    if isinstance(value, date):
        return day_start_ts(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise ScenarioError(f"{where}: expected a date-time (2026-11-20T06:00:00Z) or unix seconds, got {value!r}")


def _choice(options: tuple[str, ...]) -> Callable[[Any, str], str]:
    def convert(value: Any, where: str) -> str:
        if value not in options:
            raise ScenarioError(f"{where}: expected one of {', '.join(repr(o) for o in options)}, got {value!r}")
        return cast(str, value)

    return convert


def _as_table_list(value: Any, where: str) -> list[Mapping[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise ScenarioError(f"{where}: expected an array of tables ([[...]] sections)")
    return value
