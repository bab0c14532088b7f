"""Pure parsers for cgminer-family replies: repair the known firmware quirks, then read each dialect.

Dialects differ in units and in where they keep things (reference §9.4-9.6, §9.10):
- antminer (stock bmminer/cgminer fork): GH/s in `summary` ("GHS 5s", often a string); fans, temperatures
  and chains in `stats` STATS[1]; no power.
- braiins_os (BOSminer+): MH/s in `summary`; `temps`, `fans`, and power in `tunerstatus`.
- whatsminer (btminer): MH/s, power, temperatures, fans, all in `summary`; model in `devdetails`.
- avalon (Canaan): MH/s in `summary`; temperatures, fans and wall power in the `stats` "MM ID0" string.
Every reader raises BadResponse naming the command and key; none invents a value.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from collector.adapters.parsing import Payload, integer, mapping, number, scaled, sequence, text
from collector.errors import BadResponse
from collector.models import DevicePool

Dialect = Literal["antminer", "braiins_os", "whatsminer", "avalon"]
DIALECTS: tuple[Dialect, ...] = ("antminer", "braiins_os", "whatsminer", "avalon")
GH = 1e9
MH = 1e6

_CHIP_TEMPERATURES = re.compile(r"temp_chip\d+")
_BOARD_TEMPERATURES = re.compile(r"temp_pcb\d+")
_OLD_CHIP_TEMPERATURES = re.compile(r"temp2_\d+")
_OLD_BOARD_TEMPERATURES = re.compile(r"temp\d+")
_ANTMINER_FAN = re.compile(r"fan\d+")
_AVALON_FAN = re.compile(r"Fan\d+")
_BRACKET_PAIR = re.compile(r"([A-Za-z][A-Za-z0-9_ ]*?)\[([^\[\]]*)\]")


class CommandFailed(BadResponse):
    """The miner answered the command with an error status (E or F): unsupported, or failing."""


def repair(text_: str) -> str:
    """Apply the known firmware quirk repairs (reference §9.8), in the documented order.

    The tenth, Whatsminer's `error_code` list-as-object, is left out: `get_error_code` is never sent.
    """
    text_ = text_.rstrip("\x00 \r\n\t")
    text_ = text_.replace(",}", "}").replace("\n", "").replace("}{", "},{").replace("[,{", "[{")
    text_ = text_.replace('""temp0', '","temp0')
    # pyasic turns Avalon's "inf"/"nan" into 0; a reading that is not a number is missing, not zero.
    text_ = text_.replace('"inf"', "null").replace('"nan"', "null")
    if text_.startswith(","):
        text_ = "{" + text_[1:]
    if text_ and not text_.endswith("}") and "," in text_:
        # A receive-buffer overflow cut the reply: keep the whole fields before the last comma.
        text_ = text_[: text_.rindex(",")] + "}"
    return text_


def decode(raw: bytes, command: str) -> Payload:
    """The reply as a JSON object, after the quirk repairs; duplicate keys keep their last value."""
    try:
        text_ = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadResponse(f"{command}: reply is not UTF-8") from None
    try:
        value = json.loads(repair(text_), parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise BadResponse(f"{command}: invalid JSON even after the firmware quirk repairs ({str(exc)[:100]})") from None
    return mapping(value, command)


def _reject_constant(name: str) -> float:
    raise ValueError(f"non-standard JSON constant {name}")


def check_status(reply: Payload, command: str) -> None:
    """Raise CommandFailed unless the reply's STATUS says S (success) or I (info)."""
    status = reply.get("STATUS")
    if isinstance(status, list) and status:
        entry = mapping(status[0], f"{command}.STATUS[0]")
        code, message = entry.get("STATUS"), entry.get("Msg")
    elif isinstance(status, str):  # Whatsminer API 2.x envelope: STATUS is a plain string
        code, message = status, reply.get("Msg")
    else:
        raise BadResponse(f"{command}: no STATUS in the reply")
    if code not in ("S", "I"):
        raise CommandFailed(f"{command}: the miner answered {code!r}: {str(message)[:80]}")


def section(reply: Payload, key: str, command: str) -> list[Payload]:
    """A reply's list section (e.g. SUMMARY, POOLS), each entry an object; the status is checked first."""
    check_status(reply, command)
    entries = sequence(reply.get(key), f"{command}.{key}")
    return [mapping(entry, f"{command}.{key}[{i}]") for i, entry in enumerate(entries)]


def first(reply: Payload, key: str, command: str) -> Payload:
    """A reply section's first entry (SUMMARY[0], VERSION[0], ...)."""
    entries = section(reply, key, command)
    if not entries:
        raise BadResponse(f"{command}.{key}: empty")
    return entries[0]


