"""Simulated miners: real sockets on 127.0.0.1, every dialect's replies against the truth, quirks and faults."""

from __future__ import annotations

import json
import socket
import threading
import time
import tomllib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sim_support import FIXED_T, SCENARIOS

from simulator import truth as pool_truth
from simulator.local_servers import free_port_block
from simulator.miners import dialects
from simulator.miners.fleet import MinerFleet
from simulator.miners.truth import MinerTruth, miner_truth
from simulator.scenario import DIALECTS, MINER_FAULTS, Miner, Scenario, ScenarioError, load_scenario, parse_scenario

T = FIXED_T
FLEET_TOML = """
seed = 7
history_start = 2026-11-01
sats_per_phs_day = 45000
hang_seconds = 0.6
latency_seconds = 0.3

[[accounts]]
group_id = "g1"
pool = "braiins"
username = "acct"
secret = "tok"
[[accounts.workers]]
name = "w1"
nominal_ths = 200.0
[[accounts.workers]]
name = "w2"
nominal_ths = 110.0
variation = 0.1

[[accounts]]
group_id = "g1"
pool = "emcd"
username = "em"
secret = "key"
[[accounts.workers]]
name = "e1"
nominal_ths = 95.0

[[miners]]
group_id = "g1"
site = "s1"
name = "ant"
dialect = "antminer"
model = "Antminer S21"
pool_account = "braiins:acct"
worker = "w1"
pools = [{url = "stratum+tcp://btc.backup.example:3333", user = "acct.w1"}]

[[miners]]
group_id = "g1"
site = "s1"
name = "bos"
dialect = "braiins_os"
model = "Antminer S19j Pro"
pool_account = "emcd:em"
worker = "e1"

[[miners]]
group_id = "g1"
site = "s2"
name = "wm"
dialect = "whatsminer"
model = "M30S+_VE40"
nominal_ths = 100.0
power_w = 3400.0
pools = [
  {url = "stratum+tcp://btc.f2pool.com:1314", user = "acct.wm"},
  {url = "stratum+tcp://btc.dead.example:3333", user = "acct.wm", status = "Dead"},
]

[[miners]]
group_id = "g1"
site = "s2"
name = "av"
dialect = "avalon"
model = "AvalonMiner 1246"
nominal_ths = 90.0
active_slot = 1
pools = [
  {url = "stratum+tcp://btc.viabtc.io:3333", user = "acct.av"},
  {url = "stratum+tcp://ss.antpool.com:3333", user = "acct.av"},
]

[[miners]]
group_id = "g1"
site = "s2"
name = "off"
dialect = "antminer"
model = "Antminer S19"
nominal_ths = 95.0
online = false
pools = [{url = "stratum+tcp://ss.antpool.com:3333", user = "acct.off"}]
"""
FAULT_MINERS = "".join(
    f"""
[[miners]]
group_id = "g1"
site = "s3"
name = "f-{fault}"
dialect = "{dialect}"
model = "Model {fault}"
nominal_ths = 100.0
fault = "{fault}"
pools = [{{url = "stratum+tcp://btc.f2pool.com:1314", user = "acct.{fault}"}}]
"""
    for fault, dialect in zip(MINER_FAULTS, DIALECTS * 2, strict=False)
)
HEALTHY = ("ant", "bos", "wm", "av")
SECTIONS = {
    "version": "VERSION",
    "summary": "SUMMARY",
    "pools": "POOLS",
    "stats": "STATS",
    "estats": "STATS",
    "devs": "DEVS",
    "edevs": "DEVS",
    "devdetails": "DEVDETAILS",
    "temps": "TEMPS",
    "fans": "FANS",
    "tunerstatus": "TUNERSTATUS",
}


def _scenario(text: str) -> Scenario:
    return parse_scenario(tomllib.loads(text))


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    """Four healthy miners (one per dialect), one powered off, one per fault."""
    return _scenario(FLEET_TOML + FAULT_MINERS)


@pytest.fixture(scope="module")
def fleet(scenario: Scenario) -> Iterator[MinerFleet]:
    """The scenario's miners on free loopback ports at FIXED_T."""
    with MinerFleet(scenario, clock=lambda: T) as served:
        yield served


