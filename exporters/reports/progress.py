"""Progress of a report run: a bar on a terminal; on anything else, one JSON line per file and a summary."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Protocol, TextIO


class Progress(Protocol):
    """What `generate_monthly` tells about its progress."""

    def start(self, month: str, steps: int) -> None: ...
    def step_done(self) -> None: ...
    def file_written(self, path: Path, fmt: str, group_id: str | None) -> None: ...
    def finish(self, month: str, files: list[Path], rows: int, warnings: list[str]) -> None: ...


class BarProgress:
    """`[#####.....] 512/1004 steps 2026-10` redrawn in place (a hand-written bar: no dependency needed).

    Steps are the query batches (one per `GROUP_BATCH` groups per month window, the slow part), the blackout
    sums, then one per group computed and written, so the bar moves during the query phase too.
    """

    def __init__(self, stream: TextIO, width: int = 30) -> None:
        self._stream = stream
        self._width = width
        self._total = 0
        self._done = 0
        self._month = ""
        self._started = time.monotonic()

    def start(self, month: str, steps: int) -> None:
        self._total, self._done, self._month = steps, 0, month
        self._started = time.monotonic()
        self._draw()

    def step_done(self) -> None:
        self._done = min(self._total, self._done + 1)
        self._draw()

    def file_written(self, path: Path, fmt: str, group_id: str | None) -> None:
        return  # the bar counts steps; the summary lists files

    def finish(self, month: str, files: list[Path], rows: int, warnings: list[str]) -> None:
        elapsed = time.monotonic() - self._started
        self._stream.write(f"\nreport {month}: {rows} rows, {len(files)} files in {elapsed:.1f} s\n")
        for warning in warnings:
            self._stream.write(f"warning: {warning}\n")
        self._stream.flush()

    def _draw(self) -> None:
        filled = self._width * self._done // self._total if self._total else self._width
        bar = "#" * filled + "." * (self._width - filled)
        self._stream.write(f"\r[{bar}] {self._done}/{self._total} steps {self._month}")
        self._stream.flush()


class JsonLinesProgress:
    """Machine-readable: `{"event": "file", ...}` per written file, `{"event": "summary", ...}` at the end."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def start(self, month: str, steps: int) -> None:
        return

    def step_done(self) -> None:
        return

    def file_written(self, path: Path, fmt: str, group_id: str | None) -> None:
        self._emit({"event": "file", "format": fmt, "path": str(path), "group_id": group_id})

    def finish(self, month: str, files: list[Path], rows: int, warnings: list[str]) -> None:
        self._emit(
            {"event": "summary", "month": month, "rows": rows, "files": [str(f) for f in files], "warnings": warnings}
        )

    def _emit(self, record: dict[str, object]) -> None:
        self._stream.write(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")
        self._stream.flush()


def progress_for(stream: TextIO) -> Progress:
    """A bar when `stream` is a terminal, JSON lines otherwise."""
    isatty = getattr(stream, "isatty", None)
    return BarProgress(stream) if callable(isatty) and isatty() else JsonLinesProgress(stream)


def cli_progress(stdout: TextIO, stderr: TextIO) -> Progress:
    """The command line's choice: on a terminal (stderr) the bar goes to stderr, so stdout stays clean for the
    file list; otherwise JSON lines go to stdout, machine-readable."""
    isatty = getattr(stderr, "isatty", None)
    return BarProgress(stderr) if callable(isatty) and isatty() else JsonLinesProgress(stdout)
