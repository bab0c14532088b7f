"""Ground truth: pure functions of (scenario, account, unix time) that the wire formats are rendered from.

Hashrate of a worker with nominal N H/s and variation v is N·(1 + Σ aₖ·v·sin(2πt/Pₖ + φₖ)) while it is
online (periods ≈5.3 d, ≈17.9 d, 1 d and 45 min; phases from a seeded hash of the names) and 0 from
`offline_from` on (until `offline_until`, where a scripted outage ends). Window figures are the exact
averages of that curve over [t − window, t], computed from its closed-form integral; 45 min and 1 d divide
a day, so the 24 h average keeps only the slow drift.
Earnings: one credit per completed UTC day, round(sats_per_phs_day × day's mean H/s / 1e15) sats.
No wall clock, no global random state: every varying quantity comes from a seeded hash of names.
"""

from __future__ import annotations

import functools
import hashlib
import math
import threading
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal

from simulator.scenario import Account, Scenario, Worker, day_start_ts

DAY_S = 86_400
WINDOW_5M_S = 300
WINDOW_1H_S = 3_600
WINDOW_24H_S = DAY_S
# A worker offline this long is "dead" (EMCD `detailsDead`); shorter outages are merely inactive.
DEAD_AFTER_S = DAY_S
# Below this share of its nominal rate a hashing worker is "low" on Braiins.
LOW_FRACTION = 0.8
HASHES_PER_SHARE = 2**32  # difficulty-1 share: how share counts are derived from hashes
_HS_PER_THS = 1e12
_HS_PER_PHS = 1e15
# (period in seconds, amplitude relative to `variation`): two slow drifts (about 5.3 and 17.9 days, chosen
# not to divide a day or a week, so daily credits and weekly payouts never repeat exactly), the diurnal
# cooling cycle and a 45-minute wiggle. The amplitudes add up to 2.0, hence variation ≤ 0.45.
_COMPONENTS: tuple[tuple[int, float], ...] = ((458_000, 0.3), (1_547_000, 0.4), (DAY_S, 1.0), (2_700, 0.3))
_POOL_HASHRATE_HS = 14.0e18  # the simulated pool as a whole (Braiins /stats), about 14 EH/s

PayoutStatus = Literal["queued", "confirmed"]


@dataclass(frozen=True, slots=True)
class Windows:
    """Average hashrate in H/s over the last 5 minutes, 60 minutes and 24 hours."""

    h5m: float
    h1h: float
    h24h: float


@dataclass(frozen=True, slots=True)
class WorkerTruth:
    """A worker's state at one instant."""

    name: str
    online: bool
    disabled: bool
    dead: bool
    low: bool
    hashrate: Windows
    last_share_ts: int
    reject_pct: float


@dataclass(frozen=True, slots=True)
class DailyEarning:
    """One day's credit: the UTC day, when it was credited (00:00 UTC next day), its sats and mean rate."""

    day: date
    day_start_ts: int
    credited_at: int
    amount_sats: int
    mean_hashrate_hs: float


@dataclass(frozen=True, slots=True)
class PayoutTruth:
    """One payout: requested at `requested_at`, sent at `sent_at` (None while queued)."""

    index: int
    amount_sats: int
    fee_sats: int
    address: str
    txid: str
    requested_at: int
    sent_at: int | None
    status: PayoutStatus


# --- seeded values: a hash of the scenario seed and names, so nothing depends on call order ---