def _miner(scenario: Scenario, name: str) -> Miner:
    return next(m for m in scenario.miners if m.name == name)


def _truth(scenario: Scenario, name: str) -> MinerTruth:
    return miner_truth(scenario, _miner(scenario, name), T)


def ask_raw(address: tuple[str, int], request: bytes, *, half_close: bool = True, timeout: float = 3.0) -> bytes:
    """One request on one connection, read until the miner closes (reference §9.1)."""
    with socket.create_connection(address, timeout=timeout) as sock:
        sock.sendall(request)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def ask(fleet: MinerFleet, name: str, command: str, **kwargs: Any) -> bytes:
    """The raw reply of miner `name` to `{"command": command}`."""
    return ask_raw(fleet.addresses()[name], json.dumps({"command": command}).encode(), **kwargs)


def decode(raw: bytes) -> dict[str, Any]:
    """What a tolerant collector reads: the §9.8 repairs, then JSON."""
    value = json.loads(dialects.repair(raw.decode()))
    assert isinstance(value, dict)
    return value


def first(reply: dict[str, Any], section: str) -> dict[str, Any]:
    """A reply's first section entry, after checking STATUS S."""
    assert reply["STATUS"][0]["STATUS"] == "S", reply["STATUS"]
    entry = reply[section][0]
    assert isinstance(entry, dict)
    return entry


def module_pairs(reply: dict[str, Any]) -> dict[str, str]:
    """Avalon's MM ID0 `Key[value]` pairs."""
    text = reply["STATS"][0]["MM ID0"]
    pairs = {}
    for part in text.replace("]", "]\n").splitlines():
        key, _, value = part.strip().partition("[")
        pairs[key] = value.rstrip("]")
    return pairs


# --- replies -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", HEALTHY)
def test_every_dialect_answers_its_commands_with_the_right_envelope(fleet: MinerFleet, name: str) -> None:
    dialect = fleet.scenario.miners[HEALTHY.index(name)].dialect
    for command in dialects.COMMANDS[dialect]:
        reply = decode(ask(fleet, name, command))
        if command == "get_version":
            # Whatsminer API 2.x: STATUS a plain string, Msg an object.
            assert reply["STATUS"] == "S"
            assert reply["When"] == T
            assert set(reply["Msg"]) >= {"api_ver", "fw_ver"}
            continue
        status = reply["STATUS"][0]
        assert (status["STATUS"], status["When"], reply["id"]) == ("S", T, 1), command
        assert isinstance(reply[SECTIONS[command]], list), command
        assert reply[SECTIONS[command]], command


def test_antminer_values_equal_the_truth(scenario: Scenario, fleet: MinerFleet) -> None:
    truth = _truth(scenario, "ant")
    summary = first(decode(ask(fleet, "ant", "summary")), "SUMMARY")
    assert float(summary["GHS 5s"]) == round(truth.hashrate_5s_hs / 1e9, 2)
    assert summary["GHS av"] == round(truth.hashrate_avg_hs / 1e9, 2)
    assert summary["GHS 30m"] == round(truth.hashrate_30m_hs / 1e9, 2)
    assert (summary["Elapsed"], summary["Accepted"], summary["Rejected"]) == (
        truth.uptime_s,
        truth.accepted,
        truth.rejected,
    )
    stats = decode(ask(fleet, "ant", "stats"))["STATS"]
    assert stats[0]["Type"] == truth.model == "Antminer S21"
    block = stats[1]
    chips = [float(v) for k, v in block.items() if k.startswith("temp_chip") for v in v.split("-")]
    assert max(chips) == truth.temp_max_c
    fans = [v for k, v in block.items() if k[:3] == "fan" and k[3:].isdigit()]
    assert min(fans) == truth.fan_min_rpm
    assert block["fan_num"] == len(fans) == 4
    assert block["chain_rate4"] == ""
    assert block["temp_pcb4"] == "0-0-0-0"
    assert block["Elapsed"] == truth.uptime_s
    assert decode(ask(fleet, "ant", "version"))["VERSION"][0]["Type"] == "Antminer S21"
    assert truth.power_w is None  # stock Antminer reports no watts


