"""Device ground truth: what a simulated miner reports at unix time `t`, as pure functions of (scenario, miner, t).

Hashrate: a miner linked to a pool worker hashes exactly that worker's curve (`simulator.truth.worker_rate`), so
its 5-minute figure equals the pool's 5-minute figure for that worker. An unlinked miner gets its own curve from
the same formula, seeded from its name. Window figures are exact averages of the curve over [t − window, t].
Everything else derives from the hashrate and seeded constants: the load (1-minute rate / nominal) heats the
chips above a seeded ambient with a daily cycle, the fans follow the hottest chip, the power follows the load,
and the share counters are the hashes since the mining software started / 2**32 / the pool slot's difficulty.
Sensor values are quantised here to what the dialect prints (whole °C, 1/16 °C on BOSminer, 0.01 °C on
btminer), so `temp_max_c` is exactly the reported value. No wall clock, no global random state.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

from simulator import truth as pool_truth
from simulator.scenario import Account, Dialect, Miner, Scenario, Worker

DAY_S = 86_400
HASHES_PER_SHARE = 2**32  # a difficulty-1 share, as in simulator.truth
BOARDS = 3
# Power when the scenario gives none: about an S19 XP / S21 class machine.
DEFAULT_WATTS_PER_THS = 21.5
FANS: dict[Dialect, int] = {"antminer": 4, "braiins_os": 4, "whatsminer": 2, "avalon": 2}
CHIPS_PER_BOARD: dict[Dialect, int] = {"antminer": 126, "braiins_os": 126, "whatsminer": 156, "avalon": 160}
# Chip sensors per board, inlet to outlet (the Antminer "a-b-c-d" order): offsets in °C from the board's mean.
_CHIP_SENSOR_OFFSETS = (-9.0, -7.5, 5.0, 6.5)
_PCB_BELOW_CHIP_C = 6.0
_CHIP_RISE_AT_FULL_LOAD_C = 44.0
_HS_PER_THS = 1e12


@dataclass(frozen=True, slots=True)
class PoolSlotTruth:
    """One pool slot as the miner's `pools` command reports it."""

    index: int  # position in the list (0-based), what the scenario's `active_slot` counts
    slot: int  # the `POOL` number the miner prints: the index, except Whatsminer counts from 1
    url: str
    user: str
    status: str  # "Alive", "Dead" or "Disabled"
    active: bool  # `Stratum Active`: the slot the miner is hashing on
    accepted: int  # shares at `difficulty` since the mining software started (0 on idle slots)
    rejected: int
    difficulty: int  # the stratum difficulty of the slot's shares
    last_share_ts: int  # unix seconds of the slot's last share, 0 = never


@dataclass(frozen=True, slots=True)
class BoardTruth:
    """One hash board (chain): its share of the hashrate, its sensors as the dialect prints them."""

    index: int
    hashrate_hs: float  # mean over the last 60 s
    hashrate_5s_hs: float  # mean over the last 5 s
    nominal_hs: float
    chip_temps_c: tuple[float, ...]  # 4 sensors, inlet to outlet
    pcb_temps_c: tuple[float, ...]  # 4 sensors, inlet to outlet
    chips: int


@dataclass(frozen=True, slots=True)
class MinerTruth:
    """Everything a miner reports at one instant, in base units (H/s, W, °C, RPM, s).

    `online` is False while the miner is powered off (its port refuses connections); the readings are then
    zero or None and `pools` is empty. `power_w` is None on dialects that report no power (antminer).
    """

    name: str
    group_id: str
    site: str
    dialect: Dialect
    model: str  # as the dialect reports it (README: which command carries it)
    t: int
    online: bool
    hashrate_hs: float  # mean over [t − 60, t]: `MHS 1m` (braiins_os, whatsminer, avalon)
    hashrate_5s_hs: float  # mean over [t − 5, t]: antminer `GHS 5s`, `MHS 5s`, avalon `GHSspd`
    hashrate_30s_hs: float  # avalon `MHS 30s`
    hashrate_5m_hs: float
    hashrate_15m_hs: float
    hashrate_30m_hs: float  # antminer `GHS 30m` / `rate_30m`
    hashrate_avg_hs: float  # mean since the mining software started (`GHS av` / `MHS av`)
    nominal_hs: float
    total_hashes: float  # since the mining software started
    power_w: float | None
    power_limit_w: float | None
    temp_max_c: float | None  # hottest chip sensor
    ambient_c: float | None
    fan_rpms: tuple[int, ...]
    fan_min_rpm: int | None
    uptime_s: int | None  # mining software uptime: `Elapsed` in every dialect
    system_uptime_s: int | None  # since boot: Whatsminer `Uptime`
    accepted: int
    rejected: int
    boards: tuple[BoardTruth, ...]
    pools: tuple[PoolSlotTruth, ...]
    device_id: str  # 16 hex digits: seeds serials, MAC, DNA