def seeded_fraction(seed: int, *parts: str) -> float:
    """A deterministic number in [0, 1) from the seed and the given names."""
    digest = hashlib.sha256("\x1f".join([str(seed), *parts]).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def seeded_hex(seed: int, *parts: str, length: int = 64) -> str:
    """A deterministic lower-case hex string (e.g. a transaction id) from the seed and names."""
    digest = hashlib.sha256("\x1f".join(["hex", str(seed), *parts]).encode()).hexdigest()
    return digest[:length]


# --- hashrate ---


@functools.lru_cache(maxsize=65_536)
def _phases(seed: int, pool: str, username: str, worker_name: str) -> tuple[float, ...]:
    # Memoised: four SHA-256 digests per curve evaluation would dominate every request.
    return tuple(
        2 * math.pi * seeded_fraction(seed, pool, username, worker_name, f"phase{index}")
        for index in range(len(_COMPONENTS))
    )


def _worker_phases(scenario: Scenario, account: Account, worker: Worker) -> tuple[float, ...]:
    return _phases(scenario.seed, account.pool, account.username, worker.name)


def worker_rate(scenario: Scenario, account: Account, worker: Worker, t: float) -> float:
    """The worker's instantaneous hashrate in H/s at `t` (the curve the window averages integrate)."""
    if not is_online(worker, t):
        return 0.0
    relative = 1.0
    for (period, weight), phase in zip(_COMPONENTS, _worker_phases(scenario, account, worker), strict=True):
        relative += weight * worker.variation * math.sin(2 * math.pi * (t % period) / period + phase)
    return worker.nominal_ths * _HS_PER_THS * relative


def _curve_integral(scenario: Scenario, account: Account, worker: Worker, start: int, end: int) -> float:
    """Integral of the worker's hashrate (H/s · s = hashes) over [start, end]."""
    if worker.online_from is not None:
        start = max(start, worker.online_from)
    if worker.offline_from is None:
        return _span_integral(scenario, account, worker, start, end)
    total = _span_integral(scenario, account, worker, start, min(end, worker.offline_from))
    if worker.offline_until is not None:
        total += _span_integral(scenario, account, worker, max(start, worker.offline_until), end)
    return total


def _span_integral(scenario: Scenario, account: Account, worker: Worker, start: int, end: int) -> float:
    """Integral of the worker's online curve over [start, end], ignoring its scripted start and outage."""
    if end <= start:
        return 0.0
    total = float(end - start)
    for (period, weight), phase in zip(_COMPONENTS, _worker_phases(scenario, account, worker), strict=True):
        amplitude = weight * worker.variation
        # Reduce times modulo the period first so the angle keeps full float precision at t ≈ 1.8e9.
        angle_start = 2 * math.pi * (start % period) / period + phase
        angle_end = 2 * math.pi * (end % period) / period + phase
        total += amplitude * period / (2 * math.pi) * (math.cos(angle_start) - math.cos(angle_end))
    return worker.nominal_ths * _HS_PER_THS * total


def worker_hashrate(scenario: Scenario, account: Account, worker: Worker, t: int, window_s: int) -> float:
    """The worker's mean hashrate in H/s over [t − window_s, t]."""
    return _curve_integral(scenario, account, worker, t - window_s, t) / window_s


def worker_windows(scenario: Scenario, account: Account, worker: Worker, t: int) -> Windows:
    """The worker's 5 min / 60 min / 24 h mean hashrates at `t`."""
    return Windows(
        h5m=worker_hashrate(scenario, account, worker, t, WINDOW_5M_S),
        h1h=worker_hashrate(scenario, account, worker, t, WINDOW_1H_S),
        h24h=worker_hashrate(scenario, account, worker, t, WINDOW_24H_S),
    )


def account_hashrate(scenario: Scenario, account: Account, t: int, window_s: int) -> float:
    """The account's mean hashrate in H/s over [t − window_s, t] (sum over its workers)."""
    return sum(worker_hashrate(scenario, account, w, t, window_s) for w in account.workers)


def account_windows(scenario: Scenario, account: Account, t: int) -> Windows:
    """The account's 5 min / 60 min / 24 h mean hashrates at `t`."""
    return Windows(
        h5m=account_hashrate(scenario, account, t, WINDOW_5M_S),
        h1h=account_hashrate(scenario, account, t, WINDOW_1H_S),
        h24h=account_hashrate(scenario, account, t, WINDOW_24H_S),
    )


def account_hashes(scenario: Scenario, account: Account, start: int, end: int) -> float:
    """Total hashes the account's workers computed in [start, end]."""
    return sum(_curve_integral(scenario, account, w, start, end) for w in account.workers)


# --- workers ---


def is_online(worker: Worker, t: float) -> bool:
    """Whether the worker is sending shares at `t` (from `online_from`, if scripted, outside its outage)."""
    if worker.online_from is not None and t < worker.online_from:
        return False
    return not _in_outage(worker, t)


def _in_outage(worker: Worker, t: float) -> bool:
    """Whether `t` is in [offline_from, offline_until) (open-ended without `offline_until`)."""
    if worker.offline_from is None or t < worker.offline_from:
        return False
    return worker.offline_until is None or t < worker.offline_until


def last_share_ts(scenario: Scenario, account: Account, worker: Worker, t: int) -> int:
    """Unix seconds of the worker's last share at or before `t`.

    Shares arrive every 5–20 s (seeded per worker, fixed phase), so the value only moves forward.
    """
    interval = 5 + int(15 * seeded_fraction(scenario.seed, account.pool, account.username, worker.name, "share"))
    offset = int(interval * seeded_fraction(scenario.seed, account.pool, account.username, worker.name, "offset"))
    if worker.online_from is not None and t < worker.online_from:
        return 0  # a scripted worker that has not joined yet has never sent a share
    moment = worker.offline_from - 1 if worker.offline_from is not None and _in_outage(worker, t) else t
    return moment - (moment - offset) % interval


def worker_truth(scenario: Scenario, account: Account, worker: Worker, t: int) -> WorkerTruth:
    """Everything the pools report about one worker at `t`."""
    online = is_online(worker, t)
    windows = worker_windows(scenario, account, worker, t)
    dead = worker.offline_from is not None and _in_outage(worker, t) and t - worker.offline_from >= DEAD_AFTER_S
    reject = round(0.5 * seeded_fraction(scenario.seed, account.pool, account.username, worker.name, "reject"), 2)
    return WorkerTruth(
        name=worker.name,
        online=online,
        disabled=worker.disabled,
        dead=dead,
        low=online and windows.h5m < LOW_FRACTION * worker.nominal_ths * _HS_PER_THS,
        hashrate=windows,
        last_share_ts=last_share_ts(scenario, account, worker, t),
        reject_pct=reject if online else 0.0,
    )


def workers(scenario: Scenario, account: Account, t: int) -> tuple[WorkerTruth, ...]:
    """All the account's workers at `t`, in scenario order."""
    return tuple(worker_truth(scenario, account, w, t) for w in account.workers)


# --- earnings ---


def utc_day(t: int) -> date:
    """The UTC calendar day containing unix time `t`."""
    return datetime.fromtimestamp(t, tz=UTC).date()


def hashes_to_sats(scenario: Scenario, hashes: float) -> int:
    """FPPS value of `hashes`: sats_per_phs_day per PH/s sustained for one day."""
    return round(scenario.sats_per_phs_day * hashes / (_HS_PER_PHS * DAY_S))


def daily_earning(scenario: Scenario, account: Account, day: date) -> DailyEarning:
    """The credit for one UTC day (whether or not it is complete yet)."""
    start = day_start_ts(day)
    hashes = account_hashes(scenario, account, start, start + DAY_S)
    return DailyEarning(
        day=day,
        day_start_ts=start,
        credited_at=start + DAY_S,
        amount_sats=hashes_to_sats(scenario, hashes),
        mean_hashrate_hs=hashes / DAY_S,
    )


# A completed day's credit never changes, so each account's history is computed once and extended as
# days complete (the key holds everything a credit depends on). Results are the same as without it.
_history: dict[tuple[int, float, date, Account], list[DailyEarning]] = {}
_history_lock = threading.Lock()


def daily_earnings(scenario: Scenario, account: Account, t: int) -> tuple[DailyEarning, ...]:
    """Credits for every completed UTC day from history_start to the day before `t`, oldest first."""
    first = scenario.history_start
    count = max((utc_day(t) - first).days, 0)
    key = (scenario.seed, scenario.sats_per_phs_day, first, account)
    with _history_lock:
        known = _history.setdefault(key, [])
        while len(known) < count:
            known.append(daily_earning(scenario, account, first + timedelta(days=len(known))))
        return tuple(known[:count])


def earned_sats(scenario: Scenario, account: Account, t: int) -> int:
    """Sum of all credits up to `t` (Braiins `all_time_reward`)."""
    return sum(e.amount_sats for e in daily_earnings(scenario, account, t))


def today_accrual_sats(scenario: Scenario, account: Account, t: int) -> int:
    """What today's (not yet credited) UTC day has earned so far at `t`."""
    start = day_start_ts(utc_day(t))
    if start < scenario.history_start_ts:
        return 0
    return hashes_to_sats(scenario, account_hashes(scenario, account, start, t))


def estimated_day_sats(scenario: Scenario, account: Account, t: int) -> int:
    """A full day's credit at the account's current 24 h mean rate (Braiins `estimated_reward`)."""
    return hashes_to_sats(scenario, account_hashrate(scenario, account, t, WINDOW_24H_S) * DAY_S)


# --- payouts ---


def payout_schedule(scenario: Scenario, account: Account, t: int) -> tuple[PayoutTruth, ...]:
    """Every payout requested at or before `t`, oldest first, with its status as seen at `t`.

    Slot k (k ≥ 1) is requested payout_every_days·k days after history_start, at a seeded time between
    04:00 and 08:00 UTC, and sweeps the whole balance (credits minus earlier payouts) unless the balance is
    below min_payout_sats (then the slot is skipped and the balance rolls over). It is sent
    payout_delay_hours later; addresses rotate through payout_addresses in payout order.
    """
    if not account.payout_addresses:
        return ()
    earnings = daily_earnings(scenario, account, t)
    period_s = account.payout_every_days * DAY_S
    delay_s = round(account.payout_delay_hours * 3600)
    payouts: list[PayoutTruth] = []
    paid = 0
    credited = 0
    credit_index = 0
    slot = 1
    while True:
        time_of_day = 4 * 3600 + int(
            4 * 3600 * seeded_fraction(scenario.seed, account.pool, account.username, "payout", str(slot))
        )
        requested = scenario.history_start_ts + slot * period_s + time_of_day
        if requested > t:
            break
        while credit_index < len(earnings) and earnings[credit_index].credited_at <= requested:
            credited += earnings[credit_index].amount_sats
            credit_index += 1
        amount = credited - paid
        if amount > 0 and amount >= account.min_payout_sats:
            index = len(payouts)
            sent = requested + delay_s
            payouts.append(
                PayoutTruth(
                    index=index,
                    amount_sats=amount,
                    fee_sats=0,
                    address=account.payout_addresses[index % len(account.payout_addresses)],
                    txid=seeded_hex(scenario.seed, account.pool, account.username, "tx", str(slot)),
                    requested_at=requested,
                    sent_at=sent if sent <= t else None,
                    status="confirmed" if sent <= t else "queued",
                )
            )
            paid += amount
        slot += 1
    return tuple(payouts)


def balance_sats(scenario: Scenario, account: Account, t: int) -> int:
    """Credits up to `t` minus every payout requested up to `t` (a queued payout is already deducted)."""
    return earned_sats(scenario, account, t) - sum(p.amount_sats for p in payout_schedule(scenario, account, t))


def total_paid_sats(scenario: Scenario, account: Account, t: int) -> int:
    """Sum of the payouts actually sent by `t` (EMCD `total_paid`; queued ones excluded)."""
    return sum(p.amount_sats for p in payout_schedule(scenario, account, t) if p.sent_at is not None)


def payout_address(account: Account) -> str | None:
    """The payout address configured at the pool (what EMCD `info` shows; Braiins shows none)."""
    return account.payout_address


# --- the pool as a whole (Braiins /stats) ---


def pool_hashrate(scenario: Scenario, t: int, window_s: int) -> float:
    """Mean hashrate in H/s of the whole simulated pool over [t − window_s, t]."""
    phase = 2 * math.pi * seeded_fraction(scenario.seed, "pool")
    start, end = t - window_s, t
    swing = (
        DAY_S
        / (2 * math.pi)
        * (
            math.cos(2 * math.pi * (start % DAY_S) / DAY_S + phase)
            - math.cos(2 * math.pi * (end % DAY_S) / DAY_S + phase)
        )
    )
    return _POOL_HASHRATE_HS * (1 + 0.02 * swing / window_s)


def pool_active_workers(scenario: Scenario, t: int) -> int:
    """Number of workers the whole simulated pool reports as active (slowly varying, deterministic)."""
    return 100_000 + int(8_000 * seeded_fraction(scenario.seed, "workers", str(t // 600)))