def test_braiins_os_values_equal_the_truth(scenario: Scenario, fleet: MinerFleet) -> None:
    truth = _truth(scenario, "bos")
    summary = first(decode(ask(fleet, "bos", "summary")), "SUMMARY")
    for key, value in (
        ("MHS 1m", truth.hashrate_hs),
        ("MHS 5s", truth.hashrate_5s_hs),
        ("MHS 5m", truth.hashrate_5m_hs),
        ("MHS 15m", truth.hashrate_15m_hs),
        ("MHS av", truth.hashrate_avg_hs),
    ):
        assert summary[key] * 1e6 == pytest.approx(value, rel=1e-12), key
    assert summary["Elapsed"] == truth.uptime_s
    temps = decode(ask(fleet, "bos", "temps"))["TEMPS"]
    assert max(t["Chip"] for t in temps) == truth.temp_max_c
    fans = decode(ask(fleet, "bos", "fans"))["FANS"]
    assert min(f["RPM"] for f in fans) == truth.fan_min_rpm
    tuner = first(decode(ask(fleet, "bos", "tunerstatus")), "TUNERSTATUS")
    assert tuner["ApproximateMinerPowerConsumption"] == truth.power_w
    assert tuner["PowerLimit"] == truth.power_limit_w
    devs = decode(ask(fleet, "bos", "devs"))["DEVS"]
    assert sum(d["MHS 1m"] for d in devs) * 1e6 == pytest.approx(truth.hashrate_hs, rel=1e-9)
    assert sum(d["Nominal MHS"] for d in devs) * 1e6 == pytest.approx(95e12)
    assert decode(ask(fleet, "bos", "devdetails"))["DEVDETAILS"][0]["Model"] == truth.model


def test_whatsminer_values_equal_the_truth(scenario: Scenario, fleet: MinerFleet) -> None:
    truth = _truth(scenario, "wm")
    summary = first(decode(ask(fleet, "wm", "summary")), "SUMMARY")
    assert summary["MHS 1m"] == round(truth.hashrate_hs / 1e6, 2)
    assert summary["MHS 5s"] == round(truth.hashrate_5s_hs / 1e6, 2)
    assert summary["Power"] == truth.power_w
    assert summary["Chip Temp Max"] == truth.temp_max_c
    assert min(summary["Fan Speed In"], summary["Fan Speed Out"]) == truth.fan_min_rpm
    assert (summary["Elapsed"], summary["Uptime"]) == (truth.uptime_s, truth.system_uptime_s)
    assert summary["Uptime"] > summary["Elapsed"]
    devs = decode(ask(fleet, "wm", "edevs"))["DEVS"]
    assert max(d["Chip Temp Max"] for d in devs) == truth.temp_max_c
    assert decode(ask(fleet, "wm", "devdetails"))["DEVDETAILS"][0]["Model"] == "M30S+_VE40"
    pools = decode(ask(fleet, "wm", "pools"))["POOLS"]
    assert [p["POOL"] for p in pools] == [1, 2]  # btminer counts its pools from 1
    assert [p["Status"] for p in pools] == ["Alive", "Dead"]


def test_avalon_values_equal_the_truth(scenario: Scenario, fleet: MinerFleet) -> None:
    truth = _truth(scenario, "av")
    summary = first(decode(ask(fleet, "av", "summary")), "SUMMARY")
    assert summary["MHS 1m"] == round(truth.hashrate_hs / 1e6, 2)
    assert summary["MHS 30s"] == round(truth.hashrate_30s_hs / 1e6, 2)
    assert summary["Elapsed"] == truth.uptime_s
    pairs = module_pairs(decode(ask(fleet, "av", "estats")))
    assert float(pairs["TMax"]) == truth.temp_max_c
    assert float(pairs["WALLPOWER"]) == truth.power_w
    assert float(pairs["MPO"]) == truth.power_limit_w
    assert float(pairs["GHSspd"]) == round(truth.hashrate_5s_hs / 1e9, 2)
    assert min(int(v) for k, v in pairs.items() if k.startswith("Fan") and k[3:].isdigit()) == truth.fan_min_rpm
    assert int(pairs["Elapsed"]) == truth.uptime_s
    version = first(decode(ask(fleet, "av", "version")), "VERSION")
    assert (version["PROD"], version["MODEL"]) == ("AvalonMiner 1246", "1246")


