"""Every metric the exporter serves, in one place: name, type, unit, labels and help.

The collector builds its families from these specs only, `METRICS.md` is rendered from them, and the alerting
rules take their metric names from them, so a rename here shows up everywhere (and in the drift tests).

Values are the last poll's or the last compliance round's, cached in the collector: a scrape never calls a pool.
The HELP strings say so, as the Prometheus exporter guide asks of cached values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

MetricType = Literal["gauge", "counter"]

PREFIX = "minewatch_"
# The label names the design allows, all bounded (a group, a pool or source kind, a configured target, a rule).
ALLOWED_LABELS = frozenset({"group_id", "pool", "kind", "target", "rule", "severity", "reason"})
# `version` is the one exception, on `minewatch_build_info` only: a build's identity has one value per process.
BUILD_INFO_LABELS = ("version",)

_SOURCE = ("group_id", "kind", "target")
_RULE = ("group_id", "rule", "severity", "kind")
_ALERT = ("group_id", "rule", "severity")


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One metric family: `name` is the full exposed name (counters end in `_total`)."""

    name: str
    type: MetricType
    unit: str  # the base unit the name ends with ("" for counts and states)
    labels: tuple[str, ...]
    help: str

    @property
    def family_name(self) -> str:
        """The name prometheus_client's families take: counters without their `_total`, which it adds itself."""
        return self.name.removesuffix("_total") if self.type == "counter" else self.name


def _gauge(name: str, unit: str, labels: tuple[str, ...], help_text: str) -> MetricSpec:
    return MetricSpec(PREFIX + name, "gauge", unit, labels, help_text)


def _counter(name: str, labels: tuple[str, ...], help_text: str) -> MetricSpec:
    return MetricSpec(PREFIX + name, "counter", "", labels, help_text)


_ROUND = "as of the group's last compliance round (cached; absent when unknown)"
_POLL = "as of the source's last poll (cached)"

# --- groups: output against the permit ----------------------------------------------------------------------
GROUP_POOL_HASHRATE = _gauge(
    "group_pool_hashrate_hashes_per_second",
    "hashes_per_second",
    ("group_id",),
    f"Hashrate every pool credits the group, {_ROUND}.",
)
GROUP_PERMITTED_POOL_HASHRATE = _gauge(
    "group_permitted_pool_hashrate_hashes_per_second",
    "hashes_per_second",
    ("group_id",),
    f"Hashrate the pools its permit lists credit the group, {_ROUND}.",
)
GROUP_DEVICE_HASHRATE = _gauge(
    "group_device_hashrate_hashes_per_second",
    "hashes_per_second",
    ("group_id",),
    f"Hashrate the group's miners report (the miners that answered), {_ROUND}.",
)
GROUP_UNACCOUNTED_HASHRATE = _gauge(
    "group_unaccounted_hashrate_hashes_per_second",
    "hashes_per_second",
    ("group_id",),
    f"Device-side minus permitted-pool hashrate (may be negative), {_ROUND}.",
)
GROUP_POWER = _gauge(
    "group_power_watts",
    "watts",
    ("group_id",),
    f"Power the group's miners report (those that report power), {_ROUND}.",
)
GROUP_QUOTA_UTILISATION = _gauge(
    "group_hashrate_quota_utilisation_ratio",
    "ratio",
    ("group_id",),
    f"Every pool's hashrate as a share of the hashrate quota (1 = at the quota), {_ROUND}.",
)
GROUP_HASHRATE_QUOTA = _gauge(
    "group_hashrate_quota_hashes_per_second",
    "hashes_per_second",
    ("group_id",),
    "Hashrate quota of the permit version in force at scrape time, from the loaded config (absent when none is set).",
)
GROUP_POWER_QUOTA = _gauge(
    "group_power_quota_watts",
    "watts",
    ("group_id",),
    "Power quota of the permit version in force at scrape time, from the loaded config (absent when none is set).",
)
GROUP_POOL_PERMITTED = _gauge(
    "group_pool_permitted",
    "",
    ("group_id", "pool"),
    f"1 if the permit lists the pool the group has accounts on, else 0, {_ROUND}.",
)
GROUP_COMPLIANCE_STATUS = _gauge(
    "group_compliance_status",
    "",
    ("group_id",),
    f"Worst permit rule's status: 0 ok, 1 unknown, 2 violation, {_ROUND}.",
)
GROUP_LAST_ROUND = _gauge(
    "group_last_round_timestamp_seconds",
    "seconds",
    ("group_id",),
    "Unix time of the group's last compliance round (cached).",
)

