"""`ScheduledReports.run_due`: generates due months, records them atomically, notifies, never raises."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from servers import StubHTTPServer, StubResponse

from exporters.reports.generate import ReportResult
from exporters.reports.period import Month
from exporters.reports.progress import BarProgress, JsonLinesProgress, progress_for
from exporters.reports.scheduled import ScheduledReports, read_last_month, write_last_month
from exporters.reports.settings import ReportSettings

from .support import write_config

NOW = datetime(2027, 1, 2, tzinfo=UTC)


class FakeGenerate:
    """Records the months asked for; fails for `fail_on`."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.months: list[str] = []
        self.fail_on = fail_on

    def __call__(self, config: Any, month: str, **kwargs: Any) -> ReportResult:
        if month == self.fail_on:
            raise RuntimeError("influx down")
        self.months.append(month)
        return ReportResult(month=month, paths=[kwargs["out_dir"] / f"{month}.csv"])


def _runner(tmp_path: Path, generate: FakeGenerate, webhook: str | None) -> ScheduledReports:
    config = write_config(tmp_path / "config")
    settings = ReportSettings(webhook_url=webhook, webhook_timeout_s=2)
    runner = ScheduledReports.from_config(config, settings, transport=None)  # type: ignore[arg-type]
    runner.generate = generate
    return runner


def test_made_up_months_are_generated_recorded_and_announced(tmp_path: Path) -> None:
    with StubHTTPServer() as hook:
        runner = _runner(tmp_path, FakeGenerate(), hook.url + "/reports")
        write_last_month(runner.state_file, Month(2026, 10), NOW)
        done = runner.run_due(NOW)
        assert [r.month for r in done] == ["2026-11", "2026-12"]
        assert read_last_month(runner.state_file) == Month(2026, 12)
        assert runner.state_file == tmp_path / "config" / "state" / "reports.json"
        notices = [json.loads(r.body) for r in hook.requests]
        assert notices == [
            {"event": "monthly_report", "month": m, "files": [str(runner.out_dir / f"{m}.csv")]}
            for m in ("2026-11", "2026-12")
        ]
        assert runner.run_due(NOW) == []  # nothing due any more


def test_a_failed_month_stays_due_and_nothing_raises(tmp_path: Path) -> None:
    generate = FakeGenerate(fail_on="2026-12")
    runner = _runner(tmp_path, generate, None)
    write_last_month(runner.state_file, Month(2026, 10), NOW)
    assert [r.month for r in runner.run_due(NOW)] == ["2026-11"]
    assert read_last_month(runner.state_file) == Month(2026, 11)
    generate.fail_on = None
    assert [r.month for r in runner.run_due(NOW)] == ["2026-12"]


def test_a_failing_webhook_is_logged_not_raised(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with StubHTTPServer([StubResponse(status=500)]) as hook:
        runner = _runner(tmp_path, FakeGenerate(), hook.url)
        assert [r.month for r in runner.run_due(NOW)] == ["2026-12"]
    assert "HTTP 500" in caplog.text
    assert read_last_month(runner.state_file) == Month(2026, 12)


def test_an_unreadable_state_file_counts_as_empty(tmp_path: Path) -> None:
    state = tmp_path / "reports.json"
    state.write_text("{not json")
    assert read_last_month(state) is None
    state.write_text('{"last_month": "2026-13"}')
    assert read_last_month(state) is None


def test_progress_is_a_bar_on_a_terminal_and_json_lines_elsewhere(tmp_path: Path) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert isinstance(progress_for(Tty()), BarProgress)
    out = io.StringIO()
    progress = progress_for(out)
    assert isinstance(progress, JsonLinesProgress)
    progress.start("2026-10", 2)
    progress.group_done("a")
    progress.file_written(tmp_path / "x.pdf", "pdf", "a")
    progress.finish("2026-10", [tmp_path / "x.pdf"], 3, ["w"])
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["event"] for r in records] == ["file", "summary"]
    assert records[1] == {
        "event": "summary",
        "month": "2026-10",
        "rows": 3,
        "files": [str(tmp_path / "x.pdf")],
        "warnings": ["w"],
    }
    bar = Tty()
    tty_progress = progress_for(bar)
    tty_progress.start("2026-10", 4)
    tty_progress.group_done("a")
    assert "[#######.......................] 1/4 groups 2026-10" in bar.getvalue()
