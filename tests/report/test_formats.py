"""The files of the run: CSV round-trips with its documented header, JSON validates, the PDF reads as a report."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import astuple
from pathlib import Path

import jsonschema
import pytest
from pypdf import PdfReader

from exporters.reports.formats.csv_format import cell
from exporters.reports.formats.json_format import JSON_SCHEMA
from exporters.reports.row import COLUMNS, SCHEMA_VERSION

from .conftest import Run

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
    assert document["generated_at"] == "2026-11-01T06:30:00+00:00"
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