# --- rules and alerts ---------------------------------------------------------------------------------------
RULE_STATUS = _gauge(
    "rule_status",
    "",
    _RULE,
    f"One rule's worst status over its subjects: 0 ok, 1 unknown, 2 violation; kind is permit or operational, "
    f"{_ROUND}.",
)
RULE_VIOLATIONS = _gauge(
    "rule_violations",
    "",
    _RULE,
    f"Subjects (accounts, devices, sites, addresses) one rule finds in violation, {_ROUND}.",
)
ALERTS_FIRING = _gauge(
    "alerts_firing",
    "",
    _ALERT,
    "Open alerts in state firing, per group, rule and severity (cached alert book; one per subject).",
)
ALERTS_PENDING = _gauge(
    "alerts_pending",
    "",
    _ALERT,
    "Open alerts in state pending (violating, hold time not yet over), per group, rule and severity "
    "(cached alert book; one per subject).",
)

# --- pool accounts ------------------------------------------------------------------------------------------
POOL_ACCOUNT_HASHRATE = _gauge(
    "pool_account_hashrate_hashes_per_second",
    "hashes_per_second",
    ("group_id", "pool", "target"),
    f"Hashrate the pool credits the account (shortest window it gives), {_POLL}; absent while its last poll failed.",
)

# --- sources: every polled pool account, miner and chain feed ----------------------------------------------
SOURCE_UP = _gauge("source_up", "", _SOURCE, f"1 if the source's last poll succeeded, else 0, {_POLL}.")
SOURCE_LAST_SUCCESS = _gauge(
    "source_last_success_timestamp_seconds",
    "seconds",
    _SOURCE,
    "Unix time of the source's last successful poll (cached; absent if none yet).",
)
SOURCE_LAST_DURATION = _gauge(
    "source_last_poll_duration_seconds", "seconds", _SOURCE, f"How long the source's last poll took, {_POLL}."
)
SOURCE_DATA_AGE = _gauge(
    "source_data_age_seconds",
    "seconds",
    _SOURCE,
    "Age of the source's last good snapshot at scrape time (absent if none yet).",
)
SOURCE_POLLS = _counter("source_polls_total", _SOURCE, "Polls of the source since the collector started (cached).")
SOURCE_ERRORS = _counter(
    "source_errors_total",
    (*_SOURCE, "reason"),
    "Failed polls of the source since the collector started, by error kind (cached).",
)

# --- storage: the InfluxDB sink ----------------------------------------------------------------------------
POINTS_WRITTEN = _counter("points_written_total", (), "Points the store acknowledged since start (cached).")
POINTS_DROPPED = _counter(
    "points_dropped_total",
    (),
    "Points dropped since start: spool full (oldest first), disk error, or written after shutdown (cached).",
)
POINTS_REJECTED = _counter(
    "points_rejected_total", (), "Points the store refused for good since start: parse error, type conflict (cached)."
)
POINTS_BUFFERED = _gauge("points_buffered", "", (), "Points accepted but not yet written (spooled), at scrape time.")
STORAGE_WRITE_ERRORS = _counter(
    "storage_write_errors_total", (), "Failed write requests to the store since start (cached)."
)
# The spool between the collector and the store (on disk for `minewatch run`): how much waits, and since when.
SPOOL_LINES = _gauge("spool_lines", "", (), "Points waiting in the spool for the store, at scrape time.")
SPOOL_BYTES = _gauge("spool_bytes", "bytes", (), "Size of the points waiting in the spool, at scrape time.")
SPOOL_SEGMENTS = _gauge(
    "spool_segments", "", (), "Segment files (one batch each) in the disk spool, at scrape time (absent in memory)."
)
SPOOL_OLDEST_AGE = _gauge(
    "spool_oldest_age_seconds",
    "seconds",
    (),
    "Age of the oldest point not yet delivered to the store, at scrape time (absent when the spool is empty).",
)

