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

from collector.compliance.findings import AccountView, DeviceView, GroupSample, GroupView
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

    def _snapshot(self, key: str, kind: type[SnapshotT]) -> SnapshotT | None:
        snapshot = self._state.snapshot(key)
        return snapshot if isinstance(snapshot, kind) else None

    def _age(self, key: str, now: float) -> float | None:
        return self._state.health(key).data_age_s(now)

    def _fresh(self, age_s: float | None) -> bool:
        return age_s is not None and age_s <= self._stale_after_s

    def _sample(self, view: GroupView) -> GroupSample:
        permit = view.permit
        permitted = set(permit.pools) if permit is not None else set()
        accounts = [(a.account.kind, a.last) for a in view.accounts if a.last is not None and self._fresh(a.age_s)]
        devices = [d.last for d in view.devices if d.last is not None and self._fresh(d.age_s)]
        return GroupSample(
            at=view.now,
            pool_permitted_hs=_total(last.hashrate_hs for kind, last in accounts if kind in permitted),
            pool_total_hs=_total(last.hashrate_hs for _, last in accounts),
            device_hs=_total(device.hashrate_hs for device in devices),
            power_w=_total(device.power_w for device in devices),
        )


def _total(values: Iterable[float | None]) -> float | None:
    """The sum of the known values; None when none is known (a missing figure is not a zero)."""
    known = [v for v in values if v is not None]
    return float(sum(known)) if known else None
