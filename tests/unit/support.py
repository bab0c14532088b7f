"""Helpers shared by the unit tests: an editable config copy, a CLI run, a local HTTP server, a line parser."""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import ClassVar

REPO = Path(__file__).resolve().parents[2]
GOOD_CONFIG = REPO / "tests" / "configs" / "good"
CONFIG_ERROR = "minewatch: config error: "

# The recognizable secret values in tests/configs/good/secrets/: no output may ever contain one.
FILE_SECRETS = ("SEKRIT-alpha-braiins-4f9c2e", "SEKRIT-alpha-emcd-8d1b7a", "SEKRIT-beta-emcd-2c6e90")


class ConfigDir:
    """A temp copy of tests/configs/good that a test edits into one bad case."""

    def __init__(self, root: Path) -> None:
        shutil.copytree(GOOD_CONFIG, root)
        self.root = root
        self.main = root / "minewatch.toml"

    def file(self, relative: str) -> Path:
        return self.root / relative

    def replace(self, relative: str, old: str, new: str) -> None:
        """Replace the one occurrence of `old` in a file (a typo in a test table fails loudly)."""
        path = self.file(relative)
        text = path.read_text(encoding="utf-8")
        assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times in {relative}"
        path.write_text(text.replace(old, new), encoding="utf-8")

    def append(self, relative: str, text: str) -> None:
        path = self.file(relative)
        path.write_text(path.read_text(encoding="utf-8") + "\n" + text, encoding="utf-8")


@dataclass(frozen=True)
class CliRun:
    """What one in-process `minewatch` run returned and printed."""

    code: int
    out: str
    err: str

    @property
    def output(self) -> str:
        return self.out + self.err

    @property
    def errors(self) -> list[str]:
        """The `file: key.path: reason` part of every config error line."""
        return [line.removeprefix(CONFIG_ERROR) for line in self.err.splitlines() if line.startswith(CONFIG_ERROR)]


# --- a local HTTP server whose first path segment picks the behaviour --------------------------------------


class RoutingHandler(BaseHTTPRequestHandler):
    """Routes (the rest of the path is ignored, so a pool-like path with a key in it can follow):

    /ok/...                 200 {"ok": true}
    /status/<code>/...      <code> with a JSON body
    /retry-after/<v>/...    429 with `Retry-After: <v>` (`date` sends an HTTP date)
    /body/<name>/...        200 with one of `BODIES`
    /big/<n>/...            200 with n bytes of valid JSON
    /sleep/<s>/...          sleeps s seconds before answering
    /trickle/<s>/...        sends headers at once, then one byte of body every 0.1 s for s seconds
    /cut/...                promises a 1000-byte body, sends 10 bytes and closes the connection
    /stall/<s>/...          promises a 1000-byte body, sends 10 bytes, then goes silent for s seconds
    /redirect/<host:port>   302 to http://<host:port>/echo
    /echo/...               200 with the request's headers as a JSON object
    """

    protocol_version = "HTTP/1.1"
    BODIES: ClassVar[dict[str, bytes]] = {
        "nul": b'{"hashrate": 1.5}\x00\x00\x00\x00',
        "nan": b'{"hashrate": NaN}',
        "badutf8": b'{"worker": "\xff\xfe"}',
        "malformed": b'{"hashrate": 1.5',
    }

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""

    def do_GET(self) -> None:
        parts = self.path.split("?")[0].strip("/").split("/")
        route, arg = parts[0], parts[1] if len(parts) > 1 else ""
        try:
            if route == "ok":
                self._send(200, b'{"ok": true}')
            elif route == "status":
                self._send(int(arg), b'{"error": "nope"}')
            elif route == "retry-after":
                value = "Wed, 21 Oct 2037 07:28:00 GMT" if arg == "date" else arg
                self._send(429, b'{"error": "slow down"}', {"Retry-After": value})
            elif route == "body":
                self._send(200, self.BODIES[arg])
            elif route == "big":
                self._send(200, b'"' + b"x" * (int(arg) - 2) + b'"')
            elif route == "sleep":
                time.sleep(float(arg))
                self._send(200, b"{}")
            elif route == "trickle":
                self._trickle(float(arg))
            elif route in ("cut", "stall"):
                self._partial_body(float(arg) if route == "stall" else 0.0)
            elif route == "redirect":
                self._send(302, b"{}", {"Location": f"http://{arg}/echo"})
            elif route == "echo":
                self._send(200, json.dumps(dict(self.headers.items())).encode())
            else:
                self._send(404, b"{}")
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _partial_body(self, stall_s: float) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "1000")
        self.end_headers()
        self.wfile.write(b'{"hashrate"')
        self.wfile.flush()
        time.sleep(stall_s)
        self.close_connection = True

    def _trickle(self, seconds: float) -> None:
        steps = int(seconds / 0.1)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(steps + 2))
        self.end_headers()
        self.wfile.write(b'"')
        for _ in range(steps):
            self.wfile.write(b"x")
            self.wfile.flush()
            time.sleep(0.1)
        self.wfile.write(b'"')


# --- line protocol, read back ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Point:
    """One parsed line: tag values unescaped, field values as written (`1.5`, `3i`, `"text"`)."""

    measurement: str
    tags: dict[str, str]
    fields: dict[str, str]
    timestamp: int


def _split(text: str, separator: str, *, quotes: bool) -> list[str]:
    """Split on `separator` where it is neither backslash-escaped nor (with `quotes`) inside a string."""
    parts, current, escaped, quoted = [], "", False, False
    for char in text:
        if escaped:
            current += char
            escaped = False
        elif char == "\\":
            current += char
            escaped = True
        elif quotes and char == '"':
            current += char
            quoted = not quoted
        elif char == separator and not quoted:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return parts


def _unescape(text: str) -> str:
    for special in (",", "=", " "):
        text = text.replace("\\" + special, special)
    return text


def parse_line(line: str) -> Point:
    """Parse one line of line protocol as InfluxDB would (enough of it for these tests)."""
    assert "\n" not in line, f"a line must not contain a newline: {line!r}"
    series, fields_text, timestamp = _split(line, " ", quotes=True)
    measurement, *tag_parts = _split(series, ",", quotes=False)
    tags = {}
    for part in tag_parts:
        key, value = _split(part, "=", quotes=False)
        tags[_unescape(key)] = _unescape(value)
    fields = {}
    for part in _split(fields_text, ",", quotes=True):
        key, value = part.split("=", 1)
        fields[key] = value
    return Point(
        _unescape(measurement),
        tags,
        fields,
        int(timestamp),
    )


def field_value(rendered: str) -> float | int | str:
    """The value a rendered field stands for: `1.5` -> 1.5, `3i` -> 3, `"a \\"b\\""` -> 'a "b"'."""
    kind = field_type(rendered)
    if kind is str:
        return rendered[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return int(rendered[:-1]) if kind is int else float(rendered)


def field_type(rendered: str) -> type:
    """The type InfluxDB gives a rendered field value: int (`3i`), str (`"x"`) or float (anything numeric)."""
    if rendered.startswith('"'):
        assert rendered.endswith('"'), rendered
        assert len(rendered) >= 2, rendered
        return str
    if rendered.endswith("i"):
        int(rendered[:-1])
        return int
    float(rendered)
    return float