def _fraction(scenario: Scenario, miner: Miner, *parts: str) -> float:
    return pool_truth.seeded_fraction(scenario.seed, "device", miner.name, *parts)


@functools.lru_cache(maxsize=65_536)
def _own_curve(miner: Miner) -> tuple[Account, Worker]:
    # The pool-side formula with a pseudo account: phases are seeded from the miner's name. A scripted
    # hashing window bounds the curve while the miner itself stays up (is_online looks at offline_from only).
    account = Account(pool="braiins", group_id=miner.group_id, username=f"device:{miner.name}", secret="")
    stops = [ts for ts in (miner.offline_from, miner.hashing_until) if ts is not None]
    worker = Worker(
        name=miner.name,
        nominal_ths=miner.nominal_ths,
        variation=miner.variation,
        offline_from=min(stops) if stops else None,
        online_from=miner.hashing_from,
    )
    return account, worker


def curve(scenario: Scenario, miner: Miner) -> tuple[Account, Worker]:
    """The (account, worker) whose hashrate curve the miner hashes: its linked worker, or its own curve."""
    if miner.link is None:
        return _own_curve(miner)
    pool, username, worker_name = miner.link
    account = scenario.account(pool, username)
    for worker in account.workers:
        if worker.name == worker_name:
            return account, worker
    raise KeyError(f"{pool}:{username}.{worker_name}")


def boot_ts(scenario: Scenario, miner: Miner) -> int:
    """When the miner was powered on: a seeded moment 1 to 21 days before history_start."""
    return scenario.history_start_ts - int(DAY_S * (1 + 20 * _fraction(scenario, miner, "boot")))


def start_ts(scenario: Scenario, miner: Miner) -> int:
    """When its mining software started (`Elapsed` counts from here): 40 to 150 s after boot."""
    return boot_ts(scenario, miner) + 40 + int(110 * _fraction(scenario, miner, "start"))


def is_online(scenario: Scenario, miner: Miner, t: float) -> bool:
    """Whether the miner is powered on and listening at `t`."""
    return miner.online_at(t) and t >= start_ts(scenario, miner)


def miner_hashrate(scenario: Scenario, miner: Miner, t: int, window_s: int) -> float:
    """The miner's mean hashrate in H/s over [t − window_s, t] (e.g. 30 for Avalon's `MHS 30s`)."""
    account, worker = curve(scenario, miner)
    return pool_truth.worker_hashrate(scenario, account, worker, t, window_s)


def _quantise(dialect: Dialect, value: float) -> float:
    """A temperature as the dialect prints it."""
    if dialect == "braiins_os":
        return round(value * 16) / 16
    if dialect == "whatsminer":
        return round(value, 2)
    return float(round(value))


def _slots(
    scenario: Scenario, miner: Miner, account: Account, worker: Worker, t: int, hashes: float
) -> tuple[PoolSlotTruth, ...]:
    if miner.link is not None:
        # The reject ratio the pool reports for this worker, so both sides agree.
        reject = pool_truth.worker_truth(scenario, account, worker, t).reject_pct / 100
    else:
        reject = round(0.5 * _fraction(scenario, miner, "reject"), 2) / 100
    diff1 = hashes / HASHES_PER_SHARE
    slots = []
    active_slot = miner.active_slot_at(t)
    # A slot scripted out of the configuration at `t` is not listed; the rest are numbered as listed.
    listed = [(index, pool) for index, pool in enumerate(miner.pools) if pool.configured_at(t)]
    for position, (index, pool) in enumerate(listed):
        difficulty = 2 ** (13 + int(5 * _fraction(scenario, miner, "difficulty", str(index))))
        active = index == active_slot
        slots.append(
            PoolSlotTruth(
                index=position,
                slot=position + 1 if miner.dialect == "whatsminer" else position,
                url=pool.url,
                user=pool.user,
                status=pool.status,
                active=active,
                accepted=math.floor(diff1 * (1 - reject) / difficulty) if active else 0,
                rejected=math.floor(diff1 * reject / difficulty) if active else 0,
                difficulty=difficulty,
                last_share_ts=pool_truth.last_share_ts(scenario, account, worker, t) if active else 0,
            )
        )
    return tuple(slots)


def _boards(
    scenario: Scenario, miner: Miner, rate_1m: float, rate_5s: float, load: float, ambient: float
) -> tuple[BoardTruth, ...]:
    weights = [1 + 0.04 * (2 * _fraction(scenario, miner, "board", str(b)) - 1) for b in range(BOARDS)]
    total = sum(weights)
    boards = []
    for b, weight in enumerate(weights):
        share = weight / total
        mean_chip = (
            ambient + _CHIP_RISE_AT_FULL_LOAD_C * load + 4 * (2 * _fraction(scenario, miner, "heat", str(b)) - 1)
        )
        chips = tuple(_quantise(miner.dialect, mean_chip + offset) for offset in _CHIP_SENSOR_OFFSETS)
        pcbs = tuple(
            _quantise(miner.dialect, mean_chip + offset - _PCB_BELOW_CHIP_C) for offset in _CHIP_SENSOR_OFFSETS
        )
        boards.append(
            BoardTruth(
                index=b,
                hashrate_hs=rate_1m * share,
                hashrate_5s_hs=rate_5s * share,
                nominal_hs=miner.nominal_ths * _HS_PER_THS / BOARDS,
                chip_temps_c=chips,
                pcb_temps_c=pcbs,
                chips=CHIPS_PER_BOARD[miner.dialect],
            )
        )
    return tuple(boards)