def test_pools_equal_the_truth_and_linked_miners_use_the_pool(scenario: Scenario, fleet: MinerFleet) -> None:
    for name in HEALTHY:
        truth = _truth(scenario, name)
        pools = decode(ask(fleet, name, "pools"))["POOLS"]
        assert len(pools) == len(truth.pools)
        for entry, slot in zip(pools, truth.pools, strict=True):
            active = entry["Stratum Active"]
            assert (entry["POOL"], entry["URL"], entry["User"]) == (slot.slot, slot.url, slot.user), name
            assert (active, entry["Accepted"], entry["Rejected"]) == (slot.active, slot.accepted, slot.rejected)
    assert [s.active for s in _truth(scenario, "av").pools] == [False, True]
    ant = _truth(scenario, "ant").pools[0]
    assert (ant.url, ant.user) == ("stratum+tcp://stratum.braiins.com:3333", "acct.w1")
    assert _truth(scenario, "bos").pools[0].url == "stratum+tcp://gate.emcd.network:3333"


def test_linked_miner_hashes_its_workers_curve(scenario: Scenario) -> None:
    account = scenario.account("braiins", "acct")
    worker = account.workers[0]
    truth = _truth(scenario, "ant")
    assert truth.hashrate_5m_hs == pool_truth.worker_hashrate(scenario, account, worker, T, 300)
    assert truth.hashrate_hs == pool_truth.worker_hashrate(scenario, account, worker, T, 60)
    assert truth.pools[0].last_share_ts == pool_truth.last_share_ts(scenario, account, worker, T)
    assert _miner(scenario, "ant").nominal_ths == 200.0


def test_truth_is_deterministic_and_counters_grow(scenario: Scenario) -> None:
    miner = _miner(scenario, "wm")
    assert miner_truth(scenario, miner, T) == miner_truth(scenario, miner, T)
    earlier, later = miner_truth(scenario, miner, T - 3600), miner_truth(scenario, miner, T)
    assert later.accepted > earlier.accepted
    assert later.rejected >= earlier.rejected
    assert later.uptime_s == (earlier.uptime_s or 0) + 3600
    off = miner_truth(scenario, _miner(scenario, "off"), T)
    assert (off.online, off.hashrate_hs, off.pools) == (False, 0.0, ())


# --- quirks and requests -------------------------------------------------------------------------------


def test_antminer_quirks_are_in_the_bytes(fleet: MinerFleet) -> None:
    stats = ask(fleet, "ant", "stats")
    assert stats.endswith(b"\x00")
    assert b'"STATS":[{"BMMiner"' in stats
    assert b"}{" in stats
    with pytest.raises(json.JSONDecodeError, match="Expecting ','"):
        json.loads(stats.rstrip(b"\x00"))  # only a §9.8-repairing client can read it
    pools = ask(fleet, "ant", "pools")
    assert b'"Last Share Time":"0:00:' in pools
    assert b'"Diff":"' in pools
    assert b'K","LastDiff"' in pools
    assert b'"Has Stratum":true' in pools
    assert b'"GHS 5s":"' in ask(fleet, "ant", "summary")
    multi = decode(ask(fleet, "ant", "summary+pools"))
    assert (multi["STATUS"][0]["STATUS"], multi["STATUS"][0]["Msg"]) == ("E", "Invalid command")


