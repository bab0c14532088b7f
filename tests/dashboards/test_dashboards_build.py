"""The committed dashboard JSON matches its sources, and every dashboard follows the conventions."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from dashboard_json import GENERATED, ROOT, load_generated, panels, targets

from collector.cli import main
from collector.sinks.points import CATALOGUE
from dashboards.build import build, sources

DATASOURCE = {"type": "influxdb", "uid": "minewatch-influxdb"}
GROUP_QUERY = 'SHOW TAG VALUES FROM "permit" WITH KEY = "group_id"'
EXPECTED_UIDS = {
    "minewatch-fleet-overview",
    "minewatch-group-detail",
    "minewatch-compliance",
    "minewatch-collector-health",
}


@pytest.fixture(scope="module")
def boards() -> dict[str, dict[str, Any]]:
    return load_generated()


def test_the_committed_json_is_what_the_sources_build(tmp_path: Path) -> None:
    build(tmp_path)
    fresh = {path.name: path.read_bytes() for path in tmp_path.glob("*.json")}
    committed = {path.name: path.read_bytes() for path in GENERATED.glob("*.json")}
    hint = "dashboards/generated is out of date: run `minewatch dashboards build` and commit the result"
    assert sorted(fresh) == sorted(committed), hint
    stale = [name for name in fresh if fresh[name] != committed[name]]
    assert stale == [], f"{hint} ({', '.join(stale)} differ)"


def test_the_build_is_deterministic(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    build(first)
    build(second)
    assert {p.name: p.read_bytes() for p in first.iterdir()} == {p.name: p.read_bytes() for p in second.iterdir()}


def test_the_cli_builds_into_the_given_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "grafana"
    assert main(["dashboards", "build", "--out", str(out)]) == 0
    printed = capsys.readouterr().out.split()
    assert sorted(printed) == sorted(str(p) for p in out.glob("*.json"))
    assert {Path(p).stem for p in printed} == EXPECTED_UIDS


def test_the_cli_exits_2_when_it_cannot_write(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    assert main(["dashboards", "build", "--out", str(blocker / "out")]) == 2
    err = capsys.readouterr().err
    assert "cannot write dashboards to" in err
    assert str(blocker / "out") in err


def test_every_dashboard_has_a_stable_uid_the_tag_the_refresh_and_the_group_variable(
    boards: dict[str, dict[str, Any]],
) -> None:
    assert {board["uid"] for board in boards.values()} == EXPECTED_UIDS
    assert sorted(boards) == sorted(f"{uid}.json" for uid in EXPECTED_UIDS)
    for name, board in boards.items():
        assert board["tags"] == ["minewatch"], name
        assert board["refresh"] == "1m", name
        [variable] = board["templating"]["list"]
        assert (variable["name"], variable["query"], variable["datasource"]) == ("group_id", GROUP_QUERY, DATASOURCE)
        assert variable["multi"] == variable["includeAll"] == (board["uid"] != "minewatch-group-detail"), name
        ids = [panel["id"] for panel in panels(board)]
        assert None not in ids, name
        assert len(ids) == len(set(ids)), name


def test_every_panel_and_target_uses_the_minewatch_datasource_with_raw_influxql(
    boards: dict[str, dict[str, Any]],
) -> None:
    for board in boards.values():
        for panel in panels(board):
            assert panel["datasource"] == DATASOURCE, panel["title"]
            assert panel["targets"], f"{panel['title']} has no query"
    for target in targets(boards):
        assert target.data["datasource"] == DATASOURCE, target.where
        assert target.data["rawQuery"] is True, target.where
        assert target.data["query"].startswith("SELECT "), target.where


_FROM = re.compile(r'\bFROM\s+"([^"]+)"')
_ALIAS = re.compile(r'\bAS\s+"([^"]+)"')
_QUOTED = re.compile(r'"([^"]+)"')


def test_every_measurement_tag_and_field_a_query_names_is_in_the_catalogue(boards: dict[str, dict[str, Any]]) -> None:
    problems = []
    queries = [(t.where, t.data["query"]) for t in targets(boards)]
    queries += [(f"{b['uid']} / ${v['name']}", v["query"]) for b in boards.values() for v in b["templating"]["list"]]
    for where, query in queries:
        measurements = _FROM.findall(query)
        if not measurements:
            problems.append(f"{where}: no measurement")
        names = set(_ALIAS.findall(query))
        for measurement in measurements:
            if measurement not in CATALOGUE:
                problems.append(f"{where}: unknown measurement {measurement}")
                continue
            names |= {measurement, *CATALOGUE[measurement].tags, *CATALOGUE[measurement].fields}
        problems += [f"{where}: unknown name {name}" for name in _QUOTED.findall(query) if name not in names]
    assert problems == []


def test_queries_filter_on_time_and_group_and_never_fill_measured_values_with_zero(
    boards: dict[str, dict[str, Any]],
) -> None:
    for target in targets(boards):
        query = target.data["query"]
        assert "$timeFilter" in query, target.where
        assert '"group_id" =~ /^$group_id$/' in query, target.where
        if "GROUP BY time(" in query:
            assert re.search(r"GROUP BY time\((\$__interval|1d)\)", query), target.where
        if "fill(0)" in query:  # a zero is only true for a count of events (the rate-limited polls)
            assert re.findall(r"\b(\w+)\(\"", query) == ["count"], target.where


def test_units_are_grafana_unit_ids(boards: dict[str, dict[str, Any]]) -> None:
    units = {
        panel["title"]: panel["fieldConfig"]["defaults"]["unit"] for board in boards.values() for panel in panels(board)
    }
    # Grafana's hashrate unit id is "Hs" (valueFormats/categories.ts); "H/s" is unknown to it and shown unscaled.
    for title in ("Hashrate against the permitted quota", "Unaccounted hashrate", "Hashrate by pool"):
        assert units[title] == "Hs", title
    assert units["Power against capacity"] == "watt"
    assert units["Hashrate against quota"] == "percentunit"
    assert units["Poll duration"] == units["Data age"] == "s"
    text = "".join(json.dumps(board) for board in boards.values())
    assert '"H/s"' not in text
    assert "currencyBTC" not in text  # amounts are grouped by coin: no coin is assumed to be BTC


def test_coin_amounts_are_plain_numbers_with_8_decimals_named_by_their_coin(boards: dict[str, dict[str, Any]]) -> None:
    by_title = {panel["title"]: panel for board in boards.values() for panel in panels(board)}
    production = by_title["Daily production"]
    assert (production["fieldConfig"]["defaults"]["unit"], production["fieldConfig"]["defaults"]["decimals"]) == (
        "none",
        8,
    )
    [daily] = production["targets"]
    assert '"coin"' in daily["query"]
    assert "$tag_coin" in daily["alias"]
    payouts = by_title["Payouts"]
    [amount] = [o for o in payouts["fieldConfig"]["overrides"] if o["matcher"]["options"] == "amount"]
    assert {p["id"]: p["value"] for p in amount["properties"]} == {"unit": "none", "decimals": 8}
    assert '"coin"' in payouts["targets"][0]["query"]


def test_counts_of_events_show_zero_rather_than_no_data(boards: dict[str, dict[str, Any]]) -> None:
    by_title = {panel["title"]: panel for board in boards.values() for panel in panels(board)}
    for title in ("Groups in violation", "Alerts opened"):
        assert by_title[title]["fieldConfig"]["defaults"]["noValue"] == "0", title


def test_no_panel_keeps_grafanalibs_legacy_field_options(boards: dict[str, dict[str, Any]]) -> None:
    for board in boards.values():
        for panel in panels(board):
            assert "fieldOptions" not in panel.get("options", {}), panel["title"]


def test_collector_health_shows_network_feeds_whatever_groups_are_selected(boards: dict[str, dict[str, Any]]) -> None:
    health = boards["minewatch-collector-health.json"]
    for panel in panels(health):
        for target in panel["targets"]:
            assert '("group_id" =~ /^$group_id$/ OR "group_id" = \'\')' in target["query"], panel["title"]


def test_the_dashboard_sources_type_check_under_mypy_strict() -> None:
    """The project's mypy run skips `*.dashboard.py` (not valid module names), so type-check them by path."""
    files = [str(path) for path in sources()]
    assert len(files) == len(EXPECTED_UIDS)
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", *files], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