# --- alert notifications -----------------------------------------------------------------------------------
NOTIFICATIONS_DELIVERED = _counter(
    "alert_notifications_delivered_total",
    ("kind",),
    "Alert changes (firing, resolved) the notifier's peer accepted since start (cached); kind is the notifier.",
)
NOTIFICATION_FAILURES = _counter(
    "alert_notification_failures_total",
    ("kind",),
    "Failed notification requests since start, each retried (cached); kind is the notifier.",
)
NOTIFICATIONS_DROPPED = _counter(
    "alert_notifications_dropped_total",
    ("kind",),
    "Alert events given up on since start: retries exhausted or queue full (cached); kind is the notifier.",
)
NOTIFICATIONS_QUEUED = _gauge(
    "alert_notifications_queued", "", ("kind",), "Alert events waiting for the notifier, at scrape time."
)

# --- the exporter itself -----------------------------------------------------------------------------------
BUILD_INFO = _gauge("build_info", "", BUILD_INFO_LABELS, "Always 1; the version label is minewatch's version.")
COLLECT_ERRORS = _counter(
    "exporter_collect_errors_total",
    ("kind",),
    "Scrapes where one part of the metrics failed to build and was left out (logged; counted at scrape time); "
    "kind is the part.",
)
# Served by the HTTP server itself (exporters/prometheus/server.py), only when basic auth is configured.
EXPORTER_AUTH_FAILURES = _counter(
    "exporter_auth_failures_total",
    ("reason",),
    "Requests the exporter refused with 401 since start (basic auth on); reason is missing or invalid credentials.",
)

CATALOGUE: tuple[MetricSpec, ...] = (
    GROUP_POOL_HASHRATE,
    GROUP_PERMITTED_POOL_HASHRATE,
    GROUP_DEVICE_HASHRATE,
    GROUP_UNACCOUNTED_HASHRATE,
    GROUP_POWER,
    GROUP_QUOTA_UTILISATION,
    GROUP_HASHRATE_QUOTA,
    GROUP_POWER_QUOTA,
    GROUP_POOL_PERMITTED,
    GROUP_COMPLIANCE_STATUS,
    GROUP_LAST_ROUND,
    RULE_STATUS,
    RULE_VIOLATIONS,
    ALERTS_FIRING,
    ALERTS_PENDING,
    POOL_ACCOUNT_HASHRATE,
    SOURCE_UP,
    SOURCE_LAST_SUCCESS,
    SOURCE_LAST_DURATION,
    SOURCE_DATA_AGE,
    SOURCE_POLLS,
    SOURCE_ERRORS,
    POINTS_WRITTEN,
    POINTS_DROPPED,
    POINTS_REJECTED,
    POINTS_BUFFERED,
    STORAGE_WRITE_ERRORS,
    SPOOL_LINES,
    SPOOL_BYTES,
    SPOOL_SEGMENTS,
    SPOOL_OLDEST_AGE,
    NOTIFICATIONS_DELIVERED,
    NOTIFICATION_FAILURES,
    NOTIFICATIONS_DROPPED,
    NOTIFICATIONS_QUEUED,
    BUILD_INFO,
    COLLECT_ERRORS,
)


# Metrics the server adds to the collector's (CATALOGUE is what `build_registry` serves), in METRICS.md too.
SERVER_METRICS: tuple[MetricSpec, ...] = (EXPORTER_AUTH_FAILURES,)


def metrics_markdown() -> str:
    """`METRICS.md`: the catalogue as a table (regenerated by `python -m exporters.prometheus`)."""
    rows = [
        f"| `{spec.name}` | {spec.type} | {spec.unit or '-'} | {_labels(spec)} | {spec.help} |"
        for spec in (*CATALOGUE, *SERVER_METRICS)
    ]
    return "\n".join(
        [
            "# minewatch Prometheus metrics",
            "",
            "Generated from `exporters/prometheus/catalogue.py` by `python -m exporters.prometheus`; do not edit.",
            "A test regenerates it and fails on drift.",
            "",
            "Values are cached: the last poll of each source and the last compliance round of each group. A scrape",
            "never calls a pool, and a value that is not known has no sample (never a 0 in its place).",
            "",
            "| name | type | unit | labels | help |",
            "|---|---|---|---|---|",
            *rows,
            "",
        ]
    )


def _labels(spec: MetricSpec) -> str:
    return ", ".join(f"`{label}`" for label in spec.labels) or "-"
