"""cgminer-family source: one miner's `summary`, `pools` and its dialect's sensor commands per poll."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, ClassVar, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, StringConstraints, model_validator

from collector.adapters.base import SectionCollector
from collector.adapters.parsing import Payload
from collector.devices.base import DeviceContext
from collector.devices.cgminer import parse
from collector.devices.cgminer.client import DEFAULT_PORT
from collector.devices.inventory import MinerAddress, miner_addresses
from collector.errors import BadResponse, SourceError
from collector.models import DeviceSnapshot

T = TypeVar("T")
MinerName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")]


class NamedMiner(BaseModel):
    """A miner listed with the name its points should carry (e.g. its rack position)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    address: str
    name: MinerName


class CgminerFleetSettings(BaseModel):
    """A fleet of miners at one site that speak the cgminer-family API (read commands, no credentials).

    `dialect = "auto"` asks each miner's `version` (and `devdetails` on Whatsminer) once, and again after
    any failed poll, so a miner swapped or reflashed at the same address is recognised.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    dialect: Literal["auto", "antminer", "braiins_os", "whatsminer", "avalon"] = "auto"
    port: int = Field(DEFAULT_PORT, ge=1, le=65_535)
    timeout_s: float = Field(10.0, gt=0, le=60)
    connect_timeout_s: float = Field(3.0, gt=0, le=30)
    miners: list[str | NamedMiner] = Field(min_length=1)
    _addresses: list[MinerAddress] = PrivateAttr(default_factory=list)

    @model_validator(mode="after")
    def _expand(self) -> CgminerFleetSettings:
        entries = [m if isinstance(m, str) else (m.address, m.name) for m in self.miners]
        self._addresses = miner_addresses(entries, self.port)
        return self

    @property
    def addresses(self) -> list[MinerAddress]:
        """Every miner of the fleet, ranges expanded, in the order written."""
        return list(self._addresses)


# The commands each dialect's readings come from besides `summary` and `pools`.
_SENSOR_COMMANDS: dict[parse.Dialect, tuple[str, ...]] = {
    "antminer": ("stats",),
    "braiins_os": ("temps", "fans", "tunerstatus"),
    "whatsminer": (),
    "avalon": ("stats",),
}
# Which identification replies give each dialect's model (see parse.model_of).
_MODEL_COMMANDS: dict[parse.Dialect, tuple[str, ...]] = {
    "antminer": ("version",),
    "braiins_os": ("devdetails",),
    "whatsminer": ("devdetails",),
    "avalon": ("version",),
}


class CgminerSource:
    """Polls one miner over the cgminer-family API (TCP, one request per connection)."""

    kind: ClassVar[str] = "cgminer"
    settings_model: ClassVar[type[BaseModel]] = CgminerFleetSettings

    def __init__(self, settings: CgminerFleetSettings, ctx: DeviceContext) -> None:
        self._settings = settings
        self._ctx = ctx
        self._identity: parse.Identity | None = None

    @staticmethod
    def requests_per_poll(settings: CgminerFleetSettings) -> int:
        """The most commands one poll sends (the first poll also identifies the miner)."""
        dialects = parse.DIALECTS if settings.dialect == "auto" else (settings.dialect,)
        identify = 2 if settings.dialect == "auto" else 1
        return identify + 2 + max(len(_SENSOR_COMMANDS[d]) for d in dialects)

    def collect(self) -> DeviceSnapshot:
        """Readings from `summary` and the dialect's sensor commands (a poll fails only if none answered)."""
        try:
            return self._collect()
        except SourceError:
            self._identity = None  # ask again next time: the miner may have been swapped or reflashed
            raise

    def _collect(self) -> DeviceSnapshot:
        now = int(self._ctx.clock())
        identity = self._identify()
        sections = SectionCollector()
        summary = sections.fetch("summary", lambda: parse.first(self._reply("summary"), "SUMMARY", "summary"))
        readings = self._readings(identity.dialect, summary, sections)
        if readings.empty:
            # Nothing answered with a figure: a failed poll, reported with the first command's error.
            if sections.errors:
                raise sections.errors[0]
            raise BadResponse("summary: no hashrate, temperature, fan, power or uptime in the replies")
        pools = sections.fetch("pools", lambda: parse.parse_pools(self._reply("pools")))
        return DeviceSnapshot(
            observed_at=now,
            model=identity.model or readings.model,
            hashrate_hs=readings.hashrate_hs,
            power_w=readings.power_w,
            temp_max_c=readings.temp_max_c,
            fan_min_rpm=readings.fan_min_rpm,
            uptime_s=readings.uptime_s,
            online=None if readings.hashrate_hs is None else readings.hashrate_hs > 0,
            pools=pools or (),
            issues=tuple(sections.issues),
        )

    def _readings(self, dialect: parse.Dialect, summary: Payload | None, sections: SectionCollector) -> parse.Readings:
        def fetch(command: str, read: Callable[[Payload], T]) -> T | None:
            return sections.fetch(command, lambda: read(self._reply(command)))

        if dialect == "antminer":
            return parse.antminer_readings(summary, fetch("stats", parse.antminer_stats_block))
        if dialect == "avalon":
            return parse.avalon_readings(summary, sections.fetch("stats", self._avalon_module))
        if summary is None:
            return parse.Readings(None, None, None, None, None)
        if dialect == "braiins_os":
            temps = fetch("temps", lambda r: parse.section(r, "TEMPS", "temps"))
            fans = fetch("fans", lambda r: parse.section(r, "FANS", "fans"))
            tuner = fetch("tunerstatus", lambda r: parse.first(r, "TUNERSTATUS", "tunerstatus"))
            return parse.braiins_readings(summary, temps, fans, tuner)
        return parse.whatsminer_readings(summary)

    def _avalon_module(self) -> dict[str, str]:
        """The "MM ID0" pairs from `stats`, else from `estats`: firmware differs in which one carries them."""
        try:
            return parse.avalon_module(self._reply("stats"), "stats")
        except BadResponse:  # refused or without the module string: the other command may have it
            return parse.avalon_module(self._reply("estats"), "estats")

    def _identify(self) -> parse.Identity:
        if self._identity is not None:
            return self._identity
        dialect = self._settings.dialect
        commands = ("version", "devdetails") if dialect == "auto" else _MODEL_COMMANDS[dialect]
        replies: dict[str, Payload | None] = {}
        errors: list[SourceError] = []
        for command in commands:
            try:
                replies[command] = self._reply(command)
                parse.check_status(replies[command] or {}, command)
            except (parse.CommandFailed, BadResponse) as exc:
                # Whatsminer refuses `version`; some firmware lacks `devdetails`. Either one may do.
                replies[command] = None
                errors.append(exc)
        version, devdetails = replies.get("version"), replies.get("devdetails")
        if dialect == "auto":
            if version is None and devdetails is None:
                raise errors[0]
            identity = parse.identify(version, devdetails)
        else:
            identity = parse.Identity(dialect, parse.model_of(dialect, version, devdetails))
        self._identity = identity
        return identity

    def _reply(self, command: str) -> Payload:
        return parse.decode(self._ctx.rpc.command(command), command)
