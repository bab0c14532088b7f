"""`group_fact_lines`: the permit in force (judged at midnight in the group's zone) and each site's restrictions."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from collector.adapters.registry import source_registry
from collector.config import Ban, Group, GroupFile, load_config
from collector.group_facts import group_fact_lines
from collector.redact import Redactor
from unit.support import REPO, Point, parse_line


def _ts(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp())


def _facts(group: Group, at: str, bans: list[Ban] | None = None) -> dict[str, list[Point]]:
    points: dict[str, list[Point]] = {}
    for line in group_fact_lines(group, bans or [], _ts(at)):
        point = parse_line(line)
        points.setdefault(point.measurement, []).append(point)
    return points


@pytest.fixture(scope="module")
def uralhash() -> Group:
    """The demo's group whose permit was renewed on 1 Aug 2026 (Asia/Yekaterinburg, UTC+5)."""
    config = load_config(REPO / "config" / "demo" / "minewatch.toml", source_registry(), redactor=Redactor())
    return config.group("uralhash")


@pytest.mark.parametrize(
    ("at", "version", "max_hashrate"),
    [
        ("2026-07-31T18:59:59+00:00", "2025-08", 1.5e15),  # 23:59:59 on 31 Jul in Yekaterinburg
        ("2026-07-31T19:00:00+00:00", "2026-08", 2.2e15),  # midnight, 1 Aug, in Yekaterinburg
    ],
)
def test_permit_version_changes_at_midnight_in_the_groups_zone(
    uralhash: Group, at: str, version: str, max_hashrate: float
) -> None:
    (permit,) = _facts(uralhash, at)["permit"]

    assert permit.tags == {"group_id": "uralhash", "permit_version": version}
    assert float(permit.fields["max_hashrate_hs"]) == pytest.approx(max_hashrate, rel=1e-12)
    assert permit.fields["valid"] == "1i"
    assert permit.timestamp == _ts(at) * 1_000_000_000


def test_outside_every_permit_version_the_permit_is_none_and_invalid(uralhash: Group) -> None:
    (permit,) = _facts(uralhash, "2025-07-31T18:59:59+00:00")["permit"]  # the day before the first version

    assert permit.tags["permit_version"] == "none"
    assert permit.fields == {"valid": "0i"}


def _group(**overrides: Any) -> Group:
    spec: dict[str, Any] = {
        "id": "alpha",
        "legal_name": "OOO Alpha",
        "inn": "3811000009",
        "register_record": "7102500009001",
        "timezone": "Asia/Irkutsk",
        "sites": [{"id": "irk-1", "region": "RU-IRK", "timezone": "Asia/Irkutsk", "capacity": 1500000}],
        "permits": [
            {"version": "p1", "valid_from": "2025-08-01", "coins": ["BTC"], "pools": ["braiins"], "max_power": "1.5 MW"}
        ],
    }
    return Group(spec=GroupFile.model_validate(spec | overrides), accounts=(), source_file=Path("alpha.toml"))


def test_an_excluded_group_has_its_permit_version_but_it_is_not_valid() -> None:
    (permit,) = _facts(_group(register_status="excluded"), "2026-06-01T00:00:00+00:00")["permit"]

    assert permit.tags["permit_version"] == "p1"
    assert permit.fields["valid"] == "0i"


def test_pending_registration_is_not_valid_either() -> None:
    (permit,) = _facts(_group(register_status="pending"), "2026-06-01T00:00:00+00:00")["permit"]

    assert permit.fields["valid"] == "0i"


SEASONAL = Ban.model_validate(
    {
        "id": "s",
        "kind": "seasonal",
        "regions": ["RU-IRK"],
        "season_start": "11-15",
        "season_end": "03-15",
        "valid_from": "2025-11-15",
    }
)


def test_site_point_shows_the_seasonal_blackout_and_capacity_as_a_float() -> None:
    (site,) = _facts(_group(), "2026-12-01T00:00:00+00:00", [SEASONAL])["site"]

    assert site.tags == {"group_id": "alpha", "site": "irk-1", "region": "RU-IRK"}
    assert site.fields == {"capacity_w": "1500000.0", "blackout": "1i", "banned": "0i"}


def test_site_point_outside_the_season() -> None:
    (site,) = _facts(_group(), "2026-07-01T00:00:00+00:00", [SEASONAL])["site"]

    assert site.fields["blackout"] == "0i"


def test_permit_power_quota_is_written_as_a_float_in_watts() -> None:
    (permit,) = _facts(_group(), "2026-06-01T00:00:00+00:00")["permit"]

    assert permit.fields["max_power_w"] == "1500000.0"
    assert "max_hashrate_hs" not in permit.fields  # not in this permit: left out, not zero
