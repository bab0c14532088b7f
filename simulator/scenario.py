"""Scenario files: TOML describing simulated pool accounts, workers, payouts and faults, validated once."""

from __future__ import annotations

import math
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal, TypeVar, cast, get_args

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

POOLS: tuple[Pool, ...] = get_args(Pool)
FAULTS: tuple[Fault, ...] = get_args(Fault)
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
_TOP_KEYS = {
    "name",
    "description",
    "seed",
    "history_start",
    "sats_per_phs_day",
    "hang_seconds",
    "latency_seconds",
    "accounts",
    "network",
    "miners",
}
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
_WORKER_KEYS = {
    "name",
    "nominal_ths",
    "online",
    "online_from",
    "offline_from",
    "offline_until",
    "variation",
    "disabled",
}
_NETWORK_KEYS = {
    "difficulty",
    "hashrate_ehs",
    "block_subsidy_sats",
    "fees_per_block_sats",
    "tip_height",
    "fault",
    "fault_from",
    "fault_until",
}
DEFAULT_BLOCK_SUBSIDY_SATS = 312_500_000  # 3.125 BTC, from the April 2024 halving to the next (height 1,050,000)


def scheduled_fault(fault: Fault | None, fault_from: int | None, fault_until: int | None, t: float) -> Fault | None:
    """`fault` if unix time `t` is within [fault_from, fault_until) (either end open), else None."""
    if fault is None or (fault_from is not None and t < fault_from):
        return None
    if fault_until is not None and t >= fault_until:
        return None
    return fault


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
    # Unix seconds before which the worker sends no shares (a scripted start: it joins the pool then).
    online_from: int | None = None
    # Unix seconds from which a worker that went offline at `offline_from` sends shares again (an outage that
    # ends); None = offline for good.
    offline_until: int | None = None
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
        return scheduled_fault(self.fault, self.fault_from, self.fault_until, t)


@dataclass(frozen=True, slots=True)
class Network:
    """The Bitcoin network as the simulated mempool.space reports it (`[network]`), with its fault schedule.

    `tip_height` is the height of the block found at 00:00 UTC on the scenario's `history_start`; blocks follow
    every 600 s. `difficulty` is that block's epoch difficulty and `hashrate_ehs` the network hashrate around it.
    """

    difficulty: float
    hashrate_ehs: float
    fees_per_block_sats: int
    tip_height: int
    block_subsidy_sats: int = DEFAULT_BLOCK_SUBSIDY_SATS
    fault: Fault | None = None
    fault_from: int | None = None
    fault_until: int | None = None

    def fault_at(self, t: float) -> Fault | None:
        """The fault the scenario schedules for the network API at unix time `t`, if any."""
        return scheduled_fault(self.fault, self.fault_from, self.fault_until, t)


# --- miners: fake ASICs behind the cgminer-family TCP API (simulator/miners/) ---

Dialect = Literal["antminer", "braiins_os", "whatsminer", "avalon"]
MinerPoolStatus = Literal["Alive", "Dead", "Disabled"]
DIALECTS: tuple[Dialect, ...] = ("antminer", "braiins_os", "whatsminer", "avalon")
MINER_POOL_STATUSES: tuple[MinerPoolStatus, ...] = ("Alive", "Dead", "Disabled")
# Slot 0 of a miner linked to a pool account: the stratum endpoint that pool publishes for BTC.
POOL_STRATUM_URLS: dict[Pool, str] = {
    "braiins": "stratum+tcp://stratum.braiins.com:3333",
    "emcd": "stratum+tcp://gate.emcd.network:3333",
    "f2pool": "stratum+tcp://btc.f2pool.com:1314",
    "viabtc": "stratum+tcp://btc.viabtc.io:3333",
    "antpool": "stratum+tcp://ss.antpool.com:3333",
}
_MINER_KEYS = {
    "group_id",
    "site",
    "name",
    "count",
    "dialect",
    "model",
    "nominal_ths",
    "variation",
    "power_w",
    "pool_account",
    "worker",
    "pools",
    "active_slot",
    "online",
    "offline_from",
    "fault",
    "fault_from",
    "fault_until",
    "hashing_from",
    "hashing_until",
    "slot_schedule",
}
_MINER_POOL_KEYS = {"url", "user", "status", "from", "until"}
_SLOT_SCHEDULE_KEYS = {"from", "active_slot"}


