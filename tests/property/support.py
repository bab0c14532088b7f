"""Hostile-input harness: every registered source, driven in-process from its golden cases.

The registry is walked (pools, networks, devices), not a hand-written list: a source added later is covered as
soon as it has golden cases (which `tests/test_source_registry.py` requires). Each source runs through its real
transport code: pool and chain sources through the real `HttpClient` over a fake `requests` session (so the
size limit, the status mapping and `loads_json` all run), miners through the real `MinerRpc` over a fake
socket (so the reply reader and the quirk repairs run). Only the network itself is replaced.
"""

from __future__ import annotations

import io
import json
import logging
import socket
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from golden_support import split_unescaped
from requests.structures import CaseInsensitiveDict
from test_golden import WIRES, Case, PoolServer, build_target
from test_golden import discover as discover_http_cases
from test_golden_devices import GOLDEN as DEVICE_GOLDEN
from test_golden_devices import RecordedMiner

from collector.adapters.registry import source_registry
from collector.devices.base import DeviceContext
from collector.devices.cgminer.adapter import CgminerFleetSettings
from collector.devices.cgminer.client import MinerRpc
from collector.devices.cgminer.parse import decode
from collector.errors import SourceError
from collector.redact import Redactor
from collector.targets import DeviceTarget

REGISTRY = source_registry()
HTTP_KINDS = sorted([*REGISTRY, *REGISTRY.networks])
DEVICE_KINDS = sorted(REGISTRY.devices)
BASE_URL = "http://golden.test"
LOG = logging.getLogger("property")
LOG.addHandler(logging.NullHandler())
LOG.propagate = False

Path_ = tuple[str | int, ...]


# --- what a poll produced -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """A poll's result: its points keyed by (measurement, tags, time) -> {field: raw value}, or its error."""

    points: dict[tuple[str, str, str], dict[str, str]] | None
    error: SourceError | None

    @property
    def ok(self) -> bool:
        return self.points is not None


def points_of(lines: list[str]) -> dict[tuple[str, str, str], dict[str, str]]:
    """Line protocol as {(measurement, tag set, timestamp): {field: value as written}}, exact to the byte."""
    points: dict[tuple[str, str, str], dict[str, str]] = {}
    for line in lines:
        series = split_unescaped(line, " ", quotes=False)[0]
        rest = line[len(series) + 1 :]
        fields_text, timestamp = rest.rsplit(" ", 1)
        measurement, _, tags = series.partition(",")
        fields = dict(pair.split("=", 1) for pair in split_unescaped(fields_text, ",", quotes=True))
        key = (measurement, tags, timestamp)
        # The same point twice (a row a pool repeats on a second page) overwrites itself; two values do not.
        assert points.get(key, fields) == fields, f"two points with one series and time: {line}"
        points[key] = fields
    return points


def run_target(make: Callable[[], Any]) -> Outcome:
    """Build a fresh target, poll it once and turn its snapshot into points; only a SourceError may escape."""
    target = make()
    target.start_poll()
    try:
        snapshot = target.collect()
    except SourceError as exc:
        return Outcome(None, exc)
    return Outcome(points_of(list(target.lines(snapshot))), None)


# --- HTTP sources -----------------------------------------------------------------------------------------


class _FakeRaw:
    def __init__(self, body: bytes) -> None:
        self._body = io.BytesIO(body)

    def read1(self, size: int, decode_content: bool = True) -> bytes:
        return self._body.read1(size)


