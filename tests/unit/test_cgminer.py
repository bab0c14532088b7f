"""The cgminer-family client and parsers: real sockets on 127.0.0.1, the quirk repairs, hostile replies."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.devices.cgminer import parse
from collector.devices.cgminer.client import MinerRpc
from collector.devices.inventory import miner_addresses, split_host_port
from collector.errors import BadResponse, Timeout, Unreachable

Handler = Callable[[socket.socket], None]


@contextmanager
def miner(handler: Handler) -> Iterator[int]:
    """A one-connection-at-a-time TCP listener on 127.0.0.1 that runs `handler` per connection."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                handler(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        listener.close()


def answer(reply: bytes) -> Handler:
    def handle(conn: socket.socket) -> None:
        conn.recv(4096)
        conn.sendall(reply)

    return handle


def rpc(port: int, timeout_s: float = 2.0, **kwargs: float) -> MinerRpc:
    client = MinerRpc("127.0.0.1", port, **kwargs)
    client.start_poll(timeout_s)
    return client


def test_a_command_is_sent_as_json_and_the_reply_read_until_close() -> None:
    seen: list[bytes] = []

    def handle(conn: socket.socket) -> None:
        seen.append(conn.recv(4096))
        conn.sendall(b'{"STATUS":[{"STATUS":"S"}],"SUMMARY":[{"Elapsed":5}]}\x00')

    with miner(handle) as port:
        raw = rpc(port).command("summary")

    assert json.loads(seen[0]) == {"command": "summary"}
    assert parse.first(parse.decode(raw, "summary"), "SUMMARY", "summary") == {"Elapsed": 5}


def test_a_closed_port_is_unreachable() -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    with pytest.raises(Unreachable, match="connection refused"):
        rpc(port).command("summary")


def test_a_silent_miner_times_out_within_the_poll_deadline() -> None:
    with miner(lambda conn: time.sleep(1.0)) as port:
        started = time.monotonic()
        with pytest.raises(Timeout):
            rpc(port, timeout_s=0.3).command("summary")
        assert time.monotonic() - started < 0.8


def test_no_command_is_sent_once_the_deadline_has_passed() -> None:
    client = MinerRpc("127.0.0.1", 9)
    client.start_poll(0.0)
    with pytest.raises(Timeout, match="deadline passed"):
        client.command("summary")


def test_an_empty_or_oversized_reply_is_a_bad_response() -> None:
    with miner(answer(b"")) as port, pytest.raises(BadResponse, match="without a reply"):
        rpc(port).command("summary")
    with miner(answer(b"x" * 5000)) as port, pytest.raises(BadResponse, match="larger than 1000 bytes"):
        rpc(port, max_reply_bytes=1000).command("summary")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b'{"a":1}\x00', {"a": 1}),
        (b'{"a":1,}', {"a": 1}),
        (b'{"S":[{"a":1}{"b":2}]}', {"S": [{"a": 1}, {"b": 2}]}),
        (b'{"S":[,{"a":1}]}', {"S": [{"a": 1}]}),
        (b'{"a":\n1}', {"a": 1}),
        (b'{"t":1,"t":2}', {"t": 2}),
        (b'{"x":"inf","y":"nan"}', {"x": None, "y": None}),
        (b',"a":1}', {"a": 1}),
        (b'{"a":1,"b":2,"c":"cut her', {"a": 1, "b": 2}),
    ],
)
def test_the_documented_firmware_quirks_are_repaired(raw: bytes, expected: object) -> None:
    assert parse.decode(raw, "c") == expected


@pytest.mark.parametrize("raw", [b"", b"\xff\xfe", b"{", b"[1,2]", b'{"a":NaN}', b"garbage}"])
def test_what_no_repair_can_save_is_a_bad_response(raw: bytes) -> None:
    with pytest.raises(BadResponse):
        parse.decode(raw, "c")


def test_an_error_status_is_a_failed_command_and_the_api2_envelope_is_understood() -> None:
    with pytest.raises(parse.CommandFailed, match="'E': Invalid command"):
        parse.check_status({"STATUS": [{"STATUS": "E", "Msg": "Invalid command"}]}, "version")
    parse.check_status({"STATUS": "S", "Msg": {"fw_ver": "x"}}, "get_version")
    with pytest.raises(BadResponse, match="no STATUS"):
        parse.check_status({"SUMMARY": []}, "summary")


@pytest.mark.parametrize(
    ("version", "devdetails", "dialect", "model"),
    [
        (
            {"VERSION": [{"BMMiner": "1.0", "Type": "Antminer S19 XP (Vnish 1.2.0)"}]},
            None,
            "antminer",
            "Antminer S19 XP",
        ),
        ({"VERSION": [{"BOSminer+": "0.2.0"}]}, {"DEVDETAILS": [{"Model": "Bitmain Antminer S9"}]}, "braiins_os", None),
        (None, {"DEVDETAILS": [{"Driver": "bitmicro", "Model": "M30S+_VE40"}]}, "whatsminer", "M30S+_VE40"),
        ({"VERSION": [{"CGMiner": "4.11.1", "PROD": "AvalonMiner 1246"}]}, None, "avalon", "AvalonMiner 1246"),
    ],
)
def test_the_dialect_and_model_are_told_from_version_and_devdetails(
    version: dict[str, object] | None, devdetails: dict[str, object] | None, dialect: str, model: str | None
) -> None:
    ok = {"STATUS": [{"STATUS": "S"}]}
    identity = parse.identify(
        None if version is None else {**ok, **version}, None if devdetails is None else {**ok, **devdetails}
    )
    assert identity.dialect == dialect
    if dialect == "braiins_os":
        model = "Bitmain Antminer S9"
    assert identity.model == model