@dataclass(frozen=True, slots=True)
class MinerPool:
    """One pool slot configured on a miner, as its `pools` command lists it."""

    url: str
    user: str
    status: MinerPoolStatus = "Alive"
    # Scripted reconfiguration: the slot is configured only in [configured_from, configured_until) (open ends).
    configured_from: int | None = None
    configured_until: int | None = None

    def configured_at(self, t: float) -> bool:
        """Whether the slot is in the miner's pool list at unix time `t`."""
        if self.configured_from is not None and t < self.configured_from:
            return False
        return self.configured_until is None or t < self.configured_until


@dataclass(frozen=True, slots=True)
class Miner:
    """One simulated ASIC (a `[[miners]]` table after `count` expansion), with links resolved.

    A miner linked to a pool worker (`link` = (pool, username, worker)) hashes exactly that worker's curve:
    `nominal_ths` and `variation` are the worker's, slot 0 of `pools` is the pool's stratum URL with user
    `<username>.<worker>`, and `offline_from` is the earlier of the miner's own and the worker's.
    """

    name: str
    group_id: str
    site: str
    dialect: Dialect
    model: str
    nominal_ths: float
    pools: tuple[MinerPool, ...]
    variation: float = 0.03
    # Nominal wall power; None = derived from nominal_ths (simulator/miners/truth.py).
    power_w: float | None = None
    link: tuple[Pool, str, str] | None = None
    active_slot: int = 0
    # Unix seconds from which the miner is powered off (its port refuses connections).
    offline_from: int | None = None
    fault: Fault | None = None
    fault_from: int | None = None
    fault_until: int | None = None
    # Scripted switches of the active slot: (from unix seconds, slot index), sorted; before the first, active_slot.
    slot_schedule: tuple[tuple[int, int], ...] = ()
    # Unlinked miners only: powered on (answering its API) but hashing nothing before `hashing_from` and from
    # `hashing_until` on (waiting for work, or curtailed). A linked miner follows its worker's online_from instead.
    hashing_from: int | None = None
    hashing_until: int | None = None

    def fault_at(self, t: float) -> Fault | None:
        """The fault the scenario schedules for this miner at unix time `t`, if any."""
        return scheduled_fault(self.fault, self.fault_from, self.fault_until, t)

    def active_slot_at(self, t: float) -> int:
        """The index (into `pools`) of the slot the miner hashes on at unix time `t`, per `slot_schedule`."""
        active = self.active_slot
        for start, slot in self.slot_schedule:
            if t >= start:
                active = slot
        return active

    def online_at(self, t: float) -> bool:
        """Whether the miner is powered on (listening) at `t`."""
        return self.offline_from is None or t < self.offline_from


