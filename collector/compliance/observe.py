"""Turn what the runner recorded into what the rules read: one `GroupView` per group per evaluation.

The state store holds each target's last good snapshot and when it was taken; `GroupObserver` reads them
for a group's pool accounts and miners, adds the round's totals to a bounded per-group history (the rolling
windows of the quota and unaccounted-hashrate rules), and returns the view. Time is a parameter.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable, Sequence
from typing import TypeVar

from collector.compliance.findings import (
    AccountView,
    DeviceView,
    Finding,
    GroupSample,
    GroupView,
    PoolShare,
    RoundSummary,
    rule_statuses,
)
from collector.config import Ban, Group
from collector.models import DeviceSnapshot, PoolAccountSnapshot
from collector.state import StateStore
from collector.targets import DeviceTarget, PoolTarget

SnapshotT = TypeVar("SnapshotT")


class GroupObserver:
    """Builds each group's view from the state store and keeps its recent totals.

    `history_s` bounds the history kept per group (the longest rule window, with room to spare); `stale_after_s`
    decides which snapshots count towards a round's totals.
    """

    def __init__(
        self,
        state: StateStore,
        accounts: Sequence[PoolTarget],
        devices: Sequence[DeviceTarget],
        bans: Sequence[Ban],
        *,
        history_s: float,
        stale_after_s: float,
    ) -> None:
        self._state = state
        self._bans = tuple(bans)
        self._history_s = history_s
        self._stale_after_s = stale_after_s
        self._accounts: dict[str, list[PoolTarget]] = {}
        for account in accounts:
            self._accounts.setdefault(account.group.id, []).append(account)
        self._devices: dict[str, list[DeviceTarget]] = {}
        for device in devices:
            self._devices.setdefault(device.group_id, []).append(device)
        self._history: dict[str, deque[GroupSample]] = {}
        self._lock = threading.Lock()

    def observe(self, group: Group, now: float) -> GroupView:
        """The group's view at `now`, with this round's totals appended to its history."""
        accounts = tuple(
            AccountView(t.account, self._snapshot(t.key, PoolAccountSnapshot), self._age(t.key, now))
            for t in self._accounts.get(group.id, [])
        )
        devices = tuple(
            DeviceView(t.device, t.site, t.fleet, self._snapshot(t.key, DeviceSnapshot), self._age(t.key, now))
            for t in self._devices.get(group.id, [])
        )
        view = GroupView(group=group, bans=self._bans, now=now, accounts=accounts, devices=devices)
        sample = self._sample(view)
        with self._lock:
            history = self._history.setdefault(group.id, deque())
            history.append(sample)
            while history and history[0].at < now - self._history_s:
                history.popleft()
            kept = tuple(history)
        return GroupView(group=group, bans=self._bans, now=now, accounts=accounts, devices=devices, history=kept)

    def summarize(self, view: GroupView, findings: Sequence[Finding]) -> RoundSummary:
        """The round in brief: this round's totals (the newest sample of `view`), each pool's share and each
        rule's verdict."""
        permit = view.permit
        permitted = set(permit.pools) if permit is not None else set()
        by_pool: dict[str, list[float | None]] = {}
        for account in view.accounts:
            by_pool.setdefault(account.account.kind, []).append(self._hashrate(account.last, account.age_s))
        return RoundSummary(
            group_id=view.group.id,
            at=view.now,
            sample=view.history[-1] if view.history else self._sample(view),
            quota_hs=permit.max_hashrate if permit is not None else None,
            pools=tuple(
                PoolShare(pool, pool in permitted, _complete(rates)) for pool, rates in sorted(by_pool.items())
            ),
            rules=rule_statuses(findings),
        )

    def _snapshot(self, key: str, kind: type[SnapshotT]) -> SnapshotT | None:
        snapshot = self._state.snapshot(key)
        return snapshot if isinstance(snapshot, kind) else None

    def _age(self, key: str, now: float) -> float | None:
        return self._state.health(key).data_age_s(now)

    def _fresh(self, age_s: float | None) -> bool:
        return age_s is not None and age_s <= self._stale_after_s

    def _sample(self, view: GroupView) -> GroupSample:
        """The round's totals. A pool total counts only when every account in its scope is fresh and reports
        a hashrate: a partial pool sum would undercount what the permitted pools credit and raise false
        unaccounted-hashrate or hashrate-drop alerts (and hide a quota breach). The miners' totals may be
        partial (dead miners are common): they are lower bounds, which can only hide a violation, not invent one.
        """
        permit = view.permit
        permitted = set(permit.pools) if permit is not None else set()
        pool_all = [self._hashrate(a.last, a.age_s) for a in view.accounts]
        pool_permitted = [self._hashrate(a.last, a.age_s) for a in view.accounts if a.account.kind in permitted]
        devices = [d.last for d in view.devices if d.last is not None and self._fresh(d.age_s)]
        return GroupSample(
            at=view.now,
            # Accounts, but none at a permitted pool: those pools credit nothing (0), which is what unaccounted
            # hashrate compares. A group with no account at all gives nothing to compare with: unknown.
            pool_permitted_hs=0.0
            if view.accounts and permit is not None and not pool_permitted
            else _complete(pool_permitted),
            pool_total_hs=_complete(pool_all),
            device_hs=_total(device.hashrate_hs for device in devices),
            power_w=_total(device.power_w for device in devices),
        )

    def _hashrate(self, last: PoolAccountSnapshot | None, age_s: float | None) -> float | None:
        return last.hashrate_hs if last is not None and self._fresh(age_s) else None


def _complete(values: list[float | None]) -> float | None:
    """The sum when every value is known; None when any is missing or there is none."""
    if not values or any(value is None for value in values):
        return None
    return float(sum(value for value in values if value is not None))


def _total(values: Iterable[float | None]) -> float | None:
    """The sum of the known values; None when none is known (a missing figure is not a zero)."""
    known = [v for v in values if v is not None]
    return float(sum(known)) if known else None
