"""One real influxd database seeded with `support.seed_lines()` and one report run over it, shared by the module."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from servers import InfluxdServer, unique_database

from collector.config import AppConfig
from collector.sinks.influx import V1Transport, quote_ident
from exporters.reports.generate import ReportResult, generate_monthly
from exporters.reports.row import ReportRow

from .support import seed_lines, write_config

GENERATED_AT = datetime(2026, 11, 1, 6, 30, tzinfo=UTC)


@dataclass(frozen=True)
class Run:
    config: AppConfig
    result: ReportResult
    out_dir: Path

    def row(self, site_id: str | None) -> ReportRow:
        [row] = [r for r in self.result.rows if r.site_id == site_id]
        return row


@pytest.fixture(scope="module")
def seeded(influxd: InfluxdServer, request: pytest.FixtureRequest) -> Iterator[V1Transport]:
    if not influxd.is_running:
        influxd.start()
    transport = V1Transport(influxd.url, unique_database(request.node.name), timeout_s=30.0)
    transport.ensure_database()
    lines = seed_lines()
    for start in range(0, len(lines), 5000):
        transport.write(lines[start : start + 5000])
    yield transport
    transport.query(f"DROP DATABASE {quote_ident(transport.database)}", epoch=None)
    transport.close()


@pytest.fixture(scope="module")
def run(seeded: V1Transport, tmp_path_factory: pytest.TempPathFactory) -> Run:
    root = tmp_path_factory.mktemp("report-config")
    config = write_config(root / "config")
    out_dir = root / "out"
    result = generate_monthly(config, "2026-10", transport=seeded, out_dir=out_dir, now=GENERATED_AT, progress=None)
    return Run(config, result, out_dir)