# --- identification -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Identity:
    """What a miner says it is."""

    dialect: Dialect
    model: str | None


# Substrings that give a firmware away anywhere in its `version` / `devdetails` replies, tested in this
# order (pyasic's order: Braiins OS on Antminer hardware first, then btminer, which may call itself cgminer).
_MARKERS: tuple[tuple[Dialect, tuple[str, ...]], ...] = (
    ("braiins_os", ("BOSMINER", "BOSER")),
    ("whatsminer", ("BTMINER", "BITMICRO", "WHATSMINER")),
    ("antminer", ("ANTMINER", "BMMINER")),
    ("avalon", ("AVALON", '"PROD"')),
)


def identify(version_reply: Payload | None, devdetails_reply: Payload | None) -> Identity:
    """Tell the dialect and model from the `version` and/or `devdetails` replies (either may be None)."""
    text_ = json.dumps([version_reply, devdetails_reply]).upper()
    for dialect, markers in _MARKERS:
        if any(marker in text_ for marker in markers):
            return Identity(dialect, model_of(dialect, version_reply, devdetails_reply))
    raise BadResponse(
        "version/devdetails: cannot tell the miner's firmware (not Antminer, Braiins OS, Whatsminer or Avalon)"
    )


def model_of(dialect: Dialect, version_reply: Payload | None, devdetails_reply: Payload | None) -> str | None:
    """The model a dialect reports: `version` Type (Antminer) or PROD (Avalon), `devdetails` Model otherwise."""
    if dialect in ("antminer", "avalon"):
        if version_reply is None:
            return None
        entry = first(version_reply, "VERSION", "version")
        return _model_name(entry.get("Type") if dialect == "antminer" else entry.get("PROD") or entry.get("MODEL"))
    if devdetails_reply is None:
        return None
    models = {_text(entry, "Model") for entry in section(devdetails_reply, "DEVDETAILS", "devdetails")}
    models.discard(None)
    return models.pop() if len(models) == 1 else None


def _text(entry: Payload, key: str) -> str | None:
    value = entry.get(key)
    return value.strip() if isinstance(value, str) and value.strip() else None


def _model_name(value: Any) -> str | None:
    """A model string without the suffix third-party firmware adds ("Antminer S19 XP (Vnish 1.2.0-rc1)")."""
    if not isinstance(value, str):
        return None
    return re.sub(r"\s*\(.*\)$", "", value.strip()) or None


# --- readings -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Readings:
    """The device-level figures of one poll, in base units; None where the dialect does not report them."""

    hashrate_hs: float | None
    power_w: float | None
    temp_max_c: float | None
    fan_min_rpm: int | None
    uptime_s: int | None
    model: str | None = None  # where a sensor reply names the model (Antminer STATS[0].Type)

    @property
    def empty(self) -> bool:
        """True when no figure at all was read."""
        return all(
            v is None for v in (self.hashrate_hs, self.power_w, self.temp_max_c, self.fan_min_rpm, self.uptime_s)
        )


def _hashrate(entry: Payload, where: str, keys: Sequence[tuple[str, float, int]], uptime: int | None) -> float | None:
    """The first of `keys` (key, unit factor, seconds of uptime its window needs) present, in H/s.

    A window longer than the miner has been up averages over a partly idle past, so right after a restart
    the shorter windows are read instead.
    """
    for key, factor, needs_uptime_s in keys:
        if needs_uptime_s and (uptime is None or uptime < needs_uptime_s):
            continue
        value = scaled(number(entry, key, where), factor, f"{where}.{key}")
        if value is not None:
            return value
    return None


# Ordered by preference: a 15-30 minute window compares with what pools report, then ever shorter ones;
# "av" (the average since the miner started) only as the last resort.
_ANTMINER_GHS = (
    ("GHS 30m", GH, 1800),
    ("rate_30m", GH, 1800),
    ("Hashrate15m", GH, 900),
    ("GHS 5s", GH, 0),
    ("GHS av", GH, 0),
)
_SUMMARY_MHS = (
    ("MHS 15m", MH, 900),
    ("MHS 5m", MH, 300),
    ("MHS 1m", MH, 0),
    ("MHS 30s", MH, 0),
    ("MHS 5s", MH, 0),
    ("MHS av", MH, 0),
)