def nominal_power_w(miner: Miner) -> float:
    """The miner's wall power at nominal hashrate: the scenario's `power_w`, else 21.5 W per TH/s."""
    return miner.power_w if miner.power_w is not None else miner.nominal_ths * DEFAULT_WATTS_PER_THS


def miner_truth(scenario: Scenario, miner: Miner, t: int) -> MinerTruth:
    """Everything `miner` reports at unix second `t` (see MinerTruth; README maps fields to reply keys)."""
    device_id = pool_truth.seeded_hex(scenario.seed, "device", miner.name, length=16)
    nominal_hs = miner.nominal_ths * _HS_PER_THS
    if not is_online(scenario, miner, t):
        return MinerTruth(
            name=miner.name,
            group_id=miner.group_id,
            site=miner.site,
            dialect=miner.dialect,
            model=miner.model,
            t=t,
            online=False,
            hashrate_hs=0.0,
            hashrate_5s_hs=0.0,
            hashrate_30s_hs=0.0,
            hashrate_5m_hs=0.0,
            hashrate_15m_hs=0.0,
            hashrate_30m_hs=0.0,
            hashrate_avg_hs=0.0,
            nominal_hs=nominal_hs,
            total_hashes=0.0,
            power_w=None,
            power_limit_w=None,
            temp_max_c=None,
            ambient_c=None,
            fan_rpms=(),
            fan_min_rpm=None,
            uptime_s=None,
            system_uptime_s=None,
            accepted=0,
            rejected=0,
            boards=(),
            pools=(),
            device_id=device_id,
        )
    account, worker = curve(scenario, miner)
    started = start_ts(scenario, miner)
    elapsed = max(t - started, 1)
    rate_1m = pool_truth.worker_hashrate(scenario, account, worker, t, 60)
    rate_5s = pool_truth.worker_hashrate(scenario, account, worker, t, 5)
    rate_avg = pool_truth.worker_hashrate(scenario, account, worker, t, elapsed)
    load = rate_1m / nominal_hs
    phase = 2 * math.pi * _fraction(scenario, miner, "ambient-phase")
    ambient = 18 + 10 * _fraction(scenario, miner, "ambient") + 6 * math.sin(2 * math.pi * (t % DAY_S) / DAY_S + phase)
    boards = _boards(scenario, miner, rate_1m, rate_5s, load, ambient)
    temp_max = max(max(board.chip_temps_c) for board in boards)
    base_rpm = 3600 + 2400 * _fraction(scenario, miner, "fan")
    fans = tuple(
        max(
            1500,
            round(base_rpm * (1 + 0.015 * (temp_max - 70)) + 90 * (2 * _fraction(scenario, miner, "fan", str(f)) - 1)),
        )
        for f in range(FANS[miner.dialect])
    )
    nominal_power = nominal_power_w(miner)
    reports_power = miner.dialect != "antminer"  # stock Antminer firmware exposes no watts (reference §9.6)
    pools = _slots(scenario, miner, account, worker, t, rate_avg * elapsed)
    return MinerTruth(
        name=miner.name,
        group_id=miner.group_id,
        site=miner.site,
        dialect=miner.dialect,
        model=miner.model,
        t=t,
        online=True,
        hashrate_hs=rate_1m,
        hashrate_5s_hs=rate_5s,
        hashrate_30s_hs=pool_truth.worker_hashrate(scenario, account, worker, t, 30),
        hashrate_5m_hs=pool_truth.worker_hashrate(scenario, account, worker, t, 300),
        hashrate_15m_hs=pool_truth.worker_hashrate(scenario, account, worker, t, 900),
        hashrate_30m_hs=pool_truth.worker_hashrate(scenario, account, worker, t, 1800),
        hashrate_avg_hs=rate_avg,
        nominal_hs=nominal_hs,
        total_hashes=rate_avg * elapsed,
        power_w=float(round(nominal_power * (0.1 + 0.9 * load))) if reports_power else None,
        power_limit_w=float(math.ceil(nominal_power * 1.05 / 10) * 10) if reports_power else None,
        temp_max_c=temp_max,
        ambient_c=_quantise(miner.dialect, ambient),
        fan_rpms=fans,
        fan_min_rpm=min(fans),
        uptime_s=t - started,
        system_uptime_s=t - boot_ts(scenario, miner),
        accepted=sum(slot.accepted for slot in pools),
        rejected=sum(slot.rejected for slot in pools),
        boards=boards,
        pools=pools,
        device_id=device_id,
    )
