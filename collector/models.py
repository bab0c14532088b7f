"""Normalized snapshots in base units: what every source returns and every consumer reads.

Times are unix seconds (UTC). Hashrates are H/s, money is integer 1e-8 coin units. `None` means the
source did not say; it is never replaced by zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class WorkerStats:
    """One worker as the pool sees it; `name` has no leading `<account>.`."""

    name: str
    online: bool | None
    hashrate_hs: float | None = None
    hashrate_1h_hs: float | None = None
    hashrate_24h_hs: float | None = None
    last_share_ts: int | None = None


@dataclass(frozen=True, slots=True)
class Earning:
    """One credit to the account: a day's accrual or a block reward, net of pool fees."""

    credited_at: int
    amount_sats: int
    kind: str
    event_id: str


@dataclass(frozen=True, slots=True)
class Payout:
    """One transfer out of the pool account; `sent_at` is when it left, else when it was requested."""

    sent_at: int
    amount_sats: int
    address: str | None
    txid: str | None
    status: str
    event_id: str


@dataclass(frozen=True, slots=True)
class HashrateSample:
    """One bin of the account's hashrate history as the pool keeps it: the mean over `window_s` seconds.

    `at` is the bin's time as the pool stamps it (unix s). Bins the pool did not return are not samples.
    """

    at: int
    hashrate_hs: float
    window_s: int


@dataclass(frozen=True, slots=True)
class PoolSettings:
    """What the pool shows of the account's configuration; `payout_address` None means none is set."""

    payout_address: str | None


@dataclass(frozen=True, slots=True)
class SectionIssue:
    """A secondary part of a poll that failed: its section is empty in the snapshot, not zero."""

    section: str
    kind: str
    message: str

    def __str__(self) -> str:
        return f"{self.section}: {self.kind}: {self.message}"


@dataclass(frozen=True, slots=True)
class PoolAccountSnapshot:
    """Everything one poll of one pool account returned, normalized.

    `issues` lists secondary endpoints that failed (their sections are empty, not zero). `hashrate_history`
    holds the pool's own history bins fetched after a gap in polling (empty on a normal poll).
    """

    observed_at: int
    coin: str
    hashrate_hs: float | None = None
    hashrate_1h_hs: float | None = None
    hashrate_24h_hs: float | None = None
    workers_active: int | None = None
    workers_inactive: int | None = None
    balance_sats: int | None = None
    workers: tuple[WorkerStats, ...] = ()
    earnings: tuple[Earning, ...] = ()
    payouts: tuple[Payout, ...] = ()
    settings: PoolSettings | None = None
    issues: tuple[SectionIssue, ...] = field(default=())
    hashrate_history: tuple[HashrateSample, ...] = ()


@dataclass(frozen=True, slots=True)
class NetworkSnapshot:
    """A blockchain's network figures: difficulty, estimated network hashrate, average block reward.

    `block_reward_sats` is the average reward per block (subsidy plus fees) over the source's window.
    """

    observed_at: int
    coin: str
    difficulty: float | None = None
    hashrate_hs: float | None = None
    block_reward_sats: int | None = None
    issues: tuple[SectionIssue, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class DevicePool:
    """One pool slot configured on a miner, as the miner reports it."""

    slot: int
    url: str | None
    stratum_user: str | None
    active: bool | None
    accepted: int | None = None
    rejected: int | None = None


@dataclass(frozen=True, slots=True)
class DeviceSnapshot:
    """One poll of one miner's own API, normalized: H/s, W, °C, RPM, seconds.

    `model` is what the miner reports (None when its API does not say). Temperatures are the hottest
    sensor the dialect exposes (chip where given, else board); fans the slowest spinning fan.
    """

    observed_at: int
    model: str | None = None
    hashrate_hs: float | None = None
    power_w: float | None = None
    temp_max_c: float | None = None
    fan_min_rpm: int | None = None
    uptime_s: int | None = None
    online: bool | None = None
    pools: tuple[DevicePool, ...] = ()
    issues: tuple[SectionIssue, ...] = field(default=())