def _maximum(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None


def _fan_minimum(speeds: Sequence[int | None]) -> int | None:
    """The slowest fan. Every firmware reports its empty fan slots as 0 RPM (an S9 on BOSminer lists four
    fans, two of them 0), so 0 cannot tell a stopped fan from a missing one and is left out; a stopped fan
    shows in the temperatures instead."""
    spinning = [speed for speed in speeds if speed]
    return min(spinning) if spinning else None


def antminer_readings(summary: Payload | None, stats: Payload | None) -> Readings:
    """Stock Antminer: GH/s in `summary` and STATS[1]; fans and temperatures in STATS[1]; no power.

    The hashrate window is chosen across both replies: a `rate_30m` in `stats` beats a `GHS 5s` in `summary`.
    """
    entries = [(entry, where) for entry, where in ((summary, "summary.SUMMARY[0]"), (stats, "stats.STATS[1]")) if entry]
    uptime = next((u for entry, where in entries if (u := integer(entry, "Elapsed", where)) is not None), None)
    hashrate = None
    # Clones on the same firmware (Hammer D10, a scrypt miner) count in MH/s.
    for key in (*_ANTMINER_GHS, *_SUMMARY_MHS):
        hashrate = next(
            (h for entry, where in entries if (h := _hashrate(entry, where, (key,), uptime)) is not None), None
        )
        if hashrate is not None:
            break
    temp = fans = model = None
    if stats is not None:
        temp = _antminer_temperature(stats)
        fans = _antminer_fans(stats)
        model = _model_name(stats.get("Type"))
    return Readings(hashrate, None, temp, fans, uptime, model)


def antminer_stats_block(stats_reply: Payload) -> dict[str, Any]:
    """STATS[1] of a stock Antminer `stats` reply, with STATS[0]'s `Type` (the model) added to it."""
    entries = section(stats_reply, "STATS", "stats")
    model = next((entry["Type"] for entry in entries if isinstance(entry.get("Type"), str)), None)
    for entry in entries:
        if "fan_num" in entry or "temp_num" in entry or any(k.startswith("chain_rate") for k in entry):
            return {**entry, "Type": model}
    raise BadResponse("stats.STATS: no block with fans, temperatures or chains")


def _antminer_temperature(stats: Payload) -> float | None:
    where = "stats.STATS[1]"
    # Per-chain sensor strings "inlet-inlet-outlet-outlet" on S19 and later; "0-0-0-0" is an absent chain.
    sensors: list[float] = []
    for pattern in (_CHIP_TEMPERATURES, _BOARD_TEMPERATURES):
        for key in sorted(k for k in stats if pattern.fullmatch(k)):
            sensors.extend(_dash_temperatures(stats[key], f"{where}.{key}"))
        if sensors:
            return max(sensors)
    # Older firmware: chip `temp2_N` and board `tempN` numbers; 0 is an empty slot.
    for pattern in (_OLD_CHIP_TEMPERATURES, _OLD_BOARD_TEMPERATURES):
        values = [number(stats, k, where) for k in stats if pattern.fullmatch(k)]
        present = [v for v in values if v]
        if present:
            return max(present)
    return None


def _dash_temperatures(value: Any, where: str) -> list[float]:
    if not isinstance(value, str):
        raise BadResponse(f"{where}: expected a string like '55-53-68-69', got {type(value).__name__}")
    if not value.strip():
        return []
    try:
        readings = [float(part) for part in value.split("-")]
    except ValueError:
        raise BadResponse(f"{where}: not a temperature list: {value[:40]!r}") from None
    if not all(math.isfinite(r) for r in readings):
        raise BadResponse(f"{where}: not a temperature list: {value[:40]!r}")
    return [r for r in readings if r > 0]


def _antminer_fans(stats: Payload) -> int | None:
    where = "stats.STATS[1]"
    # Slots are numbered from 1, 3 or 5 depending on the model (reference §9.6).
    return _fan_minimum([integer(stats, k, where) for k in stats if _ANTMINER_FAN.fullmatch(k)])


def braiins_readings(
    summary: Payload, temps: Sequence[Payload] | None, fans: Sequence[Payload] | None, tuner: Payload | None
) -> Readings:
    """BOSminer+: MH/s in `summary`, chip/board temperatures, fan RPMs, power from the tuner."""
    where = "summary.SUMMARY[0]"
    uptime = integer(summary, "Elapsed", where)
    hashrate = _hashrate(summary, where, _SUMMARY_MHS, uptime)
    temp = None
    if temps is not None:
        # BOSminer+ 0.2 on an S9 reads its chip sensors as 0.0: no reading, so the board sensor stands in.
        chips = [number(t, "Chip", f"temps.TEMPS[{i}]") or None for i, t in enumerate(temps)]
        boards = [number(t, "Board", f"temps.TEMPS[{i}]") or None for i, t in enumerate(temps)]
        temp = _maximum(chips) if _maximum(chips) is not None else _maximum(boards)
    fan = None if fans is None else _fan_minimum([integer(f, "RPM", f"fans.FANS[{i}]") for i, f in enumerate(fans)])
    power = None
    if tuner is not None:
        power = number(tuner, "ApproximateMinerPowerConsumption", "tunerstatus.TUNERSTATUS[0]")
    return Readings(hashrate, power, temp, fan, uptime)


def whatsminer_readings(summary: Payload) -> Readings:
    """btminer: everything in `summary` (MH/s, W, °C, RPM)."""
    where = "summary.SUMMARY[0]"
    uptime = integer(summary, "Elapsed", where)
    hashrate = _hashrate(summary, where, (*_SUMMARY_MHS, ("HS RT", MH, 0)), uptime)
    temp = number(summary, "Chip Temp Max", where)
    if temp is None:
        temp = number(summary, "Temperature", where)
    fan = _fan_minimum([integer(summary, "Fan Speed In", where), integer(summary, "Fan Speed Out", where)])
    return Readings(hashrate, number(summary, "Power", where), temp, fan, uptime)


def avalon_readings(summary: Payload | None, module: Mapping[str, str] | None) -> Readings:
    """Avalon: MH/s in `summary`; temperatures, fans and wall power in the module's bracket string."""
    hashrate = uptime = temp = fan = power = None
    if summary is not None:
        uptime = integer(summary, "Elapsed", "summary.SUMMARY[0]")
        hashrate = _hashrate(summary, "summary.SUMMARY[0]", _SUMMARY_MHS, uptime)
    if module is not None:
        where = "stats.MM ID0"
        if uptime is None:
            uptime = integer(module, "Elapsed", where)
        if hashrate is None:
            hashrate = _hashrate(module, where, (("GHSavg", GH, 0), ("GHSspd", GH, 0), ("GHSmm", GH, 0)), uptime)
        # `TMax` is the hottest chip; `Temp` is the intake air, not a reading of the machine.
        temp = number(module, "TMax", where)
        fan = _fan_minimum([integer(module, k, where) for k in module if _AVALON_FAN.fullmatch(k)])
        power = number(module, "WALLPOWER", where)
    return Readings(hashrate, power, temp, fan, uptime)


def avalon_module(stats_reply: Payload, command: str) -> dict[str, str]:
    """The `Key[value]` pairs of the first hashing module ("MM ID0") of an Avalon `stats`/`estats` reply.

    Values are kept as written (`PS[0 1220 1424 ...]` stays one string, and is not read). Pairs may be glued
    together ("Elapsed[103840]BOOTBY[1]"), hence a regular expression, not a split.
    """
    for entry in section(stats_reply, "STATS", command):
        for key, value in entry.items():
            if key.startswith("MM ID") and isinstance(value, str):
                return {name.strip(): inner.strip() for name, inner in _BRACKET_PAIR.findall(value)}
    raise BadResponse(f"{command}.STATS: no 'MM ID' module string")


# --- pools ----------------------------------------------------------------------------------------------


def parse_pools(pools_reply: Payload) -> tuple[DevicePool, ...]:
    """Every configured pool slot; the active one is `Stratum Active`, else the best-priority alive pool."""
    entries = section(pools_reply, "POOLS", "pools")
    flagged = [_flag(entry.get("Stratum Active"), f"pools.POOLS[{i}]") for i, entry in enumerate(entries)]
    by_flag = any(flag is not None for flag in flagged)
    fallback = None if by_flag else _best_alive(entries)
    pools = []
    for i, entry in enumerate(entries):
        where = f"pools.POOLS[{i}]"
        url = (text(entry, "URL", where) or "").strip()
        if not url:
            continue  # an empty slot of the miner's pool list: nothing is configured there
        slot = integer(entry, "POOL", where)
        active = bool(flagged[i]) if by_flag else (i == fallback if fallback is not None else None)
        pools.append(
            DevicePool(
                slot=i if slot is None else slot,
                url=url,
                stratum_user=(text(entry, "User", where) or "").strip() or None,
                active=active,
                accepted=integer(entry, "Accepted", where),
                rejected=integer(entry, "Rejected", where),
            )
        )
    return tuple(pools)


def _flag(value: Any, where: str) -> bool | None:
    """`Stratum Active` is `true` on bmminer and `1` on btminer."""
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if value in (0, 1, "0", "1", "true", "false"):
        return value in (1, "1", "true")
    raise BadResponse(f"{where}.Stratum Active: expected true/false, got {str(value)[:20]!r}")


def _best_alive(entries: Sequence[Payload]) -> int | None:
    alive = [
        (integer(entry, "Priority", f"pools.POOLS[{i}]"), i)
        for i, entry in enumerate(entries)
        if entry.get("Status") in ("Alive", "Active")
    ]
    if len(alive) > 1 and any(priority is None for priority, _ in alive):
        return None  # two live pools and a priority missing: which one hashes is unknown, not slot 0
    return min((priority or 0, i) for priority, i in alive)[1] if alive else None