class _FakeResponse:
    def __init__(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
        self.status_code = status
        self.headers = CaseInsensitiveDict(dict(headers))
        self.raw = _FakeRaw(body)

    def __enter__(self) -> _FakeResponse:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


Answer = Callable[[str, str, Mapping[str, str]], tuple[int, Mapping[str, str], bytes]]


class FakeSession:
    """A `requests.Session` stand-in: `request()` answers from a function of (method, url, headers)."""

    def __init__(self, answer: Answer) -> None:
        self._answer = answer

    def request(self, method: str, url: str, *, headers: Mapping[str, str] | None = None, **kwargs: Any) -> Any:
        params = kwargs.get("params")
        if params:
            url = f"{url}?{urlencode(params)}"
        status, reply_headers, body = self._answer(method, url, headers or {})
        return _FakeResponse(status, reply_headers, body)


@dataclass
class HttpCase:
    """One golden case of an HTTP source, servable with any endpoint's body replaced."""

    case: Case
    served: dict[str, bytes] = field(default_factory=dict)  # endpoint -> the body the baseline poll got

    def __repr__(self) -> str:
        return f"HttpCase({self.id})"

    @property
    def id(self) -> str:
        return self.case.id

    @property
    def kind(self) -> str:
        return self.case.kind

    def _server(self) -> PoolServer:
        spec = self.case.spec
        return PoolServer(self.case.path, WIRES[self.kind], spec.get("coin", "BTC"), spec.get("responses", {}))

    def run(self, bodies: Mapping[str, bytes] | None = None, *, record: bool = False) -> Outcome:
        """Poll once; `bodies` replaces the named endpoints' bodies (served with status 200, JSON)."""
        server, wire, bodies = self._server(), WIRES[self.kind], dict(bodies or {})
        routes = wire.routes(server.coin, wire.secret or "")

        def answer(method: str, url: str, headers: Mapping[str, str]) -> tuple[int, Mapping[str, str], bytes]:
            path = urlsplit(url).path
            endpoint = routes.get(path.rstrip("/"))
            if endpoint in bodies:
                return 200, {"Content-Type": "application/json"}, bodies[endpoint]
            token = headers.get(wire.auth_header) if wire.auth_header else None
            reply = server.reply(path, token)
            if record and endpoint is not None and reply.status == 200:
                self.served.setdefault(endpoint, reply.body)
            return reply.status, {"Content-Type": reply.content_type, **reply.headers}, reply.body

        def make() -> Any:
            return build_target(self.case, BASE_URL, Redactor(), FakeSession(answer))  # type: ignore[arg-type]

        return run_target(make)


def http_cases(kind: str) -> list[HttpCase]:
    """The golden cases of one HTTP kind, each polled once to learn which endpoints it serves."""
    cases = []
    for case in discover_http_cases():
        if case.kind == kind:
            http_case = HttpCase(case)
            http_case.run(record=True)
            cases.append(http_case)
    return cases


# --- miners -----------------------------------------------------------------------------------------------


class _FakeMinerSocket:
    """Answers one command like the recorded miner, in small receives (as a real socket may)."""

    def __init__(self, reply_for: Callable[[str], bytes | None]) -> None:
        self._reply_for = reply_for
        self._request = b""
        self._reply: io.BytesIO | None = None

    def __enter__(self) -> _FakeMinerSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def sendall(self, data: bytes) -> None:
        self._request += data

    def shutdown(self, how: int) -> None:
        reply = self._reply_for(json.loads(self._request)["command"])
        self._reply = io.BytesIO(reply or b"")

    def settimeout(self, timeout: float | None) -> None:
        return None

    def recv(self, size: int) -> bytes:
        assert self._reply is not None
        return self._reply.read(min(size, 4096))


@dataclass
class DeviceCase:
    """One golden miner case, servable with any command's reply replaced."""

    folder: Path
    spec: dict[str, Any]
    served: dict[str, bytes] = field(default_factory=dict)  # command -> reply bytes of the baseline poll

    def __repr__(self) -> str:
        return f"DeviceCase({self.id})"

    @property
    def id(self) -> str:
        return f"cgminer/{self.folder.name}"

    @property
    def kind(self) -> str:
        return "cgminer"

    def run(self, replies: Mapping[str, bytes] | None = None, *, record: bool = False) -> Outcome:
        miner, replies = RecordedMiner(self.folder, self.spec.get("faults", {})), dict(replies or {})
        now = float(self.spec["now"])

        def reply_for(command: str) -> bytes | None:
            if command in replies:
                return replies[command]
            reply = miner.reply(command)
            if record and reply is not None and b'"Invalid command"' not in reply:
                self.served.setdefault(command, reply)
            return reply

        def connect(address: tuple[str, int], timeout: float) -> socket.socket:
            return _FakeMinerSocket(reply_for)  # type: ignore[return-value]

        def make() -> DeviceTarget:
            settings = CgminerFleetSettings.model_validate(
                {"dialect": self.spec.get("dialect", "auto"), "miners": [{"address": "127.0.0.1:4028", "name": "m1"}]}
            )
            rpc = MinerRpc("127.0.0.1", 4028, monotonic=lambda: 0.0, connect=connect)
            ctx = DeviceContext(rpc=rpc, clock=lambda: now, log=LOG, target="m1")
            source = REGISTRY.devices["cgminer"](settings, ctx)
            return DeviceTarget("golden", "site-1", "fleet-1", "m1", source, rpc, 60.0, 10.0)

        return run_target(make)


def device_cases(kind: str) -> list[DeviceCase]:
    cases = []
    for case_toml in sorted(DEVICE_GOLDEN.parent.joinpath(kind).glob("*/case.toml")):
        with case_toml.open("rb") as handle:
            case = DeviceCase(case_toml.parent, tomllib.load(handle))
        case.run(record=True)
        cases.append(case)
    return cases


AnyCase = HttpCase | DeviceCase


def cases_of(kind: str) -> list[AnyCase]:
    return list(device_cases(kind)) if kind in REGISTRY.devices else list(http_cases(kind))


# --- payloads -----------------------------------------------------------------------------------------------


def decode_body(case: AnyCase, endpoint: str, body: bytes) -> Any:
    """The JSON value of a served body as its source reads it (a miner's after the quirk repairs)."""
    if isinstance(case, DeviceCase):
        return decode(body, endpoint)
    return json.loads(body.rstrip(b"\x00 \r\n\t").decode("utf-8"))


def encode_body(value: Any) -> bytes:
    """JSON bytes; NaN and infinities are written as the bare constants some servers send."""
    return json.dumps(value, allow_nan=True).encode()


def paths(value: Any, prefix: Path_ = ()) -> Iterator[Path_]:
    """Every path to a node under the root (dict keys and list indices)."""
    if isinstance(value, dict):
        items: Iterator[tuple[str | int, Any]] = iter(value.items())
    elif isinstance(value, list):
        items = iter(enumerate(value))
    else:
        return
    for key, inner in items:
        yield (*prefix, key)
        yield from paths(inner, (*prefix, key))


def get_at(value: Any, path: Path_) -> Any:
    for part in path:
        value = value[part]
    return value


def replaced(value: Any, path: Path_, new: Any) -> Any:
    """A copy of `value` with the node at `path` replaced by `new`."""
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {k: (replaced(v, rest, new) if k == head else v) for k, v in value.items()}
    copy = list(value)
    copy[int(head)] = replaced(copy[int(head)], rest, new)
    return copy


def deleted(value: Any, path: Path_) -> Any:
    """A copy of `value` without the dict key at `path` (whose last part must be a key of a dict)."""
    head, rest = path[0], path[1:]
    if not rest:
        assert isinstance(value, dict)
        return {k: v for k, v in value.items() if k != head}
    if isinstance(value, dict):
        return {k: (deleted(v, rest) if k == head else v) for k, v in value.items()}
    copy = list(value)
    copy[int(head)] = deleted(copy[int(head)], rest)
    return copy


def kind_of(value: Any) -> str:
    """The JSON type a pool means by a value: a numeric string is a number (pools send numbers as strings)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        try:
            float(value)  # "1e999" and "NaN" too: numeric junk, refused as a number, never read as text
        except ValueError:
            return "string"
        return "number"
    return "array" if isinstance(value, list) else "object"


def nested(depth: int, leaf: str = "1") -> bytes:
    """`depth` levels of arrays around `leaf`."""
    return b"[" * depth + leaf.encode() + b"]" * depth


def golden_keys() -> tuple[str, ...]:
    """Every object key in every golden recording (JSON bodies and miner replies): random objects built from
    them reach past the parsers' first lookups."""
    keys: set[str] = set()
    golden = DEVICE_GOLDEN.parent
    for file in [*golden.glob("*/*/*.json"), *golden.glob("*/*/*.reply")]:
        try:
            value = decode(file.read_bytes(), file.stem)
        except SourceError:
            continue
        keys.update(str(p[-1]) for p in paths(value) if isinstance(p[-1], str))
    return tuple(sorted(keys))
