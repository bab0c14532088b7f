"""promtool unit tests of the generated rules (`config/prometheus/minewatch-rules.test.yml`).

Generated beside the rules so both use the same names and settings. promtool compares annotations exactly, so
the expected ones are the rules' templates expanded here for the few forms the tested rules use.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from exporters.prometheus import catalogue as m
from exporters.prometheus.rules import DEFAULT_SETTINGS, AlertRule, RuleSettings, alert_rules, to_yaml

RULES_FILE = "minewatch-rules.yml"
INSTANCE = "127.0.0.1:9108"


@dataclass(frozen=True)
class Expect:
    """At `at`, `alert` fires once per label set in `firing` (none: it must not fire); `value` feeds $value."""

    at: str
    alert: str
    firing: tuple[Mapping[str, str], ...] = ()
    value: float | None = None


@dataclass(frozen=True)
class Case:
    """One promtool test: input series (selector -> promtool values notation) and what must fire when."""

    name: str
    series: Mapping[str, str]
    expects: tuple[Expect, ...]
    interval: str = "1m"
    notes: tuple[str, ...] = field(default=())


def _series(name: str, **labels: str) -> str:
    """A selector with the scrape's job and instance and the given labels."""
    pairs = {"job": "minewatch", "instance": INSTANCE, **labels}
    return name + "{" + ", ".join(f'{key}="{value}"' for key, value in pairs.items()) + "}"


TARGET = {"job": "minewatch", "instance": INSTANCE}
SOURCE_A = {"group_id": "sibgaz", "kind": "braiins", "target": "sibgaz_main"}
SOURCE_B = {"group_id": "sibgaz", "kind": "emcd", "target": "sibgaz_emcd"}


def cases() -> list[Case]:
    """The tested behaviours: the watchdog, both halves of the dead-man's switch, and the compliance alerts."""
    return [
        Case(
            "the watchdog always fires, with nothing scraped at all",
            {},
            (Expect("1m", "MinewatchWatchdog", ({},)), Expect("3h", "MinewatchWatchdog", ({},))),
        ),
        Case(
            "the exporter stops answering: down after 5 minutes, never absent",
            {"up": "1 1 0x20"},
            (
                Expect("5m", "MinewatchExporterDown"),
                Expect("10m", "MinewatchExporterDown", (TARGET,)),
                Expect("10m", "MinewatchExporterAbsent"),
            ),
        ),
        Case(
            "the exporter vanishes from the targets: absent after 5 minutes",
            {'up{job="node", instance="127.0.0.1:9100"}': "1x20"},
            (
                Expect("3m", "MinewatchExporterAbsent"),
                Expect("10m", "MinewatchExporterAbsent", ({"job": "minewatch"},)),
            ),
        ),
        Case(
            "every source fails: the collector is blind",
            {
                _series(m.SOURCE_UP.name, **SOURCE_A): "1 0x20",
                _series(m.SOURCE_UP.name, **SOURCE_B): "0x20",
                _series(m.SOURCE_LAST_SUCCESS.name, **SOURCE_A): "0x20",
            },
            (
                Expect("3m", "MinewatchAllSourcesStale"),
                Expect("10m", "MinewatchAllSourcesStale", (TARGET,)),
            ),
        ),
        Case(
            "every source answers but nothing succeeded for too long (the polls stopped): stale",
            {
                _series(m.SOURCE_UP.name, **SOURCE_A): "1x30",
                _series(m.SOURCE_UP.name, **SOURCE_B): "1x30",
                _series(m.SOURCE_LAST_SUCCESS.name, **SOURCE_A): "0x30",
                _series(m.SOURCE_LAST_SUCCESS.name, **SOURCE_B): "60x30",
            },
            (
                Expect("12m", "MinewatchAllSourcesStale"),
                Expect("20m", "MinewatchAllSourcesStale", (TARGET,)),
            ),
        ),
        Case(
            "one live source is enough: not stale",
            {
                _series(m.SOURCE_UP.name, **SOURCE_A): "1x30",
                _series(m.SOURCE_UP.name, **SOURCE_B): "0x30",
                _series(m.SOURCE_LAST_SUCCESS.name, **SOURCE_A): "0+60x30",
                _series(m.SOURCE_LAST_SUCCESS.name, **SOURCE_B): "0x30",
            },
            (
                Expect("25m", "MinewatchAllSourcesStale"),
                Expect("25m", "MinewatchSourceFailing", ({**TARGET, **SOURCE_B},)),
            ),
        ),
        Case(
            "a firing permit alert pages with the rule's severity; an operational one, or a violation minewatch "
            "still holds back (hold time, notice), does not",
            {
                _series(m.ALERTS_FIRING.name, group_id="baikal", rule="pool_whitelist", severity="critical"): "1x10",
                _series(
                    m.RULE_STATUS.name, group_id="baikal", rule="pool_whitelist", severity="critical", kind="permit"
                ): "2x10",
                _series(m.ALERTS_FIRING.name, group_id="baikal", rule="hashrate_drop", severity="warning"): "1x10",
                _series(
                    m.RULE_STATUS.name, group_id="baikal", rule="hashrate_drop", severity="warning", kind="operational"
                ): "2x10",
                _series(m.ALERTS_FIRING.name, group_id="sibgaz", rule="blackout", severity="critical"): "0x10",
                _series(
                    m.RULE_STATUS.name, group_id="sibgaz", rule="blackout", severity="critical", kind="permit"
                ): "2x10",
            },
            (
                Expect(
                    "5m",
                    "MinewatchGroupViolation",
                    ({**TARGET, "group_id": "baikal", "rule": "pool_whitelist", "severity": "critical"},),
                ),
            ),
        ),
        Case(
            "compliance rounds that stop are noticed; rounds that go on are not",
            {
                _series(m.GROUP_LAST_ROUND.name, group_id="baikal"): "0+60x30",
                _series(m.GROUP_LAST_ROUND.name, group_id="sibgaz"): "0+60x5 300x25",
            },
            (
                Expect("10m", "MinewatchComplianceRoundsStopped"),
                Expect("25m", "MinewatchComplianceRoundsStopped", ({**TARGET, "group_id": "sibgaz"},)),
            ),
        ),
        Case(
            "the spool's oldest point grows older than 10 minutes (InfluxDB away): a warning; a spool that drains "
            "does not",
            {
                _series(m.SPOOL_OLDEST_AGE.name): "0+60x30",
                _series(m.SPOOL_OLDEST_AGE.name, instance="127.0.0.1:9109"): "1x30",
            },
            (
                Expect("5m", "MinewatchSpoolBacklog"),
                Expect("15m", "MinewatchSpoolBacklog", (TARGET,)),
            ),
        ),
        Case(
            "a group above its hashrate quota for 15 minutes",
            {_series(m.GROUP_QUOTA_UTILISATION.name, group_id="uralhash"): "0.9 1.2x30"},
            (
                Expect("10m", "MinewatchGroupOverHashrateQuota"),
                Expect("20m", "MinewatchGroupOverHashrateQuota", ({**TARGET, "group_id": "uralhash"},), value=1.2),
            ),
        ),
    ]


