"""Helpers for the CLI tests: run the real `minewatch` console script, copy the demo config, read line protocol.

Every process a test starts goes through `CliRunner`, which stops the ones still running at the end (by their
own pid, SIGTERM then SIGKILL). Output goes to files, so a chatty daemon never blocks on a full pipe.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, TypeVar

from demo_config import DemoConfig

from collector.sinks.influx import V1Transport

REPO = Path(__file__).resolve().parents[2]
DEMO_CONFIG = REPO / "config" / "demo"
DEMO_SCENARIO = REPO / "simulator" / "scenarios" / "demo.toml"
# The real console script of the venv running the tests; `python -m collector.cli` where it is not installed.
_SCRIPT = Path(sys.executable).with_name("minewatch")
MINEWATCH = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "collector.cli"]

# Every secret of the demo config: no output of any command may contain one.
DEMO_SECRETS: tuple[str, ...] = tuple(
    sorted(path.read_text(encoding="utf-8").strip() for path in (DEMO_CONFIG / "secrets").iterdir())
)

T = TypeVar("T")


# --- running the CLI ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finished:
    """A finished `minewatch` process: exit status, what it printed, how long it ran."""

    args: tuple[str, ...]
    code: int
    out: str
    err: str
    seconds: float

    def __str__(self) -> str:  # shown by pytest when an assertion about a run fails
        return f"minewatch {' '.join(self.args)} -> {self.code} after {self.seconds:.1f} s\nstderr:\n{self.err[-3000:]}"


class Running:
    """A `minewatch` process started by `CliRunner.start`."""

    def __init__(self, args: tuple[str, ...], workdir: Path, env: Mapping[str, str]) -> None:
        self.args = args
        run_id = uuid.uuid4().hex[:8]
        self.out_path = workdir / f"minewatch-{run_id}.out"
        self.err_path = workdir / f"minewatch-{run_id}.err"
        self._files: list[IO[bytes]] = [self.out_path.open("wb"), self.err_path.open("wb")]
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            [*MINEWATCH, *args],
            stdin=subprocess.DEVNULL,
            stdout=self._files[0],
            stderr=self._files[1],
            cwd=REPO,
            env=dict(env),
        )
        self._seconds: float | None = None

    @property
    def err(self) -> str:
        """stderr so far."""
        return self.err_path.read_text(encoding="utf-8", errors="replace")

    def is_running(self) -> bool:
        return self.process.poll() is None

    def terminate(self) -> None:
        """SIGTERM, as an init system stops the daemon."""
        if self.is_running():
            self.process.send_signal(signal.SIGTERM)

    def wait(self, timeout_s: float) -> Finished:
        """Wait for exit; a process still running after `timeout_s` fails the test (and is killed later)."""
        try:
            code = self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"minewatch {' '.join(self.args)} still running after {timeout_s:g} s; stderr:\n{self.err[-3000:]}"
            ) from None
        if self._seconds is None:
            self._seconds = time.monotonic() - self.started
        self.close_files()
        return Finished(
            self.args,
            code,
            self.out_path.read_text(encoding="utf-8", errors="replace"),
            self.err,
            self._seconds,
        )

    def stop(self) -> None:
        """Teardown: SIGTERM, then SIGKILL this one process if it does not exit within 10 s."""
        if self.is_running():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.close_files()

    def close_files(self) -> None:
        for handle in self._files:
            handle.close()


class CliRunner:
    """Starts `minewatch` subprocesses in the repository with a clean environment; stops leftovers on exit."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self._started: list[Running] = []
        # No proxy (every server is on loopback) and no $MINEWATCH_CONFIG from the developer's shell.
        dropped = {"MINEWATCH_CONFIG", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"}
        self.env = {key: value for key, value in os.environ.items() if key.upper() not in dropped}

    def start(self, *args: str) -> Running:
        running = Running(tuple(args), self.workdir, self.env)
        self._started.append(running)
        return running

    def run(self, *args: str, timeout_s: float = 60.0) -> Finished:
        return self.start(*args).wait(timeout_s)

    def __enter__(self) -> CliRunner:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for running in self._started:
            running.stop()


def wait_for(what: str, probe: Callable[[], T | None], *, timeout_s: float, interval_s: float = 0.25) -> T:
    """Call `probe` until it returns something other than None; fail naming `what` at the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = probe()
        if result is not None:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(interval_s)


# --- the demo config, pointed at the test's servers --------------------------------------------------------


# `make_config(...)` and `new_database()`: the factory fixtures of conftest.py.
MakeConfig = Callable[..., DemoConfig]
NewDatabase = Callable[[], V1Transport]


def databases(transport: V1Transport) -> set[str]:
    """The databases the server behind `transport` holds."""
    return {row[0] for series in transport.query("SHOW DATABASES", epoch=None) for row in series.rows}


def unique_name(prefix: str) -> str:
    """A database name no other test (or earlier run) uses."""
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


# --- line protocol -------------------------------------------------------------------------------------------

FieldValue = float | int | str | bool
_INTEGER = re.compile(r"-?\d+i")
_FLOAT = re.compile(r"-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_BOOLEANS = {"t": True, "T": True, "true": True, "True": True, "TRUE": True}
_BOOLEANS |= {"f": False, "F": False, "false": False, "False": False, "FALSE": False}


@dataclass(frozen=True)
class Point:
    """One parsed line: `measurement[,tag=value...] field=value[,...] timestamp`."""

    measurement: str
    tags: dict[str, str]
    fields: dict[str, FieldValue]
    timestamp: int


def _split(text: str, separator: str, *, quotes: bool, maxsplit: int = -1) -> list[str]:
    """Split on `separator` where it is neither backslash-escaped nor (with `quotes`) inside a "string"."""
    parts: list[str] = []
    current: list[str] = []
    quoted, index = False, 0
    while index < len(text):
        if len(parts) == maxsplit:
            current.append(text[index:])
            break
        char = text[index]
        if char == "\\" and index + 1 < len(text):
            current.append(text[index : index + 2])
            index += 2
            continue
        if quotes and char == '"':
            quoted = not quoted
        if char == separator and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
        index += 1
    if quoted:
        raise ValueError("unterminated string field")
    parts.append("".join(current))
    return parts


def _unescape(text: str) -> str:
    return re.sub(r"\\([ ,=\\\"])", r"\1", text)


def _key_value(text: str) -> tuple[str, str]:
    parts = _split(text, "=", quotes=False, maxsplit=1)
    if len(parts) != 2 or not parts[0]:
        raise ValueError(f"not key=value: {text!r}")
    return _unescape(parts[0]), parts[1]


def _field_value(raw: str) -> FieldValue:
    if _INTEGER.fullmatch(raw):
        return int(raw[:-1])
    if raw in _BOOLEANS:
        return _BOOLEANS[raw]
    if len(raw) >= 2 and raw[0] == raw[-1] == '"':
        return re.sub(r'\\(["\\])', r"\1", raw[1:-1])
    if _FLOAT.fullmatch(raw):
        return float(raw)
    raise ValueError(f"not a field value: {raw!r}")


def parse_line(line: str) -> Point:
    """Parse one line of line protocol with an explicit timestamp; ValueError if it is anything else."""
    key, *rest = _split(line, " ", quotes=False, maxsplit=1)  # tag values may hold a literal `"`
    sections = _split(rest[0], " ", quotes=True) if rest else []
    if len(sections) != 2:
        raise ValueError(f"expected measurement[,tags] fields timestamp: {line!r}")
    fields_text, timestamp = sections
    measurement, *tag_texts = _split(key, ",", quotes=False)
    if not measurement:
        raise ValueError(f"no measurement: {line!r}")
    tags = {name: _unescape(value) for name, value in map(_key_value, tag_texts)}
    if any(not value for value in tags.values()):
        raise ValueError(f"empty tag value: {line!r}")
    fields = {name: _field_value(raw) for name, raw in map(_key_value, _split(fields_text, ",", quotes=True))}
    if not re.fullmatch(r"-?\d+", timestamp):
        raise ValueError(f"bad timestamp: {line!r}")
    return Point(_unescape(measurement), tags, fields, int(timestamp))


def parse_output(text: str) -> list[Point]:
    """Every line of a `--print` output; ValueError naming the first line that is not line protocol."""
    points = []
    for number, line in enumerate(text.splitlines(), 1):
        try:
            points.append(parse_line(line))
        except ValueError as exc:
            raise ValueError(f"stdout line {number} is not line protocol: {exc}") from None
    return points


def number(point: Point, name: str) -> float:
    """A numeric field of `point` (a missing or non-numeric field fails the test)."""
    value = point.fields.get(name)
    assert isinstance(value, int | float), f"{name} is not a number: {point}"
    assert not isinstance(value, bool), f"{name} is a boolean: {point}"
    return float(value)


def account_of(point: Point) -> str:
    """The account a `source_health` point is about: its `target` tag is the account id (or `<kind>/<id>`)."""
    return point.tags["target"].rsplit("/", 1)[-1]


def by_measurement(points: list[Point], measurement: str) -> Iterator[Point]:
    return (point for point in points if point.measurement == measurement)