@dataclass(frozen=True, slots=True)
class Scenario:
    """A whole simulated world: global constants plus every account the simulator serves."""

    seed: int
    history_start: date
    sats_per_phs_day: float
    accounts: tuple[Account, ...]
    hang_seconds: float = DEFAULT_HANG_SECONDS
    latency_seconds: float = 2.0
    name: str = ""
    description: str = ""
    network: Network | None = None
    miners: tuple[Miner, ...] = ()

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
    latency = _opt(data, "", "latency_seconds", _as_positive_number, 2.0)
    raw_accounts = _get(data, "", "accounts", _as_table_list)
    if not raw_accounts:
        raise ScenarioError("accounts: at least one [[accounts]] table is required")
    history_ts = day_start_ts(history_start)
    accounts = tuple(_parse_account(raw, f"accounts[{index}]", history_ts) for index, raw in enumerate(raw_accounts))
    _check_unique(accounts)
    no_miners: list[Mapping[str, Any]] = []
    miners = _parse_miners(_opt(data, "", "miners", _as_table_list, no_miners), accounts, history_ts)
    return Scenario(
        miners=miners,
        seed=seed,
        history_start=history_start,
        sats_per_phs_day=sats,
        accounts=accounts,
        hang_seconds=hang,
        latency_seconds=latency,
        name=_opt(data, "", "name", _as_str, ""),
        description=_opt(data, "", "description", _as_str, ""),
        network=_parse_network(data["network"], "network") if "network" in data else None,
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
    fault_from, fault_until = _fault_window(raw, where)
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


def _parse_network(raw: Any, where: str) -> Network:
    if not isinstance(raw, dict):
        raise ScenarioError(f"{where}: expected a table ([network] section)")
    _reject_unknown(raw, _NETWORK_KEYS, where)
    fault_from, fault_until = _fault_window(raw, where)
    return Network(
        difficulty=_get(raw, where, "difficulty", _as_positive_number),
        hashrate_ehs=_get(raw, where, "hashrate_ehs", _as_positive_number),
        fees_per_block_sats=_get(raw, where, "fees_per_block_sats", _as_non_negative_int),
        tip_height=_get(raw, where, "tip_height", _as_non_negative_int),
        block_subsidy_sats=_opt(raw, where, "block_subsidy_sats", _as_non_negative_int, DEFAULT_BLOCK_SUBSIDY_SATS),
        fault=cast(Fault | None, _opt_or_none(raw, where, "fault", _choice(FAULTS))),
        fault_from=fault_from,
        fault_until=fault_until,
    )


def _fault_window(raw: Mapping[str, Any], where: str) -> tuple[int | None, int | None]:
    fault_from = _opt_or_none(raw, where, "fault_from", _as_timestamp)
    fault_until = _opt_or_none(raw, where, "fault_until", _as_timestamp)
    if fault_from is not None and fault_until is not None and fault_until <= fault_from:
        raise ScenarioError(f"{where}.fault_until: must be later than fault_from")
    return fault_from, fault_until


def _parse_worker(raw: Mapping[str, Any], where: str, history_ts: int) -> Worker:
    _reject_unknown(raw, _WORKER_KEYS, where)
    online = _opt(raw, where, "online", _as_bool, True)
    offline_from = _opt_or_none(raw, where, "offline_from", _as_timestamp)
    if not online:
        if offline_from is not None:
            raise ScenarioError(f"{where}.offline_from: give either online = false or offline_from, not both")
        offline_from = history_ts
    online_from = _opt_or_none(raw, where, "online_from", _as_timestamp)
    if online_from is not None and offline_from is not None and offline_from <= online_from:
        raise ScenarioError(f"{where}.offline_from: must be later than online_from")
    offline_until = _opt_or_none(raw, where, "offline_until", _as_timestamp)
    if offline_until is not None and (offline_from is None or offline_until <= offline_from):
        raise ScenarioError(f"{where}.offline_until: needs an offline_from before it")
    variation = _opt(raw, where, "variation", _as_non_negative, 0.03)
    if variation > 0.45:
        # The curve's amplitudes add up to 2 × variation; this keeps it above 10 % of nominal.
        raise ScenarioError(f"{where}.variation: must be between 0 and 0.45, got {variation}")
    return Worker(
        name=_get(raw, where, "name", _as_name),
        nominal_ths=_get(raw, where, "nominal_ths", _as_positive_number),
        variation=variation,
        offline_from=offline_from,
        online_from=online_from,
        offline_until=offline_until,
        disabled=_opt(raw, where, "disabled", _as_bool, False),
    )


def _parse_miners(
    raw_miners: list[Mapping[str, Any]], accounts: tuple[Account, ...], history_ts: int
) -> tuple[Miner, ...]:
    miners: list[Miner] = []
    names: dict[str, str] = {}
    links: dict[tuple[Pool, str, str], str] = {}
    for index, raw in enumerate(raw_miners):
        where = f"miners[{index}]"
        for miner in _parse_miner(raw, where, accounts, history_ts):
            if miner.name in names:
                raise ScenarioError(f"{where}.name: duplicate miner name {miner.name!r} (also in {names[miner.name]})")
            names[miner.name] = where
            if miner.link is not None:
                if miner.link in links:
                    # Two devices on one worker name would each claim the worker's whole curve.
                    raise ScenarioError(
                        f"{where}.worker: worker {miner.link[2]!r} of {miner.link[0]}:{miner.link[1]} is already "
                        f"hashed by miner {links[miner.link]!r}"
                    )
                links[miner.link] = miner.name
            miners.append(miner)
    return tuple(miners)


def _parse_miner(raw: Mapping[str, Any], where: str, accounts: tuple[Account, ...], history_ts: int) -> list[Miner]:
    """One `[[miners]]` table, expanded into `count` miners (name, worker and pool users formatted with n)."""
    _reject_unknown(raw, _MINER_KEYS, where)
    count = _opt(raw, where, "count", _as_positive_int, 1)
    name_pattern = _get(raw, where, "name", _as_name)
    link_text = _opt_or_none(raw, where, "pool_account", _as_name)
    worker_pattern = _opt_or_none(raw, where, "worker", _as_name)
    account, nominal, variation = _miner_curve(raw, where, accounts, link_text, worker_pattern)
    no_pools: list[Mapping[str, Any]] = []
    extra = [
        _parse_miner_pool(p, f"{where}.pools[{i}]")
        for i, p in enumerate(_opt(raw, where, "pools", _as_table_list, no_pools))
    ]
    if account is None and not extra:
        raise ScenarioError(f"{where}.pools: a miner without pool_account needs at least one pool slot")
    slot_count = len(extra) + (0 if account is None else 1)
    active_slot = _opt(raw, where, "active_slot", _as_non_negative_int, 0)
    if active_slot >= slot_count:
        raise ScenarioError(f"{where}.active_slot: the miner has {slot_count} pool slot(s), got {active_slot}")
    online = _opt(raw, where, "online", _as_bool, True)
    offline_from = _opt_or_none(raw, where, "offline_from", _as_timestamp)
    if not online:
        if offline_from is not None:
            raise ScenarioError(f"{where}.offline_from: give either online = false or offline_from, not both")
        offline_from = history_ts
    fault_from, fault_until = _fault_window(raw, where)
    scripted = _parse_miner_script(raw, where, account is not None, slot_count)
    dialect = cast(Dialect, _get(raw, where, "dialect", _choice(DIALECTS)))
    common: dict[str, Any] = {
        "group_id": _get(raw, where, "group_id", _as_name),
        "site": _get(raw, where, "site", _as_name),
        "dialect": dialect,
        "model": _get(raw, where, "model", _as_name),
        "power_w": _opt_or_none(raw, where, "power_w", _as_positive_number),
        "active_slot": active_slot,
        "fault": cast(Fault | None, _opt_or_none(raw, where, "fault", _choice(MINER_FAULTS))),
        "fault_from": fault_from,
        "fault_until": fault_until,
        **scripted,
    }
    miners = []
    for n in range(1, count + 1):
        slots: list[MinerPool] = []
        link: tuple[Pool, str, str] | None = None
        miner_nominal, miner_variation, miner_offline = nominal, variation, offline_from
        if account is not None and worker_pattern is not None:
            worker_name = _expand(worker_pattern, n, count, f"{where}.worker")
            worker = next((w for w in account.workers if w.name == worker_name), None)
            if worker is None:
                raise ScenarioError(f"{where}.worker: account {link_text!r} has no worker {worker_name!r}")
            link = (account.pool, account.username, worker.name)
            slots.append(MinerPool(POOL_STRATUM_URLS[account.pool], f"{account.username}.{worker.name}"))
            miner_nominal, miner_variation = worker.nominal_ths, worker.variation
            if worker.offline_from is not None and worker.offline_until is None:
                # A worker's outage that ends leaves the miner powered: it hashes the worker's curve (zero then).
                miner_offline = min(worker.offline_from, miner_offline or worker.offline_from)
        for i, slot in enumerate(extra):
            user = _expand(slot.user, n, count, f"{where}.pools[{i}].user")
            slots.append(MinerPool(slot.url, user, slot.status, slot.configured_from, slot.configured_until))
        if slots[active_slot].status != "Alive":
            raise ScenarioError(f"{where}.active_slot: slot {active_slot} is {slots[active_slot].status}, not Alive")
        _check_scripted_slots(slots, active_slot, scripted["slot_schedule"], where)
        assert miner_nominal is not None  # set above for unlinked miners, from the worker for linked ones
        miners.append(
            Miner(
                name=_expand(name_pattern, n, count, f"{where}.name"),
                nominal_ths=miner_nominal,
                variation=miner_variation,
                pools=tuple(slots),
                link=link,
                offline_from=miner_offline,
                **common,
            )
        )
    return miners


def _parse_miner_script(raw: Mapping[str, Any], where: str, linked: bool, slot_count: int) -> dict[str, Any]:
    """A miner's time-scripted keys (`hashing_from`, `hashing_until`, `slot_schedule`) as Miner field values."""
    hashing_from = _opt_or_none(raw, where, "hashing_from", _as_timestamp)
    hashing_until = _opt_or_none(raw, where, "hashing_until", _as_timestamp)
    if linked and (hashing_from is not None or hashing_until is not None):
        key = "hashing_from" if hashing_from is not None else "hashing_until"
        raise ScenarioError(f"{where}.{key}: a linked miner hashes its worker's curve; script the worker instead")
    if hashing_from is not None and hashing_until is not None and hashing_until <= hashing_from:
        raise ScenarioError(f"{where}.hashing_until: must be later than hashing_from")
    no_schedule: list[Mapping[str, Any]] = []
    slot_schedule = tuple(
        _parse_slot_switch(entry, f"{where}.slot_schedule[{i}]", slot_count)
        for i, entry in enumerate(_opt(raw, where, "slot_schedule", _as_table_list, no_schedule))
    )
    if [start for start, _ in slot_schedule] != sorted({start for start, _ in slot_schedule}):
        raise ScenarioError(f"{where}.slot_schedule: entries must be in strictly increasing `from` order")
    return {"slot_schedule": slot_schedule, "hashing_from": hashing_from, "hashing_until": hashing_until}


def _miner_curve(
    raw: Mapping[str, Any],
    where: str,
    accounts: tuple[Account, ...],
    link_text: str | None,
    worker_pattern: str | None,
) -> tuple[Account | None, float | None, float]:
    """The linked account (None when unlinked), and the miner's own nominal_ths and variation when unlinked."""
    if link_text is not None and worker_pattern is None:
        raise ScenarioError(f"{where}.worker: required with pool_account (the worker whose curve the miner hashes)")
    if worker_pattern is not None and link_text is None:
        raise ScenarioError(f"{where}.pool_account: required with worker ('<pool>:<username>')")
    if link_text is not None:
        for key in ("nominal_ths", "variation"):
            if key in raw:
                raise ScenarioError(f"{_key_path(where, key)}: a linked miner hashes its worker's curve; set it there")
        return _linked_account(link_text, accounts, f"{where}.pool_account"), None, 0.03
    nominal = _get(raw, where, "nominal_ths", _as_positive_number)
    variation = _opt(raw, where, "variation", _as_non_negative, 0.03)
    if variation > 0.45:
        raise ScenarioError(f"{where}.variation: must be between 0 and 0.45, got {variation}")
    return None, nominal, variation


def _linked_account(text: str, accounts: tuple[Account, ...], where: str) -> Account:
    pool, separator, username = text.partition(":")
    if not separator or pool not in POOLS or not username:
        raise ScenarioError(f"{where}: expected '<pool>:<username>' with pool one of {', '.join(POOLS)}, got {text!r}")
    for account in accounts:
        if account.pool == pool and account.username == username:
            return account
    raise ScenarioError(f"{where}: no account {text!r} in this scenario")


def _parse_miner_pool(raw: Mapping[str, Any], where: str) -> MinerPool:
    _reject_unknown(raw, _MINER_POOL_KEYS, where)
    configured_from = _opt_or_none(raw, where, "from", _as_timestamp)
    configured_until = _opt_or_none(raw, where, "until", _as_timestamp)
    if configured_from is not None and configured_until is not None and configured_until <= configured_from:
        raise ScenarioError(f"{where}.until: must be later than from")
    return MinerPool(
        url=_get(raw, where, "url", _as_name),
        user=_get(raw, where, "user", _as_name),
        status=cast(MinerPoolStatus, _opt(raw, where, "status", _choice(MINER_POOL_STATUSES), "Alive")),
        configured_from=configured_from,
        configured_until=configured_until,
    )


def _parse_slot_switch(raw: Mapping[str, Any], where: str, slot_count: int) -> tuple[int, int]:
    """One `slot_schedule` entry: (from unix seconds, the slot index the miner hashes on from then)."""
    _reject_unknown(raw, _SLOT_SCHEDULE_KEYS, where)
    slot = _get(raw, where, "active_slot", _as_non_negative_int)
    if slot >= slot_count:
        raise ScenarioError(f"{where}.active_slot: the miner has {slot_count} pool slot(s), got {slot}")
    return _get(raw, where, "from", _as_timestamp), slot


def _check_scripted_slots(
    slots: list[MinerPool], active_slot: int, schedule: tuple[tuple[int, int], ...], where: str
) -> None:
    """The active slot must be configured and Alive at every moment (checked at each scripted boundary).

    Slots and the schedule are piecewise constant between the boundaries, so checking just before the first
    and at each boundary covers all time.
    """
    bounds = {start for start, _ in schedule}
    for slot in slots:
        bounds.update(b for b in (slot.configured_from, slot.configured_until) if b is not None)
    if not bounds:
        return
    probe = Miner(
        name="probe",
        group_id="probe",
        site="probe",
        dialect="antminer",
        model="probe",
        nominal_ths=1.0,
        pools=tuple(slots),
        active_slot=active_slot,
        slot_schedule=schedule,
    )
    for t in sorted({min(bounds) - 1, *bounds}):
        index = probe.active_slot_at(t)
        slot = slots[index]
        if not slot.configured_at(t) or slot.status != "Alive":
            raise ScenarioError(
                f"{where}.slot_schedule: at {datetime.fromtimestamp(t, UTC):%Y-%m-%dT%H:%M:%SZ} the active slot "
                f"{index} is not configured or not Alive"
            )


def _expand(pattern: str, n: int, count: int, where: str) -> str:
    """`pattern` formatted with n when a table expands into several miners; used literally when count = 1."""
    if count == 1:
        return pattern
    try:
        text = pattern.format(n=n)
    except (KeyError, IndexError, ValueError) as exc:
        raise ScenarioError(f"{where}: not a format pattern over n (e.g. 's21-{{n:03}}'): {exc}") from None
    return _as_name(text, where)


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