def test_other_dialect_quirks_are_in_the_bytes(fleet: MinerFleet) -> None:
    summary = ask(fleet, "wm", "summary")
    assert b',}],"id":1}' in summary
    assert not summary.endswith(b"\x00")
    assert b'"Has Stratum":1' in ask(fleet, "wm", "pools")
    version = decode(ask(fleet, "wm", "version"))
    assert version["STATUS"][0]["STATUS"] == "E"
    estats = ask(fleet, "av", "estats")
    assert estats.endswith(b"\x00")
    assert estats.count(b'"temp1":') == 3
    top = json.loads(estats.rstrip(b"\x00"), object_pairs_hook=lambda pairs: pairs)
    module = dict(top)["STATS"][0]
    assert [key for key, _ in module].count("temp1") == 3  # the same key, once per board
    assert b"]BOOTBY[" in estats
    multi = decode(ask(fleet, "bos", "summary+pools"))
    assert set(multi) == {"summary", "pools"}
    assert first(multi["pools"][0], "POOLS")["User"] == "em.e1"
    assert not ask(fleet, "bos", "summary").endswith(b"\x00")


@pytest.mark.parametrize("name", HEALTHY)
def test_unknown_command_gets_status_e(fleet: MinerFleet, name: str) -> None:
    status = decode(ask(fleet, name, "reboot_everything"))["STATUS"][0]
    assert (status["STATUS"], status["Code"], status["Msg"], status["When"]) == ("E", 14, "Invalid command", T)


def test_request_forms(fleet: MinerFleet) -> None:
    address = fleet.addresses()["ant"]
    plain = decode(ask_raw(address, b"summary|"))
    assert first(plain, "SUMMARY")["Elapsed"] > 0
    # A complete JSON request is answered without waiting for the client to half-close.
    started = time.monotonic()
    assert first(decode(ask_raw(address, b'{"command":"pools","parameter":"0"}', half_close=False)), "POOLS")
    assert time.monotonic() - started < 1.0
    assert decode(ask_raw(address, b'{"command": '))["STATUS"][0]["Msg"] == "Invalid JSON"
    cmd = decode(ask_raw(fleet.addresses()["wm"], b'{"cmd":"get_version"}'))
    assert cmd["Code"] == 131


# --- faults --------------------------------------------------------------------------------------------


def test_offline_and_refused_miners_refuse_connections(fleet: MinerFleet) -> None:
    for name in ("off", "f-refused"):
        with pytest.raises(ConnectionRefusedError):
            ask(fleet, name, "summary")


def test_hang_sends_nothing(fleet: MinerFleet) -> None:
    with socket.create_connection(fleet.addresses()["f-hang"], timeout=0.3) as sock:
        sock.sendall(b'{"command":"summary"}')
        with pytest.raises(TimeoutError):
            sock.recv(1024)
        sock.settimeout(2.0)
        assert sock.recv(1024) == b""  # closed unanswered after hang_seconds


def test_latency_answers_late_but_right(scenario: Scenario, fleet: MinerFleet) -> None:
    started = time.monotonic()
    summary = first(decode(ask(fleet, "f-latency", "summary")), "SUMMARY")
    assert time.monotonic() - started >= scenario.latency_seconds
    assert summary["Elapsed"] == _truth(scenario, "f-latency").uptime_s


@pytest.mark.parametrize("fault", ["malformed", "truncated"])
def test_broken_replies_stay_broken_after_the_repairs(fleet: MinerFleet, fault: str) -> None:
    for command in ("summary", "pools", "version"):
        raw = ask(fleet, f"f-{fault}", command)
        assert raw
        assert not dialects.parses_after_repair(raw), (fault, command, raw[-60:])


