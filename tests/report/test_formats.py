"""The files of the run: CSV round-trips with its documented header, JSON validates, the PDF reads as a report."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import astuple, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import jsonschema
import pytest
from pypdf import PdfReader

from exporters.reports.compute import group_charts
from exporters.reports.formats.charts import PLOT_LEFT, PLOT_WIDTH, hashrate_chart, x_of
from exporters.reports.formats.csv_format import cell
from exporters.reports.formats.json_format import JSON_SCHEMA
from exporters.reports.formats.pdf_format import findings, render_pdf
from exporters.reports.period import Month
from exporters.reports.queries import WindowFacts
from exporters.reports.row import COLUMNS, SCHEMA_VERSION

from .conftest import GENERATED_AT, Run
from .support import ns

pytestmark = pytest.mark.integration
README = Path(__file__).resolve().parents[2] / "exporters" / "reports" / "README.md"


def _file(run: Run, suffix: str) -> Path:
    [path] = [p for p in run.result.paths if p.name.endswith(suffix)]
    return path


def test_files_are_named_by_month_and_group(run: Run) -> None:
    names = sorted(p.name for p in run.result.paths)
    assert names == [
        "minewatch-report-2026-10-gamma.pdf",
        "minewatch-report-2026-10.csv",
        "minewatch-report-2026-10.json",
    ]


def test_csv_round_trips_with_the_documented_header(run: Run) -> None:
    raw = _file(run, ".csv").read_bytes()
    assert raw.endswith(b"\r\n")  # RFC 4180 line ends
    records = list(csv.reader(io.StringIO(raw.decode("utf-8"), newline="")))
    assert tuple(records[0]) == COLUMNS
    assert [tuple(r) for r in records[1:]] == [tuple(cell(v) for v in astuple(row)) for row in run.result.rows]
    by_site = {r[COLUMNS.index("site_id")]: dict(zip(COLUMNS, r, strict=True)) for r in records[1:]}
    site, group = by_site["ber-1"], by_site[""]
    assert int(site["mined_sats"]) == run.row("ber-1").mined_sats
    assert json.loads(site["pools_not_permitted"]) == ["emcd"]
    assert json.loads(site["violation_episodes"]) == {"hashrate_quota": 2, "payout_address": 1, "pool_whitelist": 1}
    assert group["mined_sats"] == ""  # missing is an empty cell, never 0
    assert group["data_completeness"] == "0.0"
    documented = README.read_text(encoding="utf-8")
    for column in COLUMNS:
        assert f"`{column}`" in documented, f"column {column} is not documented in {README}"


def test_json_validates_against_its_schema_version(run: Run) -> None:
    document = json.loads(_file(run, ".json").read_text(encoding="utf-8"))
    jsonschema.validate(document, JSON_SCHEMA)
    assert document["schema_version"] == SCHEMA_VERSION
    assert (document["period"], document["columns"]) == ("2026-10", list(COLUMNS))
    assert document["generated_at"] == "2026-11-01T06:30:00Z"  # the same form as the period bounds
    assert isinstance(document["warnings"], list)
    group_row = next(r for r in document["rows"] if r["site_id"] is None)
    assert group_row["mined_sats"] is None
    broken = json.loads(json.dumps(document))
    broken["rows"][0]["mined_sats"] = "12"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, JSON_SCHEMA)


def test_pdf_opens_and_reads_as_the_groups_report(run: Run) -> None:
    reader = PdfReader(_file(run, ".pdf"))
    text = " ".join(page.extract_text() for page in reader.pages)
    mined = run.row("ber-1").mined_sats
    assert mined is not None
    assert "gamma" in text
    assert "2026-10" in text
    assert 'OOO "Gamma Hash"' in text
    assert f"{mined} sats" in text
    assert f"{mined // 10**8}.{mined % 10**8:08d} BTC" in text
    assert "missing" in text  # the group-level column has no production data
    assert "Alerts firing" in text
    assert "payout_address" in text


def _pdf_text(data: bytes) -> str:
    return " ".join(" ".join(page.extract_text().split()) for page in PdfReader(io.BytesIO(data)).pages)


def test_pdf_opens_with_the_findings_a_compliance_officer_must_see(run: Run) -> None:
    text = _pdf_text(_file(run, ".pdf").read_bytes())
    assert "Findings" in text
    assert "No findings" not in text
    assert "payouts to undeclared addresses: 300,000 sats" in text
    assert "pools not permitted: emcd" in text
    assert "hashrate above the quota" in text
    assert "peak power 12,500.00 W over capacity 10,000.00 W" in text
    assert "energy drawn in blackout" in text
    assert "data completeness" in text
    assert "below 95%" in text
    assert "alerts fired: hashrate_quota: 2" in text


def test_a_clean_month_says_no_findings(run: Run) -> None:
    clean = replace(
        run.row("ber-1"),
        payout_undeclared_sats=0,
        payout_addresses_undeclared=[],
        pools_not_permitted=[],
        hashrate_share_above_quota=0.0,
        power_peak_capacity_ratio=0.5,
        energy_blackout_kwh=0.0,
        data_completeness=1.0,
        violation_episodes={},
        violation_minutes={},
    )
    assert findings([clean]) == []
    charts = group_charts(run.config.group("gamma"), Month(2026, 10), WindowFacts(), GENERATED_AT)
    text = _pdf_text(render_pdf([clean], charts, generated_at=GENERATED_AT))
    assert "No findings" in text


def test_chart_data_leaves_days_without_data_missing_and_steps_the_quota(run: Run) -> None:
    facts = WindowFacts()
    at = datetime(2026, 10, 1, 6, tzinfo=UTC)
    facts.credit_points[("gamma", "braiins", "main", "BTC")] = [(ns(at), 500), (ns(at + timedelta(days=2)), 700)]
    facts.pool_poll_hours["gamma"] = {ns(at + timedelta(days=1))}  # 2 Oct: polled, nothing credited
    charts = group_charts(run.config.group("gamma"), Month(2026, 10), facts, GENERATED_AT)
    daily = dict(charts.daily_sats)
    assert (daily[date(2026, 10, 1)], daily[date(2026, 10, 2)], daily[date(2026, 10, 3)]) == (500, 0, 700)
    assert daily[date(2026, 10, 4)] is None  # no credit and no successful poll: no data, not 0
    assert len(charts.daily_sats) == len(charts.day_bounds) == 31
    change = datetime(2026, 10, 14, 22, tzinfo=UTC)  # 15 Oct local midnight: permit v2
    assert charts.quota_steps == [
        (charts.window.start, change, 1e14),
        (change, charts.window.end, 2e14),
    ]  # from the config, also across the week without data


def test_every_chart_shares_one_x_axis(run: Run) -> None:
    charts = group_charts(run.config.group("gamma"), Month(2026, 10), WindowFacts(), GENERATED_AT)
    assert x_of(charts.window.start, charts) == PLOT_LEFT
    assert x_of(charts.window.end, charts) == pytest.approx(PLOT_LEFT + PLOT_WIDTH)
    plot = next(d for d in hashrate_chart(charts).contents if hasattr(d, "xValueAxis"))
    assert (plot.x, plot.width) == (PLOT_LEFT, PLOT_WIDTH)
