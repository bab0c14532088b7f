"""`ScheduledReports.run_due`: generates due months, records them atomically, notifies, never raises."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from servers import StubHTTPServer, StubResponse

from exporters.reports.generate import ReportResult
from exporters.reports.period import Month
from exporters.reports.progress import BarProgress, JsonLinesProgress, cli_progress, progress_for
from exporters.reports.scheduled import ScheduledReports, notify, read_last_month, write_last_month
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
    assert runner.run_due(NOW) == []  # not before the backoff
    assert [r.month for r in runner.run_due(NOW + timedelta(hours=1))] == ["2026-12"]


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
    progress.step_done()
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
    tty_progress.step_done()
    assert "[#######.......................] 1/4 steps 2026-10" in bar.getvalue()


def test_the_command_line_bar_goes_to_stderr_and_json_lines_to_stdout(tmp_path: Path) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    out, err = io.StringIO(), Tty()
    progress = cli_progress(out, err)
    progress.start("2026-10", 2)
    progress.step_done()
    progress.finish("2026-10", [], 0, [])
    assert out.getvalue() == ""  # stdout stays clean for the file list
    assert "1/2 steps" in err.getvalue()
    out, plain = io.StringIO(), io.StringIO()
    progress = cli_progress(out, plain)
    progress.finish("2026-10", [], 0, [])
    assert plain.getvalue() == ""
    assert json.loads(out.getvalue())["event"] == "summary"


def test_a_failed_month_backs_off_and_the_webhook_hears_once_per_streak(tmp_path: Path) -> None:
    with StubHTTPServer() as hook:
        generate = FakeGenerate(fail_on="2026-12")
        runner = _runner(tmp_path, generate, hook.url)
        runner.redact = lambda text: text.replace("s3cret-token", "***")
        write_last_month(runner.state_file, Month(2026, 11), NOW)
        calls: list[str] = []

        def failing(config: Any, month: str, **kwargs: Any) -> ReportResult:
            calls.append(month)
            raise RuntimeError("influx down, token s3cret-token")

        runner.generate = failing
        assert runner.run_due(NOW) == []
        assert runner.run_due(NOW + timedelta(minutes=10)) == []  # the next check: still backing off
        assert runner.run_due(NOW + timedelta(minutes=59)) == []
        assert calls == ["2026-12"]
        assert runner.run_due(NOW + timedelta(hours=1)) == []  # retried after 1 h, failed again
        assert calls == ["2026-12", "2026-12"]
        assert runner.run_due(NOW + timedelta(hours=2, minutes=59)) == []  # the backoff doubled: 2 h
        assert len(calls) == 2
        assert runner.run_due(NOW + timedelta(hours=3)) == []
        assert len(calls) == 3
        notices = [json.loads(r.body) for r in hook.requests]
        assert notices == [
            {"event": "monthly_report_failed", "month": "2026-12", "error": "RuntimeError: influx down, token ***"}
        ]
        runner.generate = generate
        generate.fail_on = None
        assert [r.month for r in runner.run_due(NOW + timedelta(hours=7))] == ["2026-12"]
        assert json.loads(hook.requests[-1].body)["event"] == "monthly_report"
        assert runner.failing == {}


def test_the_backoff_doubles_up_to_a_day(tmp_path: Path) -> None:
    runner = _runner(tmp_path, FakeGenerate(fail_on="2026-12"), None)
    write_last_month(runner.state_file, Month(2026, 11), NOW)
    now = NOW
    backoffs = []
    for _ in range(8):
        runner.run_due(now)
        entry = runner.failing[Month(2026, 12)]
        backoffs.append(entry.backoff)
        now = entry.retry_at
    assert backoffs == [timedelta(hours=h) for h in (1, 2, 4, 8, 16, 24, 24, 24)]


def test_notify_never_raises(caplog: pytest.LogCaptureFixture) -> None:
    class Broken:
        def post(self, *args: Any, **kwargs: Any) -> Any:
            raise ValueError("not a requests exception")

    result = ReportResult(month="2026-10", paths=[Path("a.csv")])
    assert notify("http://127.0.0.1:9/x", result, timeout_s=1, session=Broken()) is False  # type: ignore[arg-type]
    assert "ValueError" in caplog.text