@pytest.mark.parametrize("name", HEALTHY)
def test_wrong_types_and_missing_fields(fleet: MinerFleet, name: str) -> None:
    dialect = fleet.scenario.miners[HEALTHY.index(name)].dialect
    command = {"antminer": "stats", "braiins_os": "summary", "whatsminer": "summary", "avalon": "summary"}[dialect]
    healthy = decode(ask(fleet, name, command))[SECTIONS[command]][-1]  # antminer: STATS[1], past the version
    read = [key for key in healthy if dialects.is_read_key(key)]
    assert len(read) >= 3
    try:
        fleet.set_fault(name, "wrong_types")
        spoiled = decode(ask(fleet, name, command))[SECTIONS[command]][-1]
        for key in read:
            value = spoiled[key]
            assert not isinstance(value, int | float) or isinstance(value, bool), (name, key, value)
            if isinstance(value, str):
                with pytest.raises(ValueError, match="could not convert"):
                    float(value.split("-")[0])
        fleet.set_fault(name, "missing_fields")
        gone = decode(ask(fleet, name, command))[SECTIONS[command]][-1]
        assert not set(read) & set(gone)
        assert decode(ask(fleet, name, "pools"))["POOLS"][0].keys().isdisjoint({"Accepted", "Rejected"})
        if dialect == "avalon":
            assert "TMax" not in module_pairs(decode(ask(fleet, name, "estats")))
    finally:
        fleet.reset_faults()
    assert "n/a" not in ask(fleet, name, command).decode()


def test_set_fault_and_reset(fleet: MinerFleet) -> None:
    before = fleet.request_counts()["wm"]
    fleet.set_fault("wm", "refused")
    try:
        with pytest.raises(ConnectionRefusedError):
            ask(fleet, "wm", "summary")
        fleet.set_fault("f-refused", None)  # healthy while overridden
        assert first(decode(ask(fleet, "f-refused", "summary")), "SUMMARY")
    finally:
        fleet.reset_faults()
    assert first(decode(ask(fleet, "wm", "summary")), "SUMMARY")
    with pytest.raises(ConnectionRefusedError):
        ask(fleet, "f-refused", "summary")
    assert fleet.request_counts()["wm"] == before + 1
    with pytest.raises(KeyError):
        fleet.set_fault("nope", "hang")
    with pytest.raises(ValueError, match="not a miner fault"):
        fleet.set_fault("wm", "auth")  # type: ignore[arg-type]


def test_scheduled_fault_follows_the_clock() -> None:
    text = FLEET_TOML.replace(
        'name = "wm"', f'name = "wm"\nfault = "refused"\nfault_from = {T + 10}\nfault_until = {T + 20}'
    )
    now = [float(T)]
    with MinerFleet(_scenario(text), clock=lambda: now[0]) as fleet:
        assert ask(fleet, "wm", "summary")
        now[0] = T + 10

        def refused() -> bool:
            try:
                ask(fleet, "wm", "summary")
            except ConnectionRefusedError:
                return True
            return False

        assert _eventually(refused)
        now[0] = T + 20
        assert _eventually(lambda: not refused())


