"""What the rules read and what they return: a group's latest observations in, findings out.

A rule is a pure function of a `GroupView` (the permit in force, the latest snapshots and their ages, a short
history of group totals, the clock) returning `Finding`s: ok, violation or unknown, each with its value, its
limit and evidence a person can read. A rule that lacks data says `unknown`, never ok and never violation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from collector.config import Ban, Group, PermitVersion, PoolAccount
from collector.models import DeviceSnapshot, PoolAccountSnapshot

Status = Literal["ok", "violation", "unknown"]
Severity = Literal["critical", "warning", "info"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One rule's verdict on one subject of a group at one moment.

    `subject` names what the finding is about inside the group ("" for the group as a whole, else an account
    id, a device name, a site id or an address); (group_id, rule, subject) is the alert's identity.
    `operational` marks the rules beside the permit (workers offline, hashrate drop).
    """

    group_id: str
    rule: str
    subject: str
    status: Status
    severity: Severity
    value: float | str | None
    limit: float | str | None
    evidence: str
    permit_version: str | None
    operational: bool = False

    @property
    def key(self) -> tuple[str, str, str]:
        """The alert identity: (group_id, rule, subject)."""
        return (self.group_id, self.rule, self.subject)


@dataclass(frozen=True, slots=True)
class AccountView:
    """A pool account and its last good snapshot (None: never polled successfully), `age_s` old."""

    account: PoolAccount
    last: PoolAccountSnapshot | None
    age_s: float | None


@dataclass(frozen=True, slots=True)
class DeviceView:
    """A miner of one of the group's fleets and its last good snapshot, `age_s` old."""

    name: str
    site: str
    fleet: str
    last: DeviceSnapshot | None
    age_s: float | None


@dataclass(frozen=True, slots=True)
class GroupSample:
    """The group's totals at one poll round, for rules over a rolling window (None: not known then).

    `pool_permitted_hs` counts accounts on pools the permit lists; `pool_total_hs` every account;
    `device_hs` every miner that answered; `power_w` the miners that report power.
    """

    at: float
    pool_permitted_hs: float | None
    pool_total_hs: float | None
    device_hs: float | None
    power_w: float | None


@dataclass(frozen=True)
class GroupView:
    """Everything the rules may look at for one group at `now` (unix seconds)."""

    group: Group
    bans: tuple[Ban, ...]
    now: float
    accounts: tuple[AccountView, ...]
    devices: tuple[DeviceView, ...]
    history: tuple[GroupSample, ...] = ()  # oldest first

    @property
    def moment(self) -> datetime:
        return datetime.fromtimestamp(self.now, UTC)

    @property
    def permit(self) -> PermitVersion | None:
        """The permit version in force at `now` (judged by the calendar day in the group's zone)."""
        return self.group.permit_at(self.moment)


STATUS_CODES: dict[Status, int] = {"ok": 0, "unknown": 1, "violation": 2}  # worse is higher


@dataclass(frozen=True, slots=True)
class PoolShare:
    """What one pool credited a group at a round: the sum over the group's accounts there (None: one of them
    was stale or gave no hashrate), and whether the permit in force lists that pool."""

    pool: str
    permitted: bool
    hashrate_hs: float | None


@dataclass(frozen=True, slots=True)
class RuleStatus:
    """One rule's verdict on a group at a round, over all its subjects: the worst status and the counts."""

    rule: str
    severity: Severity
    operational: bool
    status: Status
    violations: int
    unknowns: int

    @property
    def status_code(self) -> int:
        return STATUS_CODES[self.status]


@dataclass(frozen=True)
class RoundSummary:
    """A group's compliance round, summed up for dashboards and the exporter.

    `status` is the worst permit rule's status (operational rules do not make a group non-compliant);
    `violations` and `unknowns` count permit findings. `quota_hs` is the hashrate quota in force (None: the
    permit sets none, or no permit is in force).
    """

    group_id: str
    at: float
    sample: GroupSample
    quota_hs: float | None
    pools: tuple[PoolShare, ...]
    rules: tuple[RuleStatus, ...]

    @property
    def unaccounted_hs(self) -> float | None:
        """What the miners report beyond what the permitted pools credit (may be negative), when both are known."""
        device, pooled = self.sample.device_hs, self.sample.pool_permitted_hs
        return None if device is None or pooled is None else device - pooled

    @property
    def quota_utilisation(self) -> float | None:
        """Every pool's hashrate as a share of the quota (1.0 = at the quota)."""
        total = self.sample.pool_total_hs
        return None if total is None or not self.quota_hs else total / self.quota_hs

    @property
    def permit_rules(self) -> tuple[RuleStatus, ...]:
        return tuple(rule for rule in self.rules if not rule.operational)

    @property
    def status(self) -> Status:
        return max((rule.status for rule in self.permit_rules), key=STATUS_CODES.__getitem__, default="unknown")

    @property
    def status_code(self) -> int:
        return STATUS_CODES[self.status]

    @property
    def violations(self) -> int:
        return sum(rule.violations for rule in self.permit_rules)

    @property
    def unknowns(self) -> int:
        return sum(rule.unknowns for rule in self.permit_rules)


def rule_statuses(findings: Sequence[Finding]) -> tuple[RuleStatus, ...]:
    """Each rule's findings folded into one `RuleStatus`, in the order the rules ran."""
    by_rule: dict[str, list[Finding]] = {}
    for finding in findings:
        by_rule.setdefault(finding.rule, []).append(finding)
    return tuple(
        RuleStatus(
            rule=rule,
            severity=judged[0].severity,
            operational=judged[0].operational,
            status=max((f.status for f in judged), key=STATUS_CODES.__getitem__),
            violations=sum(f.status == "violation" for f in judged),
            unknowns=sum(f.status == "unknown" for f in judged),
        )
        for rule, judged in by_rule.items()
    )


AlertState = Literal["pending", "firing", "resolved", "excused"]


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """A change in one alert's life: what the alert book hands to delivery and to the `violation` points.

    `finding` is the finding behind it (for `resolved`, the last violating one); `started_at` is when the
    violation was first seen (the start of `pending`), `at` when this change happened (unix seconds).
    """

    finding: Finding
    state: AlertState
    at: float
    started_at: float