_TEMPLATE = re.compile(r"\{\{ \$(labels\.(\w+)|value \| humanizePercentage) \}\}")


def expand(template: str, labels: Mapping[str, str], value: float | None) -> str:
    """Expand the template forms the tested rules use, as Prometheus would; anything else is an error."""

    def one(match: re.Match[str]) -> str:
        if match.group(2) is not None:
            return labels.get(match.group(2), "")
        if value is None:
            raise ValueError(f"{template!r} needs a value")
        return f"{value * 100:.4g}%"  # Go's humanizePercentage: %.4g of the percentage

    expanded = _TEMPLATE.sub(one, template)
    if "{{" in expanded:
        raise ValueError(f"cannot expand {template!r}: teach `expand` the form, or test another rule")
    return expanded


def _expected(rule: AlertRule, expect: Expect) -> list[dict[str, Any]]:
    alerts = []
    for series_labels in expect.firing:
        labels = {**series_labels, **({"severity": rule.severity} if rule.severity is not None else {})}
        alerts.append(
            {
                "exp_labels": labels,
                "exp_annotations": {
                    "summary": expand(rule.summary, labels, expect.value),
                    "description": expand(rule.description, labels, expect.value),
                },
            }
        )
    return alerts


def _series_name(selector: str) -> str:
    return selector if "{" in selector else selector + '{job="minewatch", instance="' + INSTANCE + '"}'


def rule_tests_document(settings: RuleSettings = DEFAULT_SETTINGS) -> dict[str, Any]:
    rules = {rule.name: rule for rule in alert_rules(settings)}
    return {
        "rule_files": [RULES_FILE],
        "evaluation_interval": "1m",
        "tests": [
            {
                "name": case.name,
                "interval": case.interval,
                "input_series": [
                    {"series": _series_name(selector), "values": values} for selector, values in case.series.items()
                ],
                "alert_rule_test": [
                    {
                        "eval_time": expect.at,
                        "alertname": expect.alert,
                        "exp_alerts": _expected(rules[expect.alert], expect),
                    }
                    for expect in case.expects
                ],
            }
            for case in cases()
        ],
    }


def rule_tests_yaml(settings: RuleSettings = DEFAULT_SETTINGS) -> str:
    """The promtool test file (`promtool test rules`), beside the rules file it names."""
    return to_yaml(rule_tests_document(settings))
