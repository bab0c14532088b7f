"""The alert book: turns each round of findings into alert transitions, one alert per (group, rule, subject).

Lifecycle (times are the `now` each call is given, unix seconds; never the wall clock):

* a `violation` opens the alert as `pending` (`started_at` = now); it turns `firing` once it has been violating
  for the rule's hold time (`AlertingConfig.hold_for`, 0 = the same round, which then yields both `pending`
  and `firing` so the timeline shows both);
* a firing alert turns `resolved` once its rule has said `ok` without a break for the rule's keep-firing time
  (counted from the first `ok` after the last violation; 0 = at the first `ok`). A violation in between
  cancels the countdown;
* a pending alert whose rule says `ok` before the hold time is over never fired: it is closed at once with a
  `resolved` transition (so the `violation` points never leave a pending episode open) that is not notified;
* `unknown` (a stale source, missing data) changes nothing: it neither opens, fires nor resolves an alert, and
  it breaks a keep-firing countdown (the rule has not kept saying ok);
* a rule that ran for a group (it returned findings for that group) but no longer mentions a subject that has an
  open alert is taken to say `ok` for it, unless one of its findings for that group is `unknown` (then it is
  taken as unknown). A rule that returned nothing for a group says nothing about it: its alerts stay as they are.
  Two findings with one key in one round count as the worst of them (violation, unknown, ok).

Excused windows: a violation at a moment a group's `Notice` covers (in the time zone of the finding's site, see
`default_site_of`) is `excused`: recorded (a transition and a `violation` point), never notified. A pending alert
that falls into a notice becomes excused; a firing alert, already notified, is not excused after the fact and
runs its normal course. When the notice ends and the violation goes on, a new pending episode starts then.

Delivery: `AlertChange.notify` says which transitions go to Alertmanager and webhooks (firing, and resolved
after firing). Delivery calls `record_delivery` once per batch a notifier accepted: it records which notifiers
took each episode's firing and resolution (`already_delivered`, `took_firing`, `missing_firing` read that) and,
for the primary notifier, marks the alert notified; `due_for_resend` returns the firing alerts to send again
(`repeat=True`), including those whose delivery never succeeded.

Persistence: the open alerts and the recently resolved ones are saved atomically to the state file after every
call that changed them, and loaded by `load`, so a restarted collector neither re-notifies nor forgets.
State file (JSON, `schema_version` 2)::

    {"schema_version": 2, "saved_at": <unix s>,
     "alerts":   [<record>, ...],   # open: state pending | firing | excused, one per key
     "resolved": [<record>, ...]}   # state resolved, the last RESOLVED_KEPT_MAX of the last RESOLVED_KEPT_S
    <record> = {"finding": {"group_id", "rule", "subject", "severity", "value", "limit", "evidence",
                            "permit_version", "operational"},        # the last violating finding
                "state", "started_at", "since", "ok_since", "notified",
                "last_notified_at", "previous", "excuse", "resolution_notified",
                "delivered_to", "resolution_delivered_to"}   # notifiers that took this episode's
                                                             # firing / resolution (schema 2)

Versions: schema 2 added `delivered_to` and `resolution_delivered_to`. Files of schema 1 and 2 are read; a
schema 1 file loads with both empty, and a record of it that was `notified` (`resolution_notified`) counts as
delivered to every notifier, as that release assumed. A key the schema does not know is an error (the file is
set aside as corrupt): a file written by a newer release carries a higher `schema_version`, so an unknown key
within a known version means the file is damaged or foreign, not newer. Downgrading is not transparent: a
schema 1 release sets a schema 2 file aside and starts fresh, so it notifies the alerts still open again.

All public methods hold one lock, so the scheduler's threads, delivery and the exporter may share one book.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, ValidationError

from collector.atomic import write_atomically
from collector.compliance.findings import AlertEvent, AlertState, Finding, Severity
from collector.config import AlertingConfig, AppConfig, Group, Notice

SCHEMA_VERSION = 2
READABLE_SCHEMA_VERSIONS = (1, 2)
RESOLVED_KEPT_S = 7 * 86_400.0
RESOLVED_KEPT_MAX = 500

Key = tuple[str, str, str]
SiteOf = Callable[[Finding], str | None]
OPEN_STATES: frozenset[AlertState] = frozenset({"pending", "firing", "excused"})
ACTIVE_STATES: frozenset[AlertState] = frozenset({"pending", "firing"})

_log = logging.getLogger("minewatch.alerts")


@dataclass(frozen=True, slots=True)
class AlertChange(AlertEvent):
    """An `AlertEvent` with what delivery needs: the state it left, whether it is a re-send, any excuse.

    `previous` is None for a new alert; `repeat` marks a re-send of a firing alert (from `due_for_resend`),
    which is not a transition and is not written as a `violation` point.
    """

    previous: AlertState | None = None
    repeat: bool = False
    excuse: str | None = None

    @property
    def notify(self) -> bool:
        """Whether delivery sends it: firing (new or repeated), and resolved after firing."""
        return self.state == "firing" or (self.state == "resolved" and self.previous == "firing")


@dataclass(frozen=True, slots=True)
class AlertRecord:
    """One alert as the book holds it: open (pending, firing, excused) or recently resolved.

    `finding` is the last violating finding; `since` when the alert entered `state`; `ok_since` the start of
    an unbroken run of `ok` (the keep-firing countdown); `previous` the state before `resolved`; `excuse` the
    reason of the notice that excused it.
    """

    finding: Finding
    state: AlertState
    started_at: float
    since: float
    ok_since: float | None = None
    notified: bool = False
    last_notified_at: float | None = None
    previous: AlertState | None = None
    excuse: str | None = None
    resolution_notified: bool = False
    delivered_to: tuple[str, ...] = ()
    resolution_delivered_to: tuple[str, ...] = ()

    @property
    def key(self) -> Key:
        """(group_id, rule, subject)."""
        return self.finding.key

    @property
    def active(self) -> bool:
        """Pending or firing."""
        return self.state in ACTIVE_STATES


class StateFileError(Exception):
    """The alert state file cannot be read or is not a valid state file."""


# --- the state file ----------------------------------------------------------------------------------------


class _FindingState(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    group_id: str
    rule: str
    subject: str
    severity: Severity
    value: float | str | None
    limit: float | str | None
    evidence: str
    permit_version: str | None
    operational: bool = False


class _RecordState(BaseModel):
    # forbid: an unknown key within a known schema version is a damaged file (see the module docstring)
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    finding: _FindingState
    state: AlertState
    started_at: float
    since: float
    ok_since: float | None = None
    notified: bool = False
    last_notified_at: float | None = None
    previous: AlertState | None = None
    excuse: str | None = None
    resolution_notified: bool = False
    delivered_to: list[str] = []
    resolution_delivered_to: list[str] = []


class _StateFile(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    schema_version: Literal[1, 2]
    saved_at: float
    alerts: list[_RecordState]
    resolved: list[_RecordState] = []


def _json_number(value: float | str | None) -> float | str | None:
    """JSON has no NaN or infinity; such a value is kept as its text."""
    return repr(value) if isinstance(value, float) and not math.isfinite(value) else value


def _dump_record(record: AlertRecord) -> dict[str, Any]:
    f = record.finding
    return {
        "finding": {
            "group_id": f.group_id,
            "rule": f.rule,
            "subject": f.subject,
            "severity": f.severity,
            "value": _json_number(f.value),
            "limit": _json_number(f.limit),
            "evidence": f.evidence,
            "permit_version": f.permit_version,
            "operational": f.operational,
        },
        "state": record.state,
        "started_at": record.started_at,
        "since": record.since,
        "ok_since": record.ok_since,
        "notified": record.notified,
        "last_notified_at": record.last_notified_at,
        "previous": record.previous,
        "excuse": record.excuse,
        "resolution_notified": record.resolution_notified,
        "delivered_to": list(record.delivered_to),
        "resolution_delivered_to": list(record.resolution_delivered_to),
    }


def _load_record(state: _RecordState) -> AlertRecord:
    f = state.finding
    finding = Finding(
        group_id=f.group_id,
        rule=f.rule,
        subject=f.subject,
        status="violation",
        severity=f.severity,
        value=f.value,
        limit=f.limit,
        evidence=f.evidence,
        permit_version=f.permit_version,
        operational=f.operational,
    )
    return AlertRecord(
        finding=finding,
        state=state.state,
        started_at=state.started_at,
        since=state.since,
        ok_since=state.ok_since,
        notified=state.notified,
        last_notified_at=state.last_notified_at,
        previous=state.previous,
        excuse=state.excuse,
        resolution_notified=state.resolution_notified,
        delivered_to=tuple(state.delivered_to),
        resolution_delivered_to=tuple(state.resolution_delivered_to),
    )


def _with(names: tuple[str, ...], name: str) -> tuple[str, ...]:
    return names if name in names else (*names, name)


def _took_firing(record: AlertRecord, notifier: str) -> bool:
    """Whether `notifier` took the record's firing; a notified record without any name is from a schema 1 file,
    whose release counted an alert delivered everywhere once the primary took it."""
    return notifier in record.delivered_to or (record.notified and not record.delivered_to)


def parse_state(data: bytes) -> tuple[list[AlertRecord], list[AlertRecord]]:
    """Parse a state file's bytes into (open alerts, recently resolved); raise StateFileError if it is not one."""
    try:
        state = _StateFile.model_validate_json(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "(top level)"
        versions = " or ".join(str(v) for v in READABLE_SCHEMA_VERSIONS)
        raise StateFileError(f"not a schema {versions} alert state file: {where}: {first['msg']}") from None
    open_alerts = [_load_record(r) for r in state.alerts]
    resolved = [_load_record(r) for r in state.resolved]
    keys = [r.key for r in open_alerts]
    if len(set(keys)) != len(keys):
        raise StateFileError("the same alert is open twice")
    if any(r.state not in OPEN_STATES for r in open_alerts) or any(r.state != "resolved" for r in resolved):
        raise StateFileError("an alert is listed under the wrong state")
    return open_alerts, resolved


def read_state(path: Path) -> tuple[list[AlertRecord], list[AlertRecord]]:
    """Read a state file: (open alerts, recently resolved). FileNotFoundError if there is none yet.

    Any other problem (unreadable, not JSON, wrong schema) is a StateFileError.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise StateFileError(f"cannot read: {exc.strerror or exc}") from None
    return parse_state(data)


def state_file_path(config: AppConfig) -> Path:
    """The configured state file; a relative path is relative to the main config file."""
    path = Path(config.main.alerting.state_file)
    return path if path.is_absolute() else config.path.parent / path


# --- excused windows ---------------------------------------------------------------------------------------


def default_site_of(groups: Iterable[Group]) -> SiteOf:
    """Find a finding's site from the config: the subject is a site id, a pool account with a site, or a miner
    of a fleet; else the group's only site; else None (only notices for every site then cover it).
    """
    sites: dict[tuple[str, str], str] = {}
    only_site: dict[str, str] = {}
    for group in groups:
        for site in group.spec.sites:
            sites[(group.id, site.id)] = site.id
        for account in group.accounts:
            if account.site is not None:
                sites.setdefault((group.id, account.id), account.site)
        for fleet in group.fleets:
            for miner in fleet.settings.addresses:
                sites.setdefault((group.id, miner.name), fleet.site)
        if len(group.spec.sites) == 1:
            only_site[group.id] = group.spec.sites[0].id

    def site_of(finding: Finding) -> str | None:
        return sites.get((finding.group_id, finding.subject), only_site.get(finding.group_id))

    return site_of


class _Excuses:
    """Which notice, if any, covers a finding at a moment, judged in its site's zone (else the group's)."""

    def __init__(self, groups: Iterable[Group], site_of: SiteOf) -> None:
        self._site_of = site_of
        self._notices: dict[str, tuple[Notice, ...]] = {}
        self._zones: dict[tuple[str, str | None], ZoneInfo] = {}
        for group in groups:
            self._notices[group.id] = tuple(group.spec.notices)
            self._zones[(group.id, None)] = ZoneInfo(group.spec.timezone)
            for site in group.spec.sites:
                self._zones[(group.id, site.id)] = ZoneInfo(site.timezone)

    def covering(self, finding: Finding, now: float) -> Notice | None:
        notices = self._notices.get(finding.group_id)
        if not notices:
            return None
        site = self._site_of(finding)
        zone = self._zones.get((finding.group_id, site)) or self._zones[(finding.group_id, None)]
        for notice in notices:
            if notice.sites and site not in notice.sites:
                continue
            if notice.rules and finding.rule not in notice.rules:
                continue
            # Aware instants, so a window across a DST change lasts as long as the local clocks say.
            start = notice.start.replace(tzinfo=zone).timestamp()
            end = notice.end.replace(tzinfo=zone).timestamp()
            if start <= now < end:
                return notice
        return None


# --- the book ----------------------------------------------------------------------------------------------

_RANK = {"violation": 2, "unknown": 1, "ok": 0}


class AlertBook:
    """The alert state machine over findings, deduplicated per (group_id, rule, subject), saved to a file.

    `policy` gives hold, keep-firing and re-send times; `groups` the notices and time zones for excused
    windows; `state_file` None keeps the book in memory only; `site_of` maps a finding to its site
    (default: `default_site_of(groups)`).
    """

    def __init__(
        self,
        policy: AlertingConfig,
        groups: Sequence[Group] = (),
        *,
        state_file: Path | None = None,
        site_of: SiteOf | None = None,
        log: logging.Logger | None = None,
    ) -> None:
        self.policy = policy
        self.state_file = state_file
        self.save_failures = 0
        self._log = log or _log
        self._excuses = _Excuses(groups, site_of or default_site_of(groups))
        self._open: dict[Key, AlertRecord] = {}
        self._resolved: list[AlertRecord] = []
        self._dirty = False
        self._lock = threading.RLock()

    @classmethod
    def from_config(
        cls, config: AppConfig, *, site_of: SiteOf | None = None, log: logging.Logger | None = None
    ) -> AlertBook:
        """A book for a loaded config, saving to its `[alerting] state_file` (not loaded yet: call `load`)."""
        return cls(config.main.alerting, config.groups, state_file=state_file_path(config), site_of=site_of, log=log)

    # --- reading ---

    def records(self, *, active_only: bool = False) -> list[AlertRecord]:
        """Open alerts (sorted by key), then, unless `active_only`, the recently resolved (newest first).

        `active_only` keeps pending and firing alerts only.
        """
        with self._lock:
            open_alerts = sorted(self._open.values(), key=lambda r: r.key)
            if active_only:
                return [r for r in open_alerts if r.active]
            return open_alerts + sorted(self._resolved, key=lambda r: r.since, reverse=True)

    def get(self, key: Key) -> AlertRecord | None:
        """The open alert with this key, if any."""
        with self._lock:
            return self._open.get(key)

    # --- the state machine ---

    def evaluate(self, findings: Iterable[Finding], now: float) -> list[AlertChange]:
        """Apply one round of findings at `now`; return the transitions that happened, in order.

        Saves the state file if anything changed (or an earlier save failed).
        """
        with self._lock:
            latest: dict[Key, Finding] = {}
            rule_has_unknown: dict[tuple[str, str], bool] = {}
            for finding in findings:
                held = latest.get(finding.key)
                if held is None or _RANK[finding.status] > _RANK[held.status]:
                    latest[finding.key] = finding
                pair = (finding.group_id, finding.rule)
                rule_has_unknown[pair] = rule_has_unknown.get(pair, False) or finding.status == "unknown"

            changes: list[AlertChange] = []
            for key, finding in latest.items():
                self._step(key, finding.status, finding, now, changes)
            for key in [k for k in self._open if k not in latest]:
                ran = rule_has_unknown.get(key[:2])
                if ran is not None:
                    self._step(key, "unknown" if ran else "ok", None, now, changes)
            self._prune_resolved(now)
            if self._dirty:
                self._save(now)
            return changes

    def _step(self, key: Key, status: str, finding: Finding | None, now: float, changes: list[AlertChange]) -> None:
        record = self._open.get(key)
        if status == "violation" and finding is not None:
            self._violation(record, finding, now, changes)
        elif record is None:
            return
        elif status == "ok":
            self._ok(record, now, changes)
        elif record.state == "pending":
            # Unknown while pending: the violation is not confirmed, so the hold starts again from here; else
            # one violating round after hours of a flapping source would fire at once.
            self._put(replace(record, started_at=now, since=now))
        elif record.ok_since is not None:  # unknown: the rule has not kept saying ok
            self._put(replace(record, ok_since=None))

    def _violation(self, record: AlertRecord | None, finding: Finding, now: float, changes: list[AlertChange]) -> None:
        notice = self._excuses.covering(finding, now)
        if record is None or record.state == "excused":
            if notice is not None:
                if record is None:
                    self._open_excused(finding, now, None, notice, changes)
                else:
                    self._put(replace(record, finding=finding, excuse=notice.reason))
                return
            pending = AlertRecord(finding, "pending", started_at=now, since=now)
            self._put(pending)
            changes.append(self._change(pending, now, record.state if record else None))
            self._maybe_fire(pending, now, changes)
        elif record.state == "pending":
            if notice is not None:
                self._open_excused(finding, now, "pending", notice, changes)
                return
            pending = replace(record, finding=finding)
            self._put(pending)
            self._maybe_fire(pending, now, changes)
        else:  # firing: already notified, so a notice does not excuse it after the fact
            self._put(replace(record, finding=finding, ok_since=None))

    def _open_excused(
        self, finding: Finding, now: float, previous: AlertState | None, notice: Notice, changes: list[AlertChange]
    ) -> None:
        excused = AlertRecord(finding, "excused", started_at=now, since=now, excuse=notice.reason)
        self._put(excused)
        changes.append(self._change(excused, now, previous))

    def _maybe_fire(self, record: AlertRecord, now: float, changes: list[AlertChange]) -> None:
        if now - record.started_at >= self.policy.hold_for(record.finding.rule):
            firing = replace(record, state="firing", since=now)
            self._put(firing)
            changes.append(self._change(firing, now, "pending"))

    def _ok(self, record: AlertRecord, now: float, changes: list[AlertChange]) -> None:
        if record.state == "firing":
            ok_since = now if record.ok_since is None else record.ok_since
            if now - ok_since < self.policy.keep_firing_for(record.finding.rule):
                self._put(replace(record, ok_since=ok_since))
                return
        resolved = replace(record, state="resolved", since=now, previous=record.state, ok_since=None)
        del self._open[record.key]
        self._resolved.append(resolved)
        self._dirty = True
        changes.append(self._change(resolved, now, record.state))

    def _change(
        self, record: AlertRecord, now: float, previous: AlertState | None, *, repeat: bool = False
    ) -> AlertChange:
        return AlertChange(
            finding=record.finding,
            state=record.state,
            at=now,
            started_at=record.started_at,
            previous=previous,
            repeat=repeat,
            excuse=record.excuse,
        )

    def _put(self, record: AlertRecord) -> None:
        if self._open.get(record.key) != record:
            self._open[record.key] = record
            self._dirty = True

    def _prune_resolved(self, now: float) -> None:
        kept = [r for r in self._resolved if now - r.since <= RESOLVED_KEPT_S][-RESOLVED_KEPT_MAX:]
        if len(kept) != len(self._resolved):
            self._resolved = kept
            self._dirty = True

    # --- delivery ---

    def due_for_resend(self, now: float) -> list[AlertChange]:
        """Firing alerts to send again at `now`, as `firing` changes with `repeat=True`.

        Due when `resend_s` has passed since the primary notifier last accepted it (`record_delivery`) or, for an
        alert it never accepted, since it started firing (leaving delivery's own retries that long first).
        Changes nothing: the alert counts as re-sent only once delivery records it (`record_delivery`).
        """
        with self._lock:
            due = []
            for record in sorted(self._open.values(), key=lambda r: r.key):
                if record.state != "firing":
                    continue
                last = record.last_notified_at if record.notified else None
                if now - (record.since if last is None else last) >= self.policy.resend_s:
                    due.append(self._change(record, now, "firing", repeat=True))
            return due

    def firing(self, now: float) -> list[AlertChange]:
        """Every firing alert as a `firing` change with `repeat=True` (after `load`: what delivery should resume)."""
        with self._lock:
            return [
                self._change(r, now, "firing", repeat=True)
                for r in sorted(self._open.values(), key=lambda r: r.key)
                if r.state == "firing"
            ]

    def record_delivery(self, notifier: str, events: Iterable[AlertEvent], at: float, *, primary: bool = False) -> int:
        """Record that `notifier` accepted `events` (firings or resolutions of alert episodes); saves once (at `at`).

        `already_delivered` then keeps the same change from going to that notifier again, even after a restart.
        For the `primary` notifier a firing also marks the alert notified at the event's `at` (the round's time,
        so re-sends stay on the rounds' rhythm) and a resolution marks it `resolution_notified`.
        Returns how many records changed.
        """
        with self._lock:
            changed = 0
            for event in events:
                if event.state == "firing":
                    changed += self._record_firing(notifier, event, primary)
                elif event.state == "resolved":
                    changed += self._record_resolution(notifier, event, primary)
            if self._dirty:
                self._save(at)
            return changed

    def _record_firing(self, notifier: str, event: AlertEvent, primary: bool) -> int:
        record = self._open.get(event.finding.key)
        if record is not None and record.started_at == event.started_at:
            updated = replace(record, delivered_to=_with(record.delivered_to, notifier))
            if primary and record.state == "firing":
                last = record.last_notified_at
                updated = replace(updated, notified=True, last_notified_at=max(event.at, last or event.at))
            if updated == record:
                return 0
            self._put(updated)
            return 1
        index = self._resolved_index(event)  # the firing went out after the episode resolved
        if index is None or notifier in self._resolved[index].delivered_to:
            return 0
        resolved = self._resolved[index]
        self._resolved[index] = replace(resolved, delivered_to=_with(resolved.delivered_to, notifier))
        self._dirty = True
        return 1

    def _record_resolution(self, notifier: str, event: AlertEvent, primary: bool) -> int:
        index = self._resolved_index(event)
        if index is None:
            return 0
        record = self._resolved[index]
        updated = replace(record, resolution_delivered_to=_with(record.resolution_delivered_to, notifier))
        if primary:
            updated = replace(updated, resolution_notified=True)
        if updated == record:
            return 0
        self._resolved[index] = updated
        self._dirty = True
        return 1

    def already_delivered(self, notifier: str, event: AlertEvent) -> bool:
        """Whether `notifier` has accepted this very change (same alert, episode and state) before."""
        with self._lock:
            if event.state == "firing":
                record = self._episode(event)
                return record is not None and _took_firing(record, notifier)
            index = self._resolved_index(event)
            if index is None:
                return False
            record = self._resolved[index]
            if record.resolution_notified and not record.resolution_delivered_to:  # schema 1: went everywhere
                return True
            return notifier in record.resolution_delivered_to

    def took_firing(self, notifier: str, event: AlertEvent) -> bool:
        """Whether `notifier` accepted the firing of the episode `event` belongs to (delivery sends a notifier the
        resolution of an episode only if it took, or still has queued, its firing)."""
        with self._lock:
            record = self._episode(event)
            return record is not None and _took_firing(record, notifier)

    def missing_firing(self, event: AlertEvent, notifiers: Iterable[str]) -> list[str]:
        """Those of `notifiers` that have not accepted the firing of `event`'s episode (still open)."""
        with self._lock:
            record = self._open.get(event.finding.key)
            if record is None or record.started_at != event.started_at or record.state != "firing":
                return []
            return [name for name in notifiers if not _took_firing(record, name)]

    def _episode(self, event: AlertEvent) -> AlertRecord | None:
        record = self._open.get(event.finding.key)
        if record is not None and record.started_at == event.started_at:
            return record
        index = self._resolved_index(event)
        return None if index is None else self._resolved[index]

    def _resolved_index(self, event: AlertEvent) -> int | None:
        for index, record in enumerate(self._resolved):
            if record.key == event.finding.key and record.started_at == event.started_at:
                return index
        return None

    def unsent_resolutions(self) -> list[AlertChange]:
        """Resolutions of alerts that had fired whose delivery was never confirmed (the collector stopped in
        between): handed to delivery again at start-up, so a notified alert is never left open downstream."""
        with self._lock:
            return [
                self._change(record, record.since, "firing")
                for record in self._resolved
                if record.previous == "firing" and not record.resolution_notified
            ]

    # --- persistence ---

    def save(self, now: float) -> bool:
        """Write the state file (normally automatic) stamped `now`; False if it could not be written (logged)."""
        with self._lock:
            return self._save(now)

    def _save(self, now: float) -> bool:
        if self.state_file is None:
            self._dirty = False
            return True
        document = {
            "schema_version": SCHEMA_VERSION,
            "saved_at": now,
            "alerts": [_dump_record(r) for r in sorted(self._open.values(), key=lambda r: r.key)],
            "resolved": [_dump_record(r) for r in self._resolved],
        }
        try:
            write_atomically(self.state_file, json.dumps(document, indent=1, allow_nan=False) + "\n")
        except (OSError, ValueError) as exc:
            # Kept in memory and retried after the next round; losing the file must not stop alerting.
            self.save_failures += 1
            self._log.error("alerts: cannot save the alert state to %s: %s", self.state_file, exc)
            return False
        self._dirty = False
        return True

    def load(self, now: float) -> bool:
        """Load the state file, replacing what the book holds; True if a state was loaded.

        No file: a fresh book (first start). A file that cannot be read or parsed: a logged warning, a fresh
        book, and the bad file moved aside as `<name>.corrupt-<UTC time of now>` for a person to look at.
        """
        with self._lock:
            if self.state_file is None:
                return False
            try:
                open_alerts, resolved = read_state(self.state_file)
            except FileNotFoundError:
                self._log.info("alerts: no alert state at %s yet; starting with none", self.state_file)
                return False
            except StateFileError as exc:
                aside = self._set_aside(now)
                self._log.warning(
                    "alerts: the alert state file %s is unusable (%s); starting with no open alerts%s",
                    self.state_file,
                    exc,
                    f", the bad file is kept as {aside}" if aside else "",
                )
                self._open, self._resolved, self._dirty = {}, [], False
                return False
            self._open = {r.key: r for r in open_alerts}
            self._resolved = resolved
            self._dirty = False
            self._log.info("alerts: loaded %d open alerts from %s", len(self._open), self.state_file)
            return True

    def _set_aside(self, now: float) -> Path | None:
        assert self.state_file is not None
        stamp = datetime.fromtimestamp(now, UTC).strftime("%Y%m%dT%H%M%SZ")
        aside = self.state_file.with_name(f"{self.state_file.name}.corrupt-{stamp}")
        counter = 1
        while aside.exists():
            aside = self.state_file.with_name(f"{self.state_file.name}.corrupt-{stamp}-{counter}")
            counter += 1
        try:
            os.replace(self.state_file, aside)
        except OSError as exc:
            self._log.warning("alerts: cannot move %s aside: %s", self.state_file, exc.strerror or exc)
            return None
        return aside