def test_an_unknown_firmware_is_a_bad_response_not_a_guess() -> None:
    with pytest.raises(BadResponse, match="cannot tell"):
        parse.identify({"STATUS": [{"STATUS": "S"}], "VERSION": [{"Goldshell": "2.2"}]}, None)


def pools_reply(*entries: dict[str, object]) -> parse.Payload:
    return {"STATUS": [{"STATUS": "S"}], "POOLS": list(entries)}


def test_the_active_pool_is_the_stratum_active_one_and_empty_slots_are_skipped() -> None:
    pools = parse.parse_pools(
        pools_reply(
            {"POOL": 0, "URL": "stratum+tcp://a:3333", "User": "acct.w1", "Stratum Active": False, "Accepted": "12"},
            {"POOL": 1, "URL": "stratum+tcp://b:3333", "User": "acct.w1", "Stratum Active": True, "Rejected": 3},
            {"POOL": 2, "URL": "", "User": ""},
        )
    )
    assert [(p.slot, p.url, p.active, p.accepted, p.rejected) for p in pools] == [
        (0, "stratum+tcp://a:3333", False, 12, None),
        (1, "stratum+tcp://b:3333", True, None, 3),
    ]


def test_without_stratum_active_the_best_priority_alive_pool_is_active() -> None:
    pools = parse.parse_pools(
        pools_reply(
            {"POOL": 0, "URL": "stratum+tcp://a:1", "Status": "Dead", "Priority": 0},
            {"POOL": 1, "URL": "stratum+tcp://b:1", "Status": "Alive", "Priority": 2},
            {"POOL": 2, "URL": "stratum+tcp://c:1", "Status": "Alive", "Priority": 1},
        )
    )
    assert [p.active for p in pools] == [False, False, True]


def test_wrong_types_in_the_readings_are_bad_responses_not_zeros() -> None:
    for summary in ({"MHS 1m": [1]}, {"MHS 1m": "n/a"}, {"MHS 1m": -5}, {"Elapsed": {"v": 1}}, {"Power": True}):
        with pytest.raises(BadResponse):
            parse.whatsminer_readings(summary)
    with pytest.raises(BadResponse, match="temp_chip1"):
        parse.antminer_readings(None, {"temp_chip1": 75})
    assert parse.whatsminer_readings({}).empty


def test_a_window_longer_than_the_uptime_is_not_read() -> None:
    summary = {"MHS 15m": 90e6, "MHS 1m": 100e6, "Elapsed": 600}
    assert parse.whatsminer_readings(summary).hashrate_hs == pytest.approx(100e12)
    assert parse.whatsminer_readings({**summary, "Elapsed": 901}).hashrate_hs == pytest.approx(90e12)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
KEYS = st.sampled_from(["MHS 1m", "MHS 15m", "GHS 5s", "Elapsed", "Power", "Chip Temp Max", "fan1", "temp_chip1"])


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_never_raise_anything_but_bad_response(raw: bytes) -> None:
    with suppress(BadResponse):
        parse.decode(raw, "c")


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(KEYS, JSON, max_size=6), JSON)
def test_random_payloads_never_raise_anything_but_bad_response(entry: dict[str, object], pools: object) -> None:
    readers: list[Callable[[], object]] = [
        lambda: parse.antminer_readings(entry, entry),
        lambda: parse.braiins_readings(entry, [entry], [entry], entry),
        lambda: parse.whatsminer_readings(entry),
        lambda: parse.avalon_readings(entry, {k: str(v) for k, v in entry.items()}),
        lambda: parse.parse_pools({"STATUS": [{"STATUS": "S"}], "POOLS": pools}),
        lambda: parse.identify({"STATUS": [{"STATUS": "S"}], "VERSION": [entry]}, None),
    ]
    for read in readers:
        try:
            readings = read()
        except BadResponse:
            continue
        if isinstance(readings, parse.Readings) and readings.hashrate_hs is not None:
            assert readings.hashrate_hs >= 0


def test_addresses_ranges_and_names_expand_in_order() -> None:
    miners = miner_addresses(["10.0.0.1-10.0.0.3", "m.example:4029", ("10.0.0.9", "rack-9")], 4028)
    assert [(m.name, m.host, m.port) for m in miners] == [
        ("10.0.0.1", "10.0.0.1", 4028),
        ("10.0.0.2", "10.0.0.2", 4028),
        ("10.0.0.3", "10.0.0.3", 4028),
        ("m.example:4029", "m.example", 4029),
        ("rack-9", "10.0.0.9", 4028),
    ]
    assert split_host_port("[::1]:4030", 4028) == ("::1", 4030)


@pytest.mark.parametrize("bad", ["10.0.0.300", "host name", "10.0.0.1:0", "10.0.0.9-10.0.0.1", "-", "[::1]x"])
def test_bad_addresses_are_refused_with_the_reason(bad: str) -> None:
    with pytest.raises(ValueError, match=r"\S"):
        miner_addresses([bad], 4028)