def _eventually(check: Any, timeout: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


def test_a_fleet_of_300_answers_concurrently_and_stops_promptly() -> None:
    text = FLEET_TOML.split("[[miners]]", maxsplit=1)[0] + (
        '[[miners]]\ngroup_id = "g1"\nsite = "big"\nname = "s21-{n:03}"\ncount = 300\ndialect = "antminer"\n'
        'model = "Antminer S21"\nnominal_ths = 200.0\npools = [{url = "stratum+tcp://ss.antpool.com:3333", '
        'user = "big.{n:03}"}]\n'
    )
    scenario = _scenario(text)
    assert len(scenario.miners) == 300
    assert scenario.miners[41].pools[0].user == "big.042"
    fleet = MinerFleet(scenario, clock=lambda: T)
    fleet.start()
    try:
        addresses = fleet.addresses()
        assert len({port for _, port in addresses.values()}) == 300
        with ThreadPoolExecutor(max_workers=100) as pool:
            replies = list(pool.map(lambda name: ask(fleet, name, "summary"), addresses))
        assert all(first(decode(r), "SUMMARY")["Elapsed"] > 0 for r in replies)
        assert set(fleet.request_counts().values()) == {1}
    finally:
        started = time.monotonic()
        fleet.stop()
        assert time.monotonic() - started < 2.0
    assert threading.active_count() < 50


def test_base_port_assigns_consecutive_ports(scenario: Scenario) -> None:
    base = free_port_block(len(scenario.miners))
    fleet = MinerFleet(scenario, base_port=base)
    try:
        assert [port for _, port in fleet.addresses().values()] == list(range(base, base + len(scenario.miners)))
    finally:
        fleet.stop()


def test_only_loopback(scenario: Scenario) -> None:
    for host in ("0.0.0.0", "10.0.0.5", "example.com", "::1"):
        with pytest.raises(ValueError, match="loopback"):
            MinerFleet(scenario, host=host)


# --- scenario ------------------------------------------------------------------------------------------


def test_shipped_miners_scenario_has_every_dialect_and_fault() -> None:
    scenario = load_scenario(SCENARIOS / "miners.toml")
    assert {m.dialect for m in scenario.miners} == set(DIALECTS)
    assert {m.fault for m in scenario.miners} - {None} == set(MINER_FAULTS)
    assert {m.link[0] for m in scenario.miners if m.link} >= {"braiins", "emcd"}
    assert any(m.offline_from is not None for m in scenario.miners)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (('model = "Antminer S21"', 'model = "Antminer S21"\ncolour = "red"'), r"miners\[0\]\.colour: unknown key"),
        (('dialect = "avalon"', 'dialect = "innosilicon"'), r"miners\[3\]\.dialect: expected one of"),
        (('pool_account = "braiins:acct"', 'pool_account = "braiins:ghost"'), r"miners\[0\]\.pool_account: no account"),
        (('pool_account = "braiins:acct"', 'pool_account = "acct"'), r"miners\[0\]\.pool_account: expected"),
        (('worker = "w1"', 'worker = "w9"'), r"miners\[0\]\.worker: account 'braiins:acct' has no worker 'w9'"),
        (('name = "bos"', 'name = "ant"'), r"miners\[1\]\.name: duplicate miner name 'ant'"),
        (('worker = "e1"', 'worker = "e1"\nnominal_ths = 5.0'), r"miners\[1\]\.nominal_ths: a linked miner"),
        (('name = "wm"', 'name = "wm"\nfault = "auth"'), r"miners\[2\]\.fault: expected one of"),
        (("active_slot = 1", "active_slot = 2"), r"miners\[3\]\.active_slot: the miner has 2"),
        (
            (
                'nominal_ths = 95.0\nonline = false\npools = [{url = "stratum+tcp://ss.antpool.com:3333", '
                'user = "acct.off"}]',
                "nominal_ths = 95.0",
            ),
            r"miners\[4\]\.pools: a miner without pool_account",
        ),
    ],
)
def test_scenario_errors_name_the_key(edit: tuple[str, str], message: str) -> None:
    old, new = edit
    assert old in FLEET_TOML
    with pytest.raises(ScenarioError, match=message):
        _scenario(FLEET_TOML.replace(old, new, 1))


def test_count_expansion_errors() -> None:
    base = FLEET_TOML.split("[[miners]]", maxsplit=1)[0]
    template = (
        '[[miners]]\ngroup_id = "g1"\nsite = "s"\nname = "{name}"\ncount = 2\ndialect = "antminer"\nmodel = "m"\n'
        'pool_account = "braiins:acct"\nworker = "{worker}"\n'
    )
    with pytest.raises(ScenarioError, match=r"miners\[0\]\.name: duplicate miner name 'same'"):
        _scenario(base + template.format(name="same", worker="w{n}"))
    with pytest.raises(ScenarioError, match=r"miners\[0\]\.worker: .* is already hashed by miner 'm-1'"):
        _scenario(base + template.format(name="m-{n}", worker="w1"))
    with pytest.raises(ScenarioError, match=r"miners\[0\]\.name: not a format pattern"):
        _scenario(base + template.format(name="m-{x}", worker="w{n}"))
    scenario = _scenario(base + template.format(name="m-{n}", worker="w{n}"))
    assert [(m.name, m.link) for m in scenario.miners] == [
        ("m-1", ("braiins", "acct", "w1")),
        ("m-2", ("braiins", "acct", "w2")),
    ]
    assert scenario.miners[1].variation == 0.1


def test_scenarios_without_miners_still_load() -> None:
    scenario = load_scenario(SCENARIOS / "faults.toml")
    assert scenario.miners == ()
    assert scenario.latency_seconds > 0
