"""Pure renderers: a miner's truth at one instant → the reply bytes its firmware sends for one request.

Four dialects of the cgminer-family API (reference §9), shaped after real captures (tests/golden/cgminer,
pyasic fixtures, the BOSminer API docs), each with its firmware's quirks (§9.8) written literally into the bytes:
- antminer: stock bmminer fork. GH/s, `"GHS 5s"` a string; `}{` between the STATS objects; pools with
  `"Last Share Time":"0:00:05"`, `"Diff":"9.64K"`, `"Has Stratum":true`; multi-command rejected; NUL-terminated.
- braiins_os: BOSminer+. MH/s at full float precision; `temps`, `fans`, `tunerstatus` (power); multi-command.
- whatsminer: btminer. MH/s, power, temperatures and fans in `summary` (which ends in `,}`); `edevs` under DEVS;
  `version` unsupported; `get_version` in the API-2 envelope; POOL numbered from 1, `"Has Stratum":1`.
- avalon: Canaan cgminer 4.11.1. `estats` STATS[0]["MM ID0"] = `Key[value]` pairs; `temp1` repeated as a JSON key;
  NUL-terminated.
Nothing here touches a socket or a clock: `render(truth, request, mode)` is a function of its arguments.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from simulator.miners.truth import MinerTruth, PoolSlotTruth
from simulator.scenario import Dialect

Mode = Literal["normal", "wrong_types", "missing_fields"]
RequestError = Literal["invalid_json", "missing_command"]

# Every command each dialect answers (multi-command `a+b` aside); anything else gets STATUS E, Code 14.
COMMANDS: dict[Dialect, tuple[str, ...]] = {
    "antminer": ("version", "summary", "pools", "stats"),
    "braiins_os": ("version", "summary", "pools", "devs", "devdetails", "temps", "fans", "tunerstatus"),
    "whatsminer": ("summary", "pools", "edevs", "devdetails", "get_version"),
    "avalon": ("version", "summary", "pools", "estats", "stats"),
}
# Dialects whose firmware accepts `{"command":"summary+pools"}`; stock Antminer answers "Invalid command".
MULTI_COMMAND: frozenset[Dialect] = frozenset({"braiins_os", "whatsminer", "avalon"})
NUL_TERMINATED: frozenset[Dialect] = frozenset({"antminer", "avalon"})
DESCRIPTION: dict[Dialect, str] = {
    "antminer": "bmminer 1.0.0",
    "braiins_os": "BOSminer+ 0.2.0-36c56a9363",
    "whatsminer": "btminer",
    "avalon": "cgminer 4.11.1",
}
# The fields a collector reads as numbers (hashrate, temperatures, fans, power, uptime, share counters):
# the `wrong_types` fault gives them non-numeric values, `missing_fields` drops them.
READ_KEYS = frozenset(
    {
        "GHS 5s",
        "GHS av",
        "GHS 30m",
        "rate_30m",
        "total rate",
        "MHS av",
        "MHS 5s",
        "MHS 30s",
        "MHS 1m",
        "MHS 5m",
        "MHS 15m",
        "HS RT",
        "Nominal MHS",
        "Elapsed",
        "Uptime",
        "Accepted",
        "Rejected",
        "Power",
        "ApproximateMinerPowerConsumption",
        "Temperature",
        "Env Temp",
        "Chip Temp Min",
        "Chip Temp Max",
        "Chip Temp Avg",
        "Board",
        "Chip",
        "RPM",
        "Fan Speed In",
        "Fan Speed Out",
    }
)
READ_KEY_PATTERN = re.compile(r"(?:fan|temp|temp2_|temp_chip|temp_pcb|temp_pic|chain_rate)\d+")
# The same inside Avalon's "MM ID0" bracket string.
ESTATS_READ_KEYS = frozenset(
    {"Elapsed", "Temp", "TMax", "TAvg", "GHSspd", "GHSavg", "WALLPOWER", "MGHS", "MTmax", "MTavg"}
)
ESTATS_READ_PATTERN = re.compile(r"Fan\d+")
_WRONG_VALUES: tuple[Callable[[Any], Any], ...] = (lambda _: "n/a", lambda v: [v], lambda v: {"value": v})
_GH = 1e9
_MH = 1e6


# --- requests -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Request:
    """One API request: `command` may join several with `+`; `error` when the request itself is bad."""

    command: str
    parameter: str | None = None
    error: RequestError | None = None

    @property
    def commands(self) -> tuple[str, ...]:
        """The individual commands of a multi-command request (one for a plain request)."""
        return tuple(part.strip() for part in self.command.split("+"))


def parse_request(data: bytes, *, eof: bool) -> Request | None:
    """The request in `data` if it is complete, else None (keep reading); at `eof`, whatever arrived.

    JSON (`{"command":"summary","parameter":"0"}`, also btminer's `{"cmd":"get_version"}`) is complete once it
    parses; the legacy plain text `summary|0` once it has a `|` or a newline.
    """
    text = data.decode("utf-8", errors="replace").strip("\x00 \t\r\n")
    if not text:
        return None if not eof else Request("", error="missing_command")
    if text.startswith("{"):
        try:
            value = json.loads(text)
        except ValueError:
            return Request("", error="invalid_json") if eof else None
        if not isinstance(value, dict):
            return Request("", error="invalid_json")
        command = value.get("command", value.get("cmd"))
        if not isinstance(command, str) or not command.strip():
            return Request("", error="missing_command")
        parameter = value.get("parameter", value.get("param"))
        return Request(command.strip(), None if parameter is None else str(parameter))
    if "|" in text or "\n" in text or eof:
        line = text.splitlines()[0]
        command, separator, parameter = line.partition("|")
        return Request(command.strip(), parameter if separator else None)
    return None


# --- JSON text, with the freedoms firmware takes ----------------------------------------------------------


class Pairs(list[tuple[str, Any]]):
    """A JSON object written key by key, so a key may repeat (Avalon's `temp1`)."""


def encode(value: Any) -> str:
    """Compact JSON as the firmware writes it; a Pairs object keeps repeated keys."""
    if isinstance(value, Pairs):
        return "{" + ",".join(f"{json.dumps(k)}:{encode(v)}" for k, v in value) + "}"
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{encode(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(encode(v) for v in value) + "]"
    return json.dumps(value)


def is_read_key(key: str) -> bool:
    """Whether a reply key is one the data faults spoil (READ_KEYS, or fanN/tempN/... by READ_KEY_PATTERN)."""
    return key in READ_KEYS or READ_KEY_PATTERN.fullmatch(key) is not None


class _Spoiler:
    """Applies a fault mode to every read field of a reply, cycling through the wrong types."""

    def __init__(self, mode: Mode) -> None:
        self.mode = mode
        self.count = 0

    def wrong(self, value: Any) -> Any:
        self.count += 1
        return _WRONG_VALUES[self.count % len(_WRONG_VALUES)](value)

    def apply(self, value: Any) -> Any:
        if self.mode == "normal":
            return value
        if isinstance(value, dict | Pairs):
            items = value.items() if isinstance(value, dict) else list(value)
            kept: list[tuple[str, Any]] = []
            for key, item in items:
                if is_read_key(key):
                    if self.mode == "missing_fields":
                        continue
                    kept.append((key, self.wrong(item)))
                else:
                    kept.append((key, self.apply(item)))
            return Pairs(kept) if isinstance(value, Pairs) else dict(kept)
        if isinstance(value, list):
            return [self.apply(item) for item in value]
        return value


# --- envelopes ------------------------------------------------------------------------------------------


def _status(truth: MinerTruth, code: int, message: str, status: str = "S") -> list[dict[str, Any]]:
    return [
        {"STATUS": status, "When": truth.t, "Code": code, "Msg": message, "Description": DESCRIPTION[truth.dialect]}
    ]


def _reply(truth: MinerTruth, mode: Mode, code: int, message: str, section: str, entries: list[Any]) -> str:
    body = {"STATUS": _status(truth, code, message), section: entries, "id": 1}
    return encode(_Spoiler(mode).apply(body))


def error_reply(truth: MinerTruth, code: int = 14, message: str = "Invalid command") -> str:
    """cgminer's error envelope: STATUS E with the firmware's code and message."""
    return encode({"STATUS": _status(truth, code, message, "E"), "id": 1})


# --- shared counters ------------------------------------------------------------------------------------


def _gh(hs: float) -> float:
    return round(hs / _GH, 2)


def _mh(hs: float) -> float:
    return round(hs / _MH, 2)


def _diff1(truth: MinerTruth) -> float:
    return truth.total_hashes / 2**32


def _active(truth: MinerTruth) -> PoolSlotTruth | None:
    return next((slot for slot in truth.pools if slot.active), None)


def _counters(truth: MinerTruth) -> dict[str, Any]:
    """The cgminer summary counters every dialect shares, all derived from the truth."""
    elapsed = max(truth.uptime_s or 0, 1)
    diff1 = _diff1(truth)
    active = _active(truth)
    difficulty = active.difficulty if active else 0
    submitted = truth.accepted + truth.rejected
    rejected_pct = round(100 * truth.rejected / submitted, 4) if submitted else 0.0
    return {
        "Found Blocks": 0,
        "Getworks": elapsed // 30 + 1,
        "Accepted": truth.accepted,
        "Rejected": truth.rejected,
        "Hardware Errors": int(diff1 * 2e-6),
        "Utility": round(truth.accepted * 60 / elapsed, 2),
        "Discarded": elapsed // 2,
        "Stale": 0,
        "Get Failures": 0,
        "Local Work": int(diff1 / 4096),
        "Remote Failures": 0,
        "Network Blocks": elapsed // 600,
        "Total MH": float(round(truth.total_hashes / _MH)),
        "Work Utility": round(diff1 * 60 / elapsed, 2),
        "Difficulty Accepted": float(truth.accepted * difficulty),
        "Difficulty Rejected": float(truth.rejected * difficulty),
        "Difficulty Stale": 0.0,
        "Best Share": difficulty * 1873,
        "Device Hardware%": 0.0002,
        "Device Rejected%": rejected_pct,
        "Pool Rejected%": rejected_pct,
        "Pool Stale%": 0.0,
        "Last getwork": truth.t,
    }


def _pool_common(slot: PoolSlotTruth, elapsed: int) -> dict[str, Any]:
    return {
        "POOL": slot.slot,
        "URL": slot.url,
        "Status": slot.status,
        "Priority": slot.index,
        "Quota": 1,
        "Long Poll": "N",
        "Getworks": elapsed // 30 + 1 if slot.active else 1,
        "Accepted": slot.accepted,
        "Rejected": slot.rejected,
        "Works": slot.accepted * 64,
        "Discarded": elapsed // 2 if slot.active else 0,
        "Stale": 0,
        "Get Failures": 0,
        "Remote Failures": 0,
        "User": slot.user,
    }


def _pool_tail(slot: PoolSlotTruth) -> dict[str, Any]:
    return {
        "Difficulty Accepted": float(slot.accepted * slot.difficulty),
        "Difficulty Rejected": float(slot.rejected * slot.difficulty),
        "Difficulty Stale": 0.0,
        "Last Share Difficulty": float(slot.difficulty if slot.active else 0),
        "Work Difficulty": float(slot.difficulty),
    }


def _stratum_host(url: str) -> str:
    return url.split("://", 1)[-1]


def _rejected_pct(slot: PoolSlotTruth) -> float:
    submitted = slot.accepted + slot.rejected
    return round(100 * slot.rejected / submitted, 4) if submitted else 0.0


def _board_share(truth: MinerTruth, index: int) -> float:
    return truth.boards[index].hashrate_hs / truth.hashrate_hs if truth.hashrate_hs else 1 / max(len(truth.boards), 1)


# --- antminer (stock bmminer fork) ----------------------------------------------------------------------


def _duration(seconds: int) -> str:
    """bmminer's `Last Share Time`: time since the share as H:MM:SS."""
    hours, rest = divmod(max(seconds, 0), 3600)
    return f"{hours}:{rest // 60:02}:{rest % 60:02}"


def _suffix(value: int) -> str:
    """bmminer's `Diff`: three significant digits and a K/M/G suffix ("9.64K")."""
    for suffix, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if value >= scale:
            return f"{value / scale:.3g}{suffix}"
    return str(value)


def _antminer_version_block(truth: MinerTruth) -> dict[str, Any]:
    return {
        "BMMiner": "1.0.0",
        "API": "3.1",
        "Miner": "49.0.1.3",
        "CompileTime": "Sat May 15 21:17:18 CST 2021",
        "Type": truth.model,
    }


def _antminer_version(truth: MinerTruth, mode: Mode) -> str:
    return _reply(truth, mode, 22, "BMMiner versions", "VERSION", [_antminer_version_block(truth)])


def _antminer_summary(truth: MinerTruth, mode: Mode) -> str:
    entry = {
        "Elapsed": truth.uptime_s,
        "GHS 5s": f"{truth.hashrate_5s_hs / _GH:.2f}",  # a string on this firmware (reference §9.4)
        "GHS av": _gh(truth.hashrate_avg_hs),
        "GHS 30m": _gh(truth.hashrate_30m_hs),
        **_counters(truth),
    }
    return _reply(truth, mode, 11, "Summary", "SUMMARY", [entry])


def _antminer_pools(truth: MinerTruth, mode: Mode) -> str:
    elapsed = truth.uptime_s or 0
    entries = []
    for slot in truth.pools:
        entries.append(
            {
                **_pool_common(slot, elapsed),
                "Last Share Time": _duration(truth.t - slot.last_share_ts) if slot.last_share_ts else "0",
                "Diff": _suffix(slot.difficulty),
                "LastDiff": slot.difficulty if slot.active else 0,
                "Diff1 Shares": 0,
                "Proxy Type": "",
                "Proxy": "",
                **_pool_tail(slot),
                "Has Stratum": True,
                "Asic Boost": True,
                "Stratum Active": slot.active,
                "Stratum URL": _stratum_host(slot.url).rsplit(":", 1)[0],
                "Has GBT": False,
                "Best Share": slot.difficulty * 1873 if slot.active else 0,
                "Pool Rejected%": _rejected_pct(slot),
                "Pool Stale%": 0.0,
            }
        )
    return _reply(truth, mode, 7, f"{len(entries)} Pool(s)", "POOLS", entries)


def _antminer_stats_block(truth: MinerTruth) -> dict[str, Any]:
    block: dict[str, Any] = {
        "STATS": 0,
        "ID": "BTM_SOC0",
        "Elapsed": truth.uptime_s,
        "Calls": 0,
        "Wait": 0,
        "Max": 0,
        "Min": 99999999,
        "GHS 5s": _gh(truth.hashrate_5s_hs),
        "GHS av": _gh(truth.hashrate_avg_hs),
        "rate_30m": _gh(truth.hashrate_30m_hs),
        "Mode": 2,
        "miner_count": len(truth.boards),
        "frequency": 525,
        "fan_num": len(truth.fan_rpms),
    }
    for index, rpm in enumerate(truth.fan_rpms, start=1):
        block[f"fan{index}"] = rpm
    block["temp_num"] = len(truth.boards)
    for board in truth.boards:
        block[f"temp{board.index + 1}"] = int(max(board.pcb_temps_c))
        block[f"temp2_{board.index + 1}"] = int(max(board.chip_temps_c))
    # Four chain slots, the last one empty, as on a three-board S19 (reference §9.7, §11 checklist).
    chains = range(1, len(truth.boards) + 2)
    boards = {board.index + 1: board for board in truth.boards}

    def sensors(index: int, values: Callable[[Any], Iterable[float]], offset: int = 0) -> str:
        board = boards.get(index)
        return "-".join(str(int(v) - offset) for v in values(board)) if board else "0-0-0-0"

    for index in chains:
        block[f"temp_pcb{index}"] = sensors(index, lambda b: b.pcb_temps_c)
    for index in chains:
        block[f"temp_chip{index}"] = sensors(index, lambda b: b.chip_temps_c)
    for index in chains:
        block[f"temp_pic{index}"] = sensors(index, lambda b: b.pcb_temps_c, offset=10)
    block.update(
        {
            "total_rateideal": _gh(truth.nominal_hs),
            "rate_unit": "GH",
            "total_freqavg": 525,
            "total_acn": sum(b.chips for b in truth.boards),
            "total rate": _gh(truth.hashrate_avg_hs),
            "temp_max": 0,  # always 0 on this firmware (the real capture too): read the sensors, not this
            "no_matching_work": int(_diff1(truth) * 1e-7),
        }
    )
    for index in chains:
        block[f"chain_acn{index}"] = boards[index].chips if index in boards else 0
    for index in chains:
        block[f"chain_acs{index}"] = " " + " ".join(["ooo"] * 42) if index in boards else ""
    for index in chains:
        block[f"chain_hw{index}"] = int(_diff1(truth) * 6e-7) if index in boards else 0
    for index in chains:
        block[f"chain_rate{index}"] = f"{boards[index].hashrate_5s_hs / _GH:.2f}" if index in boards else ""
    for index in chains:
        block[f"freq{index}"] = 525 if index in boards else 0
    block["miner_version"] = "49.0.1.3"
    block["miner_id"] = truth.device_id
    return block


def _antminer_stats(truth: MinerTruth, mode: Mode) -> str:
    spoiler = _Spoiler(mode)
    version = encode(spoiler.apply(_antminer_version_block(truth)))
    stats = encode(spoiler.apply(_antminer_stats_block(truth)))
    status = encode(_status(truth, 70, "CGMiner stats"))
    # bmminer writes the STATS objects without a comma between them (reference §9.8 item 4).
    return '{"STATUS":' + status + ',"STATS":[' + version + stats + '],"id":1}'


# --- braiins_os (BOSminer+) -----------------------------------------------------------------------------


def _bos_version(truth: MinerTruth, mode: Mode) -> str:
    return _reply(truth, mode, 22, "BOSminer+ versions", "VERSION", [{"API": "3.7", "BOSminer+": "0.2.0-36c56a9363"}])


def _bos_summary(truth: MinerTruth, mode: Mode) -> str:
    entry = {
        **_counters(truth),
        "Elapsed": truth.uptime_s,
        # Full float precision, as BOSminer prints them.
        "MHS 15m": truth.hashrate_15m_hs / _MH,
        "MHS 1m": truth.hashrate_hs / _MH,
        "MHS 5m": truth.hashrate_5m_hs / _MH,
        "MHS 5s": truth.hashrate_5s_hs / _MH,
        "MHS av": truth.hashrate_avg_hs / _MH,
    }
    return _reply(truth, mode, 11, "Summary", "SUMMARY", [dict(sorted(entry.items()))])


def _bos_pools(truth: MinerTruth, mode: Mode) -> str:
    elapsed = truth.uptime_s or 0
    entries = []
    for slot in truth.pools:
        entry = {
            **_pool_common(slot, elapsed),
            **_pool_tail(slot),
            "AsicBoost": True,
            "Bad Work": 0,
            "Best Share": slot.difficulty * 1873 if slot.active else 0,
            "Current Block Height": 0,
            "Current Block Version": 536870912,
            "Diff1 Shares": 0,
            "Has GBT": False,
            "Has Stratum": True,
            "Has Vmask": True,
            "Last Share Time": slot.last_share_ts,
            "Pool Rejected%": _rejected_pct(slot),
            "Pool Stale%": 0.0,
            "Proxy": "",
            "Proxy Type": "",
            "Stratum Active": slot.active,
            "Stratum Difficulty": float(slot.difficulty),
            "Stratum URL": _stratum_host(slot.url),
        }
        entries.append(dict(sorted(entry.items())))
    return _reply(truth, mode, 7, f"{len(entries)} Pool(s)", "POOLS", entries)


def _bos_devs(truth: MinerTruth, mode: Mode) -> str:
    entries = []
    for board in truth.boards:
        share = _board_share(truth, board.index)
        entry = {
            "ASC": board.index,
            "Accepted": 0,
            "Device Elapsed": truth.uptime_s,
            "Enabled": "Y",
            "Hardware Errors": 0,
            "ID": board.index + 1,
            "MHS 15m": truth.hashrate_15m_hs * share / _MH,
            "MHS 1m": board.hashrate_hs / _MH,
            "MHS 5m": truth.hashrate_5m_hs * share / _MH,
            "MHS 5s": board.hashrate_5s_hs / _MH,
            "MHS av": truth.hashrate_avg_hs * share / _MH,
            "Name": "",
            "Nominal MHS": board.nominal_hs / _MH,
            "Rejected": 0,
            "Status": "Alive",
            "Temperature": max(board.chip_temps_c),
        }
        entries.append(entry)
    return _reply(truth, mode, 9, f"{len(entries)} ASC(s)", "DEVS", entries)


def _bos_devdetails(truth: MinerTruth, mode: Mode) -> str:
    entries = [
        {
            "Chips": board.chips,
            "Cores": board.chips * 114,
            "DEVDETAILS": board.index,
            "Device Path": "",
            "Driver": "",
            "Frequency": 525_000_000,
            "ID": board.index + 1,
            "Kernel": "",
            "Model": truth.model,
            "Name": f"Hash Chain {board.index + 1}",
            "Voltage": 13.6,
        }
        for board in truth.boards
    ]
    return _reply(truth, mode, 69, "Device Details", "DEVDETAILS", entries)


def _bos_temps(truth: MinerTruth, mode: Mode) -> str:
    entries = [
        {"Board": max(b.pcb_temps_c), "Chip": max(b.chip_temps_c), "ID": b.index + 1, "TEMP": b.index}
        for b in truth.boards
    ]
    return _reply(truth, mode, 201, f"{len(entries)} Temp(s)", "TEMPS", entries)


def _fan_percent(rpm: int) -> int:
    return min(100, round(100 * rpm / 7000))


def _bos_fans(truth: MinerTruth, mode: Mode) -> str:
    entries = [{"FAN": i, "ID": i, "RPM": rpm, "Speed": _fan_percent(rpm)} for i, rpm in enumerate(truth.fan_rpms)]
    return _reply(truth, mode, 202, f"{len(entries)} Fan(s)", "FANS", entries)


def _bos_tunerstatus(truth: MinerTruth, mode: Mode) -> str:
    power = int(truth.power_w or 0)
    limit = int(truth.power_limit_w or 0)
    chain_power = int(power * 0.94)
    chains = [
        {
            "ApproximatePowerConsumptionWatt": chain_power // len(truth.boards),
            "HashchainIndex": board.index + 1,
            "Iteration": 0,
            "LoadedProfileCreatedOn": truth.t - (truth.uptime_s or 0),
            "PowerLimitWatt": limit // len(truth.boards),
            "StageElapsed": truth.uptime_s,
            "Status": "Stable",
            "TunerRunning": False,
            "TuningElapsed": truth.uptime_s,
        }
        for board in truth.boards
    ]
    entry = {
        "ApproximateChainPowerConsumption": chain_power,
        "ApproximateMinerPowerConsumption": power,
        "DynamicPowerScaling": "Disabled",
        "PowerLimit": limit,
        "TunerChainStatus": chains,
    }
    return _reply(truth, mode, 203, "Tuner Status", "TUNERSTATUS", [entry])


# --- whatsminer (btminer) -------------------------------------------------------------------------------


def _whatsminer_summary(truth: MinerTruth, mode: Mode) -> str:
    chips = [t for board in truth.boards for t in board.chip_temps_c]
    power = int(truth.power_w or 0)
    fans = truth.fan_rpms
    entry = {
        "Elapsed": truth.uptime_s,
        "MHS av": _mh(truth.hashrate_avg_hs),
        "MHS 5s": _mh(truth.hashrate_5s_hs),
        "MHS 1m": _mh(truth.hashrate_hs),
        "MHS 5m": _mh(truth.hashrate_5m_hs),
        "MHS 15m": _mh(truth.hashrate_15m_hs),
        "HS RT": _mh(truth.hashrate_5m_hs),
        **{k: v for k, v in _counters(truth).items() if k in ("Accepted", "Rejected", "Total MH")},
        "Temperature": max(max(b.pcb_temps_c) for b in truth.boards),
        "freq_avg": 646,
        "Fan Speed In": fans[0],
        "Fan Speed Out": fans[-1],
        "Power": power,
        "Power Rate": round(power / (truth.hashrate_hs / 1e12), 2) if truth.hashrate_hs else 0.0,
        "Pool Rejected%": _counters(truth)["Pool Rejected%"],
        "Pool Stale%": 0.0,
        "Last getwork": 0,
        "Uptime": truth.system_uptime_s,
        "Security Mode": 0,
        "Hash Stable": True,
        "Hash Stable Cost Seconds": min(truth.uptime_s or 0, 17569),
        "Hash Deviation%": 0.1398,
        "Target Freq": 574,
        "Target MHS": int(truth.nominal_hs / _MH * 0.9),
        "Env Temp": truth.ambient_c,
        "Power Mode": "Normal",
        "Factory GHS": int(truth.nominal_hs / _GH),
        "Power Limit": int(truth.power_limit_w or 0),
        "Chip Temp Min": min(chips),
        "Chip Temp Max": max(chips),
        "Chip Temp Avg": round(sum(chips) / len(chips), 2),
        "Debug": "-0.0_100.0_354",
        "Btminer Fast Boot": "disable",
    }
    summary = encode(_Spoiler(mode).apply(entry))
    # btminer leaves a comma before the closing brace (reference §9.8 item 2).
    summary = summary[:-1] + ",}"
    return '{"STATUS":' + encode(_status(truth, 11, "Summary")) + ',"SUMMARY":[' + summary + '],"id":1}'


def _whatsminer_pools(truth: MinerTruth, mode: Mode) -> str:
    elapsed = truth.uptime_s or 0
    entries = [
        {
            **_pool_common(slot, elapsed),
            "Last Share Time": slot.last_share_ts,  # epoch seconds, 0 = never
            "Diff1 Shares": 0,
            "Proxy Type": "",
            "Proxy": "",
            **{k: int(v) for k, v in _pool_tail(slot).items()},
            "Has Stratum": 1,
            "Stratum Active": slot.active,
            "Stratum URL": _stratum_host(slot.url).rsplit(":", 1)[0],
            "Stratum Difficulty": slot.difficulty,
            "Best Share": slot.difficulty * 1873 if slot.active else 0,
            "Pool Rejected%": _rejected_pct(slot),
            "Pool Stale%": 0,
            "Bad Work": 0,
            "Current Block Height": 0,
            "Current Block Version": 536870916,
        }
        for slot in truth.pools
    ]
    return _reply(truth, mode, 7, f"{len(entries)} Pool(s)", "POOLS", entries)


def _whatsminer_edevs(truth: MinerTruth, mode: Mode) -> str:
    entries = []
    for board in truth.boards:
        share = _board_share(truth, board.index)
        chips = board.chip_temps_c
        entries.append(
            {
                "ASC": board.index,
                "Slot": board.index,
                "Enabled": "Y",
                "Status": "Alive",
                "Temperature": max(board.pcb_temps_c),
                "Chip Frequency": 587,
                "MHS av": _mh(truth.hashrate_avg_hs * share),
                "MHS 5s": _mh(board.hashrate_5s_hs),
                "MHS 1m": _mh(board.hashrate_hs),
                "MHS 5m": _mh(truth.hashrate_5m_hs * share),
                "MHS 15m": _mh(truth.hashrate_15m_hs * share),
                "HS RT": _mh(truth.hashrate_5m_hs * share),
                "Accepted": 0,
                "Rejected": 0,
                "Last Valid Work": truth.t,
                "Upfreq Complete": 1,
                "Effective Chips": board.chips,
                "PCB SN": f"HEM1EP9C{truth.device_id[:8].upper()}{board.index:04}",
                "Chip Data": "K88Z347-2039 BINV01-195001D",
                "Chip Temp Min": min(chips),
                "Chip Temp Max": max(chips),
                "Chip Temp Avg": round(sum(chips) / len(chips), 2),
                "chip_vol_diff": 9,
            }
        )
    return _reply(truth, mode, 9, f"{len(entries)} ASC(s)", "DEVS", entries)


def _whatsminer_devdetails(truth: MinerTruth, mode: Mode) -> str:
    entries = [
        {"DEVDETAILS": b.index, "Name": "SM", "ID": b.index, "Driver": "bitmicro", "Kernel": "", "Model": truth.model}
        for b in truth.boards
    ]
    return _reply(truth, mode, 69, "Device Details", "DEVDETAILS", entries)


def _whatsminer_get_version(truth: MinerTruth, mode: Mode) -> str:
    # API 2.x envelope: STATUS is a plain string and Msg an object (reference §9.2).
    message = {"api_ver": "2.0.5", "fw_ver": "20230911.12.Rel", "platform": "H616", "chip": "K88Z347"}
    return encode({"STATUS": "S", "When": truth.t, "Code": 131, "Msg": message, "Description": ""})


# --- avalon (Canaan) ------------------------------------------------------------------------------------


def _avalon_version(truth: MinerTruth, mode: Mode) -> str:
    short = truth.model.removeprefix("AvalonMiner").strip() or truth.model
    entry = {
        "CGMiner": "4.11.1",
        "API": "3.7",
        "STM8": "20.08.01",
        "PROD": truth.model,
        "MODEL": short,
        "HWTYPE": "MM4v2_X3",
        "SWTYPE": "MM319",
        "VERSION": "24102401_25462b2_9ddf522",
        "LOADER": "d0d779de.00",
        "DNA": f"0201{truth.device_id[:12]}",
        "MAC": truth.device_id[:12],
        "UPAPI": "2",
    }
    return _reply(truth, mode, 22, "CGMiner versions", "VERSION", [entry])


def _avalon_summary(truth: MinerTruth, mode: Mode) -> str:
    entry = {
        "Elapsed": truth.uptime_s,
        "MHS av": _mh(truth.hashrate_avg_hs),
        "MHS 30s": _mh(truth.hashrate_30s_hs),  # Avalon firmware has a 30 s figure where others have 5 s
        "MHS 1m": _mh(truth.hashrate_hs),
        "MHS 5m": _mh(truth.hashrate_5m_hs),
        "MHS 15m": _mh(truth.hashrate_15m_hs),
        **_counters(truth),
    }
    return _reply(truth, mode, 11, "Summary", "SUMMARY", [entry])


def _avalon_pools(truth: MinerTruth, mode: Mode) -> str:
    elapsed = truth.uptime_s or 0
    entries = [
        {
            **_pool_common(slot, elapsed),
            "Last Share Time": slot.last_share_ts,
            "Diff1 Shares": 0,
            "Proxy Type": "",
            "Proxy": "",
            **_pool_tail(slot),
            "Has Stratum": True,
            "Stratum Active": slot.active,
            "Stratum URL": _stratum_host(slot.url).rsplit(":", 1)[0],
            "Stratum Difficulty": float(slot.difficulty),
            "Has Vmask": True,
            "Has GBT": False,
            "Best Share": slot.difficulty * 1873 if slot.active else 0,
            "Pool Rejected%": _rejected_pct(slot),
            "Pool Stale%": 0.0,
            "Bad Work": 0,
            "Current Block Height": 0,
            "Current Block Version": 536870912,
        }
        for slot in truth.pools
    ]
    return _reply(truth, mode, 7, f"{len(entries)} Pool(s)", "POOLS", entries)


def _avalon_module(truth: MinerTruth, mode: Mode) -> str:
    """The "MM ID0" string: `Key[value]` pairs, with the real firmware's missing space after Elapsed."""
    boards = truth.boards
    power = int(truth.power_w or 0)
    fan_avg = sum(truth.fan_rpms) / len(truth.fan_rpms)
    mean_chip = [round(sum(b.chip_temps_c) / len(b.chip_temps_c)) for b in boards]
    pairs: list[tuple[str, str]] = [
        ("Ver", f"1246-{truth.device_id[:8]}_25462b2_9ddf522"),
        ("DNA", f"0201{truth.device_id[:12]}"),
        ("MEMFREE", "1392832.1381104"),
        ("NETFAIL", "0 0 0 0 0 0 0 0"),
        ("SYSTEMSTATU", f"Work: In Work, Hash Board: {len(boards)} "),
        ("Elapsed", str(truth.uptime_s)),
        ("BOOTBY", "0x04.00000000"),
        ("LW", str(int(_diff1(truth) / 4096))),
        ("MH", " ".join("0" for _ in boards)),
        ("HW", "0"),
        ("DH", "1.299%"),
        ("Temp", str(int(truth.ambient_c or 0))),
        ("TMax", str(int(truth.temp_max_c or 0))),
        ("TAvg", str(round(sum(mean_chip) / len(mean_chip)))),
        *[(f"Fan{i}", str(rpm)) for i, rpm in enumerate(truth.fan_rpms, start=1)],
        ("FanR", f"{_fan_percent(round(fan_avg))}%"),
        ("Vo", "296"),
        ("PS", f"0 1209 1187 297 {power - 205} 1188 {power}"),
        ("WALLPOWER", str(power)),
        ("GHSspd", f"{truth.hashrate_5s_hs / _GH:.2f}"),
        ("DHspd", "1.299%"),
        ("GHSmm", f"{truth.nominal_hs / _GH:.2f}"),
        ("GHSavg", f"{truth.hashrate_avg_hs / _GH:.2f}"),
        ("WU", f"{_diff1(truth) * 60 / max(truth.uptime_s or 1, 1):.2f}"),
        ("Freq", "345.94"),
        ("Led", "0"),
        ("MGHS", " ".join(f"{b.hashrate_hs / _GH:.2f}" for b in boards)),
        ("MTmax", " ".join(str(int(max(b.chip_temps_c))) for b in boards)),
        ("MTavg", " ".join(str(t) for t in mean_chip)),
        ("TA", str(sum(b.chips for b in boards))),
        ("Core", "A3197S"),
        ("PING", "131"),
        ("POWS", "0"),
        ("HASHS", " ".join("0" for _ in boards)),
        ("POOLS", "0"),
        ("SoftOFF", "0"),
        ("ECHU", " ".join("0" for _ in boards)),
        ("ECMM", "0"),
        ("MPO", str(int(truth.power_limit_w or 0))),
        ("WORKMODE", "1"),
    ]
    text = ""
    for key, value in pairs:
        shown = value
        if key in ESTATS_READ_KEYS or ESTATS_READ_PATTERN.fullmatch(key):
            if mode == "missing_fields":
                continue
            if mode == "wrong_types":
                shown = "n/a"
        # The firmware omits the space after Elapsed[...] (as in the captured A1047 reply).
        text += f"{key}[{shown}]" + ("" if key == "Elapsed" else " ")
    return text.rstrip()


def _avalon_stats(truth: MinerTruth, mode: Mode) -> str:
    mean_chip = [round(sum(b.chip_temps_c) / len(b.chip_temps_c)) for b in truth.boards]
    module = Pairs(
        [
            ("STATS", 0),
            ("ID", "AVA100"),
            ("Elapsed", truth.uptime_s),
            ("Calls", 0),
            ("Wait", 0.0),
            ("Max", 0.0),
            ("Min", 99999999.0),
            ("MM ID0", _avalon_module(truth, mode)),
            ("MM Count", 1),
            ("Smart Speed", 1),
            ("Voltage Level Offset", 0),
            ("Nonce Mask", 25),
            # The same key once per hash board (reference §9.8: duplicate JSON keys); keep-last parsers see board 3.
            *[("temp1", t) for t in mean_chip],
        ]
    )
    active = _active(truth)
    pool_stats = {
        "STATS": 1,
        "ID": "POOL0",
        "Elapsed": truth.uptime_s,
        "Calls": 0,
        "Wait": 0.0,
        "Max": 0.0,
        "Min": 99999999.0,
        "Pool Calls": 0,
        "Pool Attempts": 0,
        "Pool Wait": 0.0,
        "Pool Max": 0.0,
        "Pool Min": 99999999.0,
        "Pool Av": 0.0,
        "Work Had Roll Time": False,
        "Work Can Roll": False,
        "Work Had Expire": False,
        "Work Roll Time": 0,
        "Work Diff": float(active.difficulty if active else 0),
        "Min Diff": float(active.difficulty if active else 0),
        "Max Diff": float(active.difficulty if active else 0),
    }
    return _reply(truth, mode, 70, "CGMiner stats", "STATS", [module, pool_stats])


# --- dispatch -------------------------------------------------------------------------------------------

Renderer = Callable[[MinerTruth, Mode], str]
_RENDERERS: dict[Dialect, dict[str, Renderer]] = {
    "antminer": {
        "version": _antminer_version,
        "summary": _antminer_summary,
        "pools": _antminer_pools,
        "stats": _antminer_stats,
    },
    "braiins_os": {
        "version": _bos_version,
        "summary": _bos_summary,
        "pools": _bos_pools,
        "devs": _bos_devs,
        "devdetails": _bos_devdetails,
        "temps": _bos_temps,
        "fans": _bos_fans,
        "tunerstatus": _bos_tunerstatus,
    },
    "whatsminer": {
        "summary": _whatsminer_summary,
        "pools": _whatsminer_pools,
        "edevs": _whatsminer_edevs,
        "devdetails": _whatsminer_devdetails,
        "get_version": _whatsminer_get_version,
    },
    "avalon": {
        "version": _avalon_version,
        "summary": _avalon_summary,
        "pools": _avalon_pools,
        "estats": _avalon_stats,
        "stats": _avalon_stats,
    },
}


def _single(truth: MinerTruth, command: str, mode: Mode) -> str:
    renderer = _RENDERERS[truth.dialect].get(command)
    return error_reply(truth) if renderer is None else renderer(truth, mode)


def render_text(truth: MinerTruth, request: Request, mode: Mode = "normal") -> str:
    """The reply text (without the NUL terminator) for `request`, from a miner that is online."""
    if request.error == "invalid_json":
        return error_reply(truth, 23, "Invalid JSON")
    if request.error == "missing_command":
        return error_reply(truth, 24, "Missing JSON 'command'")
    commands = request.commands
    if len(commands) == 1:
        return _single(truth, commands[0], mode)
    if truth.dialect not in MULTI_COMMAND:
        return error_reply(truth)
    # Each command maps to an array holding its whole reply (reference §9.1).
    return "{" + ",".join(f"{json.dumps(c)}:[{_single(truth, c, mode)}]" for c in commands) + "}"


def render(truth: MinerTruth, request: Request, mode: Mode = "normal") -> bytes:
    """The reply bytes a miner in `truth`'s state sends for `request` (`mode`: a data fault, or normal)."""
    text = render_text(truth, request, mode)
    return (text + ("\x00" if truth.dialect in NUL_TERMINATED else "")).encode()


# --- replies no client can repair -----------------------------------------------------------------------

_ERROR_CODE_LIST = re.compile(r'"error_code":\[([^\]]*)\]')


def repair(text: str) -> str:
    """The reference §9.8 repairs, in order, as a tolerant client applies them (pyasic's `_load_api_data`)."""
    text = text.replace("\x00", "")
    text = text.replace(",}", "}")
    text = text.replace("\n", "")
    text = text.replace("}{", "},{")
    text = text.replace("[,{", "[{")
    text = text.replace('""temp0', '","temp0')
    text = text.replace('"inf"', "0").replace('"nan"', "0")
    if text.startswith(","):
        text = "{" + text[1:]
    if not text.endswith("}"):
        text = ",".join(text.split(",")[:-1]) + "}"
    return _ERROR_CODE_LIST.sub(lambda m: '"error_code":{' + m.group(1) + "}", text)


def parses_after_repair(data: bytes) -> bool:
    """Whether `data` is JSON once the §9.8 repairs are applied (what a tolerant collector can read)."""
    try:
        json.loads(repair(data.decode("utf-8", errors="replace")))
    except ValueError:
        return False
    return True


def truncated(reply: bytes) -> bytes:
    """At most the first half of `reply`, cut so that no §9.8 repair turns it back into JSON."""
    cut = len(reply) // 2
    while cut > 1 and parses_after_repair(reply[:cut]):
        cut -= 1
    return reply[:cut]


def malformed(reply: bytes) -> bytes:
    """`reply` cut and mangled: unbalanced brackets and a stray non-JSON token, beyond any §9.8 repair."""
    garbage = reply[: len(reply) * 3 // 5] + b'}]]{"STATUS":[{<!-- api: buffer overrun -->]]}'
    if parses_after_repair(garbage):  # cannot happen: the stray token is outside any string either way
        raise AssertionError("malformed reply became repairable")
    return garbage
