"""`minewatch report monthly`: a report of what `collect --once` stored, and clear refusals of bad arguments."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cli_support import CliRunner, MakeConfig, NewDatabase

from exporters.reports.row import COLUMNS
from simulator.local_servers import InfluxdServer


def test_a_month_of_what_the_collector_stored_is_reported_as_csv_and_json(
    cli: CliRunner, make_config: MakeConfig, influxd: InfluxdServer, new_database: NewDatabase, tmp_path: Path
) -> None:
    db = new_database()
    config = make_config(influx_url=influxd.url, database=db.database)
    collected = cli.run("collect", "--once", "-c", str(config.main))
    assert collected.code == 0, str(collected)
    month = datetime.now(UTC).strftime("%Y-%m")
    out = tmp_path / "reports"

    run = cli.run(
        "report", "monthly", "--month", month, "--format", "csv,json", "--out", str(out), "-c", str(config.main)
    )

    assert run.code == 0, str(run)
    events = [json.loads(line) for line in run.out.splitlines()]  # not a terminal: JSON lines only
    [summary] = [event for event in events if event["event"] == "summary"]
    assert sorted(Path(path).name for path in summary["files"]) == [
        f"minewatch-report-{month}.csv",
        f"minewatch-report-{month}.json",
    ]
    with (out / f"minewatch-report-{month}.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0]) == COLUMNS
    assert {row["group_id"] for row in rows} == set(config.groups)
    assert all(row["period"] == month for row in rows)
    # The demo's pools credit every account daily: some credit of this month was stored and reported.
    assert sum(int(row["mined_sats"] or 0) for row in rows) > 0
    document = json.loads((out / f"minewatch-report-{month}.json").read_text(encoding="utf-8"))
    assert len(document["rows"]) == len(rows)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("--month", "2026-13"), "month 13 is not 01..12"),
        (("--month", "last"), "expected YYYY-MM"),
        (("--month", "2026-10", "--format", "csv,xlsx"), "'xlsx' is not one of csv, json, pdf"),
        (("--month", "2026-10", "--group", "nobody"), "--group 'nobody': no such group"),
    ],
)
def test_bad_arguments_exit_2_with_a_precise_message(
    cli: CliRunner, make_config: MakeConfig, arguments: tuple[str, ...], message: str
) -> None:
    config = make_config()

    run = cli.run("report", "monthly", *arguments, "-c", str(config.main))

    assert run.code == 2, str(run)
    assert message in run.err
    assert "Traceback" not in run.err


def test_an_unreachable_influxdb_exits_1_naming_the_problem(cli: CliRunner, make_config: MakeConfig) -> None:
    config = make_config()  # InfluxDB at a closed port

    run = cli.run("report", "monthly", "--month", "2026-10", "-c", str(config.main))

    assert run.code == 1, str(run)
    assert "cannot read InfluxDB" in run.err
    assert "Traceback" not in run.err
