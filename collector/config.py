"""The configuration: main file, one file per group, the regional ban calendar. Validated once, at start-up.

Loading reads files and resolves secrets; everything else is pure validation. Every problem is reported as
`file: key.path: reason`, all of them at once, never with a traceback and never with a secret's value.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from ipaddress import IPv4Address
from itertools import pairwise
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin
from zoneinfo import ZoneInfo

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    IPvAnyAddress,
    ValidationError,
    field_validator,
    model_validator,
)

from collector.adapters.base import HttpUrl, PoolSourceSettings
from collector.adapters.registry import SourceRegistry
from collector.addresses import is_valid_btc_address, normalize_address
from collector.compliance.settings import RuleSettings
from collector.devices.cgminer.adapter import CgminerFleetSettings
from collector.errors import ConfigError
from collector.redact import Redactor
from collector.secrets import SecretMissing, WithSecrets, read_secret_file
from collector.units import UnitError, parse_hashrate, parse_power
from collector.zones import TimeZone
from exporters.reports.settings import ReportSettings

DEFAULT_CONFIG = Path("config/minewatch.toml")
CONFIG_ENV = "MINEWATCH_CONFIG"

_SLUG = r"^[a-z0-9][a-z0-9_-]{0,62}$"
_REGION = r"^[A-Z]{2}-[A-Z0-9]{1,3}$"
_TICKER = r"^[A-Z0-9]{2,10}$"


def _quantity(parser: Any) -> Any:
    def parse(value: Any) -> Any:
        if isinstance(value, str):
            try:
                return parser(value)
            except UnitError as exc:
                raise ValueError(str(exc)) from None
        return value

    return BeforeValidator(parse)


Hashrate = Annotated[float, _quantity(parse_hashrate), Field(ge=0)]
Power = Annotated[float, _quantity(parse_power), Field(ge=0)]
Slug = Annotated[str, Field(pattern=_SLUG)]
RegionCode = Annotated[str, Field(pattern=_REGION)]
Ticker = Annotated[str, Field(pattern=_TICKER)]


class Strict(BaseModel):
    """Unknown keys are errors: a typo in a permit must not pass silently. inf and nan are not numbers here."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


# --- main file -------------------------------------------------------------------------------------------


class InfluxConfig(WithSecrets):
    """Where points go. `api = "v1"` (/write + InfluxQL) works on InfluxDB 1.x, 2.x and 3.x."""

    secret_names = ("password", "token")

    url: HttpUrl = "http://127.0.0.1:8086"
    api: Literal["v1", "v2"] = "v1"
    database: str = "minewatch"
    retention_policy: str | None = None
    org: str | None = None
    bucket: str | None = None
    username: str | None = None
    password_env: str | None = None
    password_file: str | None = None
    token_env: str | None = None
    token_file: str | None = None
    timeout_s: float = Field(10.0, gt=0, le=300)
    batch_size: int = Field(5000, ge=1, le=100_000)
    flush_interval_s: float = Field(1.0, gt=0, le=60)
    max_buffered_lines: int = Field(100_000, ge=1000)

    @model_validator(mode="after")
    def _one_way_to_authenticate(self) -> InfluxConfig:
        if self.api == "v2" and not (self.org and self.bucket and (self.token_env or self.token_file)):
            raise ValueError('api = "v2" needs org, bucket and token_env or token_file')
        has_token = bool(self.token_env or self.token_file)
        if has_token and (self.username or self.password_env or self.password_file):
            raise ValueError("give a token or a username and password, not both")
        if bool(self.password_env or self.password_file) != bool(self.username):
            raise ValueError("a password needs a username, and a username needs password_env or password_file")
        return self


class ScheduleConfig(Strict):
    """How often every source is polled and how long one poll may take."""

    interval_s: float = Field(60.0, ge=5, le=86_400)
    timeout_s: float = Field(20.0, gt=0)
    misfire_grace_s: int = Field(30, ge=1)
    workers: int = Field(32, ge=1, le=1024)
    # Miner polls run on their own threads, so a site of dead miners waiting out timeouts never starves pools.
    device_workers: int = Field(64, ge=1, le=1024)
    # The largest response body (a pool's HTTP answer, a miner's RPC reply) read before the poll is failed as
    # `bad_response`: read in chunks and cut off there, so a hostile or broken server cannot exhaust memory.
    max_response_bytes: int = Field(16 * 1024 * 1024, ge=64 * 1024, le=1024 * 1024 * 1024)

    @model_validator(mode="after")
    def _timeout_below_interval(self) -> ScheduleConfig:
        if self.timeout_s >= self.interval_s:
            raise ValueError(f"timeout_s ({self.timeout_s:g}) must be shorter than interval_s ({self.interval_s:g})")
        return self


class RegistryConfig(Strict):
    """Where the group files and the ban calendar are, relative to the main file."""

    groups_dir: str = "groups"
    regions_file: str = "regions.toml"


class RateBudgetOverride(Strict):
    """Replace a pool's default rate budget (e.g. a negotiated higher limit)."""

    requests_per_minute: float = Field(gt=0)
    burst: int = Field(ge=1)


class NetworkFeedCommon(BaseModel):
    """The keys every network-statistics feed has; the rest belong to its kind's settings model."""

    model_config = ConfigDict(extra="allow", frozen=True)

    kind: str
    coin: Ticker = "BTC"
    # Chain figures move slowly and public instances ban eager clients: minutes, not seconds.
    interval_s: float = Field(300.0, ge=60, le=86_400)

    @field_validator("coin", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


RuleName = Annotated[str, Field(pattern=_SLUG)]
Seconds = Annotated[float, Field(ge=0)]


class AlertingConfig(Strict):
    """The alert lifecycle (`collector.compliance.alerts`): hold and keep-firing times, re-sends, where state lives.

    `hold_s`: how long a rule must keep violating before its alert fires (0: at once).
    `keep_firing_s`: how long a firing alert's rule must keep saying ok before the alert resolves (0: at once).
    Both have per-rule overrides keyed by rule name. `resend_s`: how often a firing alert is re-sent.
    `state_file` is relative to the main file; give each `--shard` replica its own. Firing and resolved alerts
    go to the log and to `alertmanager_url` (API v2) and `webhook_url` where set.
    """

    state_file: str = Field("state/alerts.json", min_length=1)
    # Where firing and resolved alerts go, besides the log: Alertmanager's API v2 and/or a JSON webhook.
    alertmanager_url: HttpUrl | None = None
    webhook_url: HttpUrl | None = None
    hold_s: Seconds = 0.0
    hold_s_by_rule: dict[RuleName, Seconds] = {}
    keep_firing_s: Seconds = 0.0
    keep_firing_s_by_rule: dict[RuleName, Seconds] = {}
    resend_s: float = Field(60.0, ge=1)

    def hold_for(self, rule: str) -> float:
        """The hold time of `rule`: its override, else the default."""
        return self.hold_s_by_rule.get(rule, self.hold_s)

    def keep_firing_for(self, rule: str) -> float:
        """The keep-firing time of `rule`: its override, else the default."""
        return self.keep_firing_s_by_rule.get(rule, self.keep_firing_s)


class ExporterConfig(WithSecrets):
    """The Prometheus exporter `minewatch run` serves (`exporters.prometheus`): loopback unless told otherwise.

    `basic_auth_username` with `basic_auth_password_env` or `basic_auth_password_file` makes every request
    need HTTP basic auth (one without the other is an error). Binding a non-loopback address without it is
    allowed but logged as a warning.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    secret_names = ("basic_auth_password",)

    enabled: bool = True
    listen_address: IPvAnyAddress = IPv4Address("127.0.0.1")
    port: int = Field(9108, ge=0, le=65535)  # 0: any free port (tests)
    basic_auth_username: str | None = Field(None, min_length=1, pattern=r"^[^:\x00-\x1f]+$")
    basic_auth_password_env: str | None = None
    basic_auth_password_file: str | None = None

    @model_validator(mode="after")
    def _username_and_password(self) -> ExporterConfig:
        has_password = bool(self.basic_auth_password_env or self.basic_auth_password_file)
        if has_password != bool(self.basic_auth_username):
            raise ValueError(
                "basic auth needs both basic_auth_username and basic_auth_password_env or basic_auth_password_file"
            )
        return self

    @property
    def basic_auth(self) -> tuple[str, str] | None:
        """(username, password) when basic auth is configured and its password resolved, else None."""
        password = self.secret("basic_auth_password")
        if self.basic_auth_username and password:
            return (self.basic_auth_username, password)
        return None


# An eviction drops one segment: the spool must hold several, or overflow empties it.
MIN_SPOOL_SEGMENTS = 8


class SpoolConfig(Strict):
    """The on-disk spool `minewatch run` keeps between the collector and InfluxDB (`collector.sinks.spool`).

    Every point goes through it, so a SIGKILL of the collector or an InfluxDB outage loses nothing up to
    `max_size_mb` (then the oldest points go, counted). `dir` is relative to the main file, like `[alerting]
    state_file`; one running collector per directory (it is locked), so `run --shard I/N` uses a subdirectory
    per shard. `fsync`: a segment is fsynced when sealed, before it is sent, so a power loss keeps it too.
    `shutdown_flush_s`: on SIGTERM, how long to try to deliver what is spooled before exiting (the rest is
    sent at the next start). `max_size_mb` bounds the daemon's spool (segments are sealed at a sixteenth of
    it, 64 KiB at least, so an eviction never empties it; the batch in flight is never evicted, so the spool
    may pass the bound by about one segment); `[influxdb] max_buffered_lines` only bounds the in-memory
    spool of the one-shot `minewatch collect`.
    """

    dir: str = Field("state/spool", min_length=1)
    max_size_mb: int = Field(1024, ge=1)
    fsync: bool = True
    shutdown_flush_s: float = Field(5.0, ge=0, le=300)

    @model_validator(mode="after")
    def _room_for_segments(self) -> SpoolConfig:
        from collector.sinks.spool import segment_bytes_for

        max_bytes = self.max_size_mb * 2**20
        if max_bytes // segment_bytes_for(max_bytes) < MIN_SPOOL_SEGMENTS:
            raise ValueError(
                f"spool.max_size_mb ({self.max_size_mb}) must leave room for at least {MIN_SPOOL_SEGMENTS} segments"
            )
        return self

    def path(self, config_path: Path) -> Path:
        """The spool directory; a relative `dir` is relative to the main config file's directory."""
        directory = Path(self.dir)
        return directory if directory.is_absolute() else config_path.parent / directory


class MainConfig(Strict):
    """The main file: storage, schedule, where the registry lives, per-pool budget overrides, chain feeds."""

    influxdb: InfluxConfig = InfluxConfig()
    spool: SpoolConfig = SpoolConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    registry: RegistryConfig = RegistryConfig()
    rate_budgets: dict[str, RateBudgetOverride] = {}
    network: list[NetworkFeedCommon] = []
    alerting: AlertingConfig = AlertingConfig()
    compliance: RuleSettings = RuleSettings()
    exporter: ExporterConfig = ExporterConfig()
    reports: ReportSettings = ReportSettings()

    @model_validator(mode="after")
    def _stale_after_a_poll(self) -> MainConfig:
        # A source is polled once per interval and the poll may take timeout_s: a shorter staleness limit
        # would call every source stale between two polls, and every group blind.
        floor = self.schedule.interval_s + self.schedule.timeout_s
        if self.compliance.stale_after_s <= floor:
            raise ValueError(
                f"compliance.stale_after_s ({self.compliance.stale_after_s:g}) must be longer than "
                f"schedule.interval_s + timeout_s ({floor:g})"
            )
        return self


# --- group files -----------------------------------------------------------------------------------------


class Site(Strict):
    """One mining site: where it is (ISO 3166-2 region, optional OKTMO municipality) and its grid connection."""

    id: Slug
    region: RegionCode
    timezone: TimeZone
    oktmo: Annotated[str, Field(pattern=r"^\d{8}(\d{3})?$")] | None = None
    address: str | None = None
    capacity: Power | None = None
    isolated_generation: bool = False


class DeclaredDevice(Strict):
    """A line of declared equipment: `count` devices of one model at one site."""

    id: Slug
    site: str
    model: str
    count: int = Field(1, ge=1)
    rated_power: Power | None = None
    max_hashrate: Hashrate | None = None


class BlackoutWindow(Strict):
    """A group-specific window during which mining is not allowed, in the site's local time (no offset)."""

    start: datetime
    end: datetime
    sites: list[str] = []
    reason: str = ""

    @model_validator(mode="after")
    def _local_and_ordered(self) -> BlackoutWindow:
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("write start and end in the site's local time, without an offset")
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class Notice(Strict):
    """A maintenance or curtailment notice: findings inside it are recorded as excused, never notified.

    `start`/`end` are in the site's local time without an offset (the group's zone for a finding with no
    known site); `sites` empty means every site of the group, `rules` empty means every rule.
    """

    start: datetime
    end: datetime
    sites: list[str] = []
    reason: str = Field(min_length=1)
    rules: list[RuleName] = []

    @model_validator(mode="after")
    def _local_and_ordered(self) -> Notice:
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("write start and end in the site's local time, without an offset")
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class PermitVersion(Strict):
    """One version of a group's permit: what it may do between `valid_from` and `valid_to` (inclusive days)."""

    version: str = Field(min_length=1, max_length=64)
    valid_from: date
    valid_to: date | None = None
    coins: list[Ticker] = Field(min_length=1)
    pools: list[str] = Field(min_length=1)
    stratum_hosts: list[str] = []
    user_patterns: list[str] = []
    max_hashrate: Hashrate | None = None
    max_power: Power | None = None
    payout_addresses: list[str] = []
    regions: list[RegionCode] = []
    registered_devices: int | None = Field(None, ge=0)
    disposal_channels: list[str] = []
    blackouts: list[BlackoutWindow] = []

    @field_validator("coins", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return [c.upper() if isinstance(c, str) else c for c in value] if isinstance(value, list) else value

    @model_validator(mode="after")
    def _ordered(self) -> PermitVersion:
        if self.valid_to is not None and self.valid_to < self.valid_from:
            raise ValueError(f"valid_to {self.valid_to} is before valid_from {self.valid_from}")
        return self


class PoolAccountCommon(BaseModel):
    """The keys every pool account has; the rest belong to the pool kind's own settings model."""

    model_config = ConfigDict(extra="allow", frozen=True)

    id: Slug
    kind: str
    site: str | None = None
    coin: Ticker = "BTC"

    @field_validator("coin", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


class MinerFleetCommon(BaseModel):
    """The keys every miner fleet has; the rest belong to the device kind's settings model."""

    model_config = ConfigDict(extra="allow", frozen=True)

    id: Slug
    kind: str = "cgminer"
    site: str


class GroupFile(Strict):
    """A group file as written: identity, sites, equipment, pool accounts, permit versions."""

    id: Slug
    legal_name: str = Field(min_length=1)
    inn: Annotated[str, Field(pattern=r"^\d{10}(\d{2})?$")]
    ogrn: Annotated[str, Field(pattern=r"^\d{13}(\d{2})?$")] | None = None
    register_record: str = Field(min_length=1)
    register_status: Literal["active", "excluded", "pending"] = "active"
    timezone: TimeZone = "Europe/Moscow"
    sites: list[Site] = Field(min_length=1)
    devices: list[DeclaredDevice] = []
    pool_accounts: list[PoolAccountCommon] = []
    miner_fleets: list[MinerFleetCommon] = []
    permits: list[PermitVersion] = Field(min_length=1)
    notices: list[Notice] = []


@dataclass(frozen=True)
class PoolAccount:
    """A validated pool account: common keys plus the pool kind's settings (secrets resolved)."""

    group_id: str
    id: str
    kind: str
    site: str | None
    coin: str
    settings: PoolSourceSettings


@dataclass(frozen=True)
class MinerFleet:
    """A validated fleet: the miners of one site polled over one device API."""

    group_id: str
    id: str
    kind: str
    site: str
    settings: CgminerFleetSettings


@dataclass(frozen=True)
class NetworkFeed:
    """A validated network-statistics feed for one coin."""

    kind: str
    coin: str
    interval_s: float
    settings: PoolSourceSettings


@dataclass(frozen=True)
class Group:
    """A validated group: the file's content with pool accounts and fleets bound to their source settings."""

    spec: GroupFile
    accounts: tuple[PoolAccount, ...]
    source_file: Path
    fleets: tuple[MinerFleet, ...] = ()

    @property
    def id(self) -> str:
        return self.spec.id

    def permit_at(self, moment: datetime) -> PermitVersion | None:
        """The permit version in force at `moment`, judged by the calendar day in the group's time zone."""
        day = moment.astimezone(ZoneInfo(self.spec.timezone)).date()
        for permit in self.spec.permits:
            if permit.valid_from <= day and (permit.valid_to is None or day <= permit.valid_to):
                return permit
        return None


# --- ban calendar ----------------------------------------------------------------------------------------


class Ban(Strict):
    """A regional ban: `full` (all year) or `seasonal` (every year from season_start to season_end)."""

    id: str
    kind: Literal["full", "seasonal"]
    regions: list[RegionCode] = Field(min_length=1)
    oktmo: list[str] = []
    municipal_only: bool = False
    valid_from: date
    valid_to: date | None = None
    season_start: Annotated[str, Field(pattern=r"^\d\d-\d\d$")] | None = None
    season_end: Annotated[str, Field(pattern=r"^\d\d-\d\d$")] | None = None
    status: Literal["in_force", "announced"] = "in_force"
    source: str = ""

    @model_validator(mode="after")
    def _season(self) -> Ban:
        if self.kind == "seasonal" and not (self.season_start and self.season_end):
            raise ValueError("a seasonal ban needs season_start and season_end (MM-DD)")
        for bound in (self.season_start, self.season_end):
            if bound is not None:
                try:
                    date(2000, int(bound[:2]), int(bound[3:]))  # a leap year, so 02-29 is a real day
                except ValueError:
                    raise ValueError(f"{bound!r} is not a calendar day (MM-DD)") from None
        return self


class RegionsFile(Strict):
    """The regional ban calendar."""

    bans: list[Ban] = []


# --- the loaded whole -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AppConfig:
    """Everything minewatch needs to run, validated."""

    main: MainConfig
    groups: tuple[Group, ...]
    regions: RegionsFile
    path: Path
    warnings: tuple[str, ...] = field(default=())
    networks: tuple[NetworkFeed, ...] = field(default=())

    def group(self, group_id: str) -> Group:
        for group in self.groups:
            if group.id == group_id:
                return group
        raise KeyError(group_id)


class ConfigInvalid(Exception):
    """One or more `ConfigError`s found while loading."""

    def __init__(self, errors: list[ConfigError]) -> None:
        super().__init__("\n".join(str(e) for e in errors))
        self.errors = errors


def default_config_path(environ: Mapping[str, str] | None = None) -> Path:
    """`$MINEWATCH_CONFIG`, else `config/minewatch.toml`."""
    env = os.environ if environ is None else environ
    return Path(env[CONFIG_ENV]) if env.get(CONFIG_ENV) else DEFAULT_CONFIG


def load_config(
    path: Path,
    sources: SourceRegistry,
    *,
    redactor: Redactor,
    environ: Mapping[str, str] | None = None,
) -> AppConfig:
    """Load and validate the main file, every group file and the ban calendar; raise ConfigInvalid."""
    env = os.environ if environ is None else environ
    errors: list[ConfigError] = []
    main_raw = _read_toml(path, errors)
    _learn_secrets(main_raw, path.parent, env, redactor)
    main = _validate(MainConfig, main_raw, path, errors) if main_raw is not None else None
    if main is None:
        raise ConfigInvalid(errors)
    _resolve(main.influxdb, path, "influxdb", env, redactor, errors)
    if main.exporter.enabled:  # a disabled exporter's password is not needed: not read, not required
        _resolve(main.exporter, path, "exporter", env, redactor, errors)
    networks = _network_feeds(main, path, sources, env, redactor, errors)
    base = path.parent

    regions_path = base / main.registry.regions_file
    regions_raw = _read_toml(regions_path, errors)
    regions = _validate(RegionsFile, regions_raw, regions_path, errors) if regions_raw is not None else None

    groups_dir = base / main.registry.groups_dir
    groups: list[Group] = []
    if not groups_dir.is_dir():
        errors.append(ConfigError(str(path), "registry.groups_dir", f"{groups_dir} is not a directory"))
    else:
        for group_path in sorted(groups_dir.glob("*.toml")):
            group = _load_group(group_path, sources, env, redactor, errors)
            if group is not None:
                groups.append(group)
        if not groups and not any(e.file.startswith(str(groups_dir)) for e in errors):
            errors.append(ConfigError(str(groups_dir), "", "no group files (*.toml) found"))
    seen: dict[str, Path] = {}
    for group in groups:
        if group.id in seen:
            errors.append(
                ConfigError(str(group.source_file), "id", f"group id {group.id!r} also used in {seen[group.id]}")
            )
        seen[group.id] = group.source_file
    for kind in main.rate_budgets:
        if kind not in sources and kind not in sources.networks:
            errors.append(ConfigError(str(path), f"rate_budgets.{kind}", f"unknown pool kind {kind!r}"))
    if errors or regions is None:
        raise ConfigInvalid(errors)
    config = AppConfig(main=main, groups=tuple(groups), regions=regions, path=path, networks=networks)
    warnings = _budget_warnings(config, sources) + _calendar_warnings(regions)
    return AppConfig(
        main=main, groups=tuple(groups), regions=regions, path=path, warnings=tuple(warnings), networks=networks
    )


def _network_feeds(
    main: MainConfig,
    path: Path,
    sources: SourceRegistry,
    env: Mapping[str, str],
    redactor: Redactor,
    errors: list[ConfigError],
) -> tuple[NetworkFeed, ...]:
    feeds: list[NetworkFeed] = []
    seen: set[tuple[str, str]] = set()
    for i, feed in enumerate(main.network):
        key = f"network[{i}]"
        if feed.kind not in sources.networks:
            known = ", ".join(sorted(sources.networks)) or "none"
            errors.append(ConfigError(str(path), f"{key}.kind", f"unknown network kind {feed.kind!r} (known: {known})"))
            continue
        if (feed.kind, feed.coin) in seen:
            errors.append(ConfigError(str(path), key, f"a second {feed.kind} feed for {feed.coin}"))
        seen.add((feed.kind, feed.coin))
        settings = _validate(
            sources.networks[feed.kind].settings_model, feed.model_extra or {}, path, errors, ("network", i)
        )
        if isinstance(settings, PoolSourceSettings):
            _resolve(settings, path, key, env, redactor, errors)
            feeds.append(NetworkFeed(feed.kind, feed.coin, feed.interval_s, settings))
    return tuple(feeds)


def _learn_secrets(raw: Any, base_dir: Path, env: Mapping[str, str], redactor: Redactor) -> None:
    """Teach the redactor every secret a raw file names, before validation can quote a value back.

    Best effort and silent: the validated settings resolve (and report) the same secrets properly later.
    A secret pasted into the wrong key of an invalid file must still never be printed.
    """
    if isinstance(raw, list):
        for item in raw:
            _learn_secrets(item, base_dir, env, redactor)
        return
    if not isinstance(raw, dict):
        return
    for key, value in raw.items():
        if isinstance(value, dict | list):
            _learn_secrets(value, base_dir, env, redactor)
        elif isinstance(value, str) and key.endswith("_env") and env.get(value):
            redactor.add(env[value])
        elif isinstance(value, str) and key.endswith("_file"):
            try:
                redactor.add(read_secret_file(base_dir / value))
            except (OSError, UnicodeDecodeError, ValueError):
                continue


def _read_toml(path: Path, errors: list[ConfigError]) -> dict[str, Any] | None:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        errors.append(ConfigError(str(path), "", "file not found"))
    except OSError as exc:
        errors.append(ConfigError(str(path), "", f"cannot read: {exc.strerror}"))
    except tomllib.TOMLDecodeError as exc:
        errors.append(ConfigError(str(path), "", f"not valid TOML: {exc}"))
    except UnicodeDecodeError:
        errors.append(ConfigError(str(path), "", "not UTF-8 text"))
    except ValueError as exc:  # e.g. a path with a NUL byte
        errors.append(ConfigError(str(path), "", f"cannot read: {exc}"))
    return None


def _key_path(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


ModelT = TypeVar("ModelT", bound=BaseModel)

# What a pydantic error type expects, in TOML's words.
_EXPECTED: dict[str, str] = {
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "string": "a string",
    "list": "an array",
    "tuple": "an array",
    "set": "an array",
    "dict": "a table",
    "model": "a table",
    "model_attributes": "a table",
    "date": "a date (YYYY-MM-DD)",
    "datetime": "a date-time (YYYY-MM-DDTHH:MM:SS)",
    "time": "a time of day (HH:MM:SS)",
    "ip_any_address": "an IP address",
    "ip_v4_address": "an IPv4 address",
    "ip_v6_address": "an IPv6 address",
}
_BOUNDS = {"greater_than_equal": ">=", "less_than_equal": "<=", "greater_than": ">", "less_than": "<"}


def _toml_type(value: Any) -> str:
    """A value's type as TOML names it, for "expected X, got Y"; never the value itself (it may be a secret)."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, datetime):
        return "a date-time"
    if isinstance(value, date):
        return "a date"
    return type(value).__name__


# Keys whose given strings are never quoted back (a secret, or a secret pasted into the wrong key).
_SENSITIVE_KEY = re.compile(r"username|password|token|secret|key|_env$|_file$", re.IGNORECASE)


def _sensitive(loc: tuple[int | str, ...]) -> bool:
    """Whether the key at `loc` (its last named part) may hold a secret: its strings are shown by type only."""
    name = next((part for part in reversed(loc) if isinstance(part, str) and part != "[key]"), "")
    return bool(_SENSITIVE_KEY.search(name))


def _short(value: Any, *, sensitive: bool = False) -> str:
    """A number or a short word as given (for choices and ranges); anything else only by its type.

    With `sensitive` (a key that may hold a secret), strings are never quoted: numbers and booleans still are.
    """
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return f"{value:g}" if isinstance(value, float) else str(value)
    if isinstance(value, str) and not sensitive and len(value) <= 40 and value.isprintable():
        return repr(value)
    return _toml_type(value)


def _strip(annotation: Any) -> Any:
    """The type a key's annotation stands for: Annotated and Optional removed, a union's table member chosen."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, UnionType):
            members = [a for a in get_args(annotation) if a is not type(None)]
            tables = [a for a in members if isinstance(a, type) and issubclass(a, BaseModel)]
            arrays = [a for a in members if get_origin(a) in (list, tuple, set, dict)]
            annotation = (tables or arrays or members or [None])[0]
        else:
            return annotation


def _model_at(model: type[BaseModel], loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The model whose keys sit at `loc` under `model` (through arrays, tables and optional fields), if any."""
    current: Any = model
    for part in loc:
        current = _strip(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field_info = current.model_fields.get(str(part))
            if field_info is None:
                return None
            current = field_info.annotation
        elif get_origin(current) in (list, tuple, set, dict):
            args = get_args(current)
            current = (args[-1] if get_origin(current) is dict else args[0]) if args else None
        else:
            return None
    current = _strip(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _model_names(cls: type[BaseModel] = BaseModel) -> set[str]:
    names = set()
    for sub in cls.__subclasses__():
        names.add(sub.__name__)
        names |= _model_names(sub)
    return names


def _is_type_tag(part: int | str) -> bool:
    """A union member's tag pydantic puts in `loc` ("str", "NamedMiner", "function-after[...]"): not a key."""
    if not isinstance(part, str):
        return False
    if part.startswith("function-") or ("[" in part and part != "[key]") or part in ("str", "int", "float", "bool"):
        return True
    return part[:1].isupper() and part.isidentifier() and part in _model_names()


def _reason(error: Any, model: type[BaseModel], loc: tuple[int | str, ...]) -> str:
    """One pydantic error as a precise reason: what was expected, and what was given (by type, or a number)."""
    kind: str = error["type"]
    given = error.get("input")
    ctx = error.get("ctx") or {}
    sensitive = _sensitive(loc)
    if kind == "missing":
        return "required key missing"
    if kind == "extra_forbidden":
        parent = _model_at(model, loc[:-1])
        known = sorted(parent.model_fields) if parent is not None else []
        close = difflib.get_close_matches(str(loc[-1]), known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        listed = f"; known keys here: {', '.join(known)}" if known and len(known) <= 20 else ""
        return f"unknown key{hint}{listed}"
    if kind in _BOUNDS:
        bound = next(iter(ctx.values()), "?")
        return f"must be {_BOUNDS[kind]} {_short(bound)}, got {_short(given, sensitive=sensitive)}"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected', '?')}, got {_short(given, sensitive=sensitive)}"
    if kind == "string_pattern_mismatch":
        return f"must match the pattern {ctx.get('pattern', '?')}, got {_short(given, sensitive=sensitive)}"
    if kind in ("too_short", "too_long"):
        return str(error["msg"])
    base = kind.rsplit("_", 1)[0] if kind.endswith(("_type", "_parsing", "_from_datetime_parsing")) else kind
    base = base.removesuffix("_from_datetime")
    if base in _EXPECTED:
        return f"expected {_EXPECTED[base]}, got {_toml_type(given)}"
    return str(error["msg"]).removeprefix("Value error, ")


def _numeric(annotation: Any) -> str | None:
    """The expected type ("an integer", "a number") if the key takes only numbers (or none), else None."""
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    if get_origin(annotation) in (Union, UnionType):
        kinds = {_numeric(a) for a in get_args(annotation) if a is not type(None)}
        return "a number" if kinds and None not in kinds else None
    return {int: "an integer", float: "a number"}.get(annotation)


def _booleans_for_numbers(annotation: Any, raw: Any, loc: tuple[int | str, ...]) -> Iterator[tuple[Any, str]]:
    """Where `raw` gives true/false for a number: pydantic would read it as 1/0, a value nobody wrote."""
    if isinstance(raw, bool):
        expected = _numeric(annotation)
        if expected is not None:
            yield loc, expected
        return
    current = _strip(annotation)
    if isinstance(current, type) and issubclass(current, BaseModel) and isinstance(raw, dict):
        for key, value in raw.items():
            field_info = current.model_fields.get(key)
            if field_info is not None:
                yield from _booleans_for_numbers(field_info.annotation, value, (*loc, key))
    elif get_origin(current) in (list, tuple, set) and isinstance(raw, list):
        item = (get_args(current) or (Any,))[0]
        for i, value in enumerate(raw):
            yield from _booleans_for_numbers(item, value, (*loc, i))
    elif get_origin(current) is dict and isinstance(raw, dict):
        item = (get_args(current) or (Any, Any))[-1]
        for key, value in raw.items():
            yield from _booleans_for_numbers(item, value, (*loc, key))


def _validate(
    model: type[ModelT], raw: Any, path: Path, errors: list[ConfigError], prefix: tuple[int | str, ...] = ()
) -> ModelT | None:
    booleans = dict(_booleans_for_numbers(model, raw, ()))
    for loc, expected in booleans.items():
        errors.append(ConfigError(str(path), _key_path(prefix + loc), f"expected {expected}, got a boolean"))
    try:
        result = model.model_validate(raw)
        return None if booleans else result
    except ValidationError as exc:
        # A value that fits no member of a union fails once per member: one line per key, the reasons joined.
        reasons: dict[tuple[int | str, ...], list[str]] = {loc: [] for loc in booleans}
        for error in exc.errors(include_url=False, include_input=True):
            loc = tuple(p for p in error["loc"] if not _is_type_tag(p))
            reason = _reason(error, model, loc)
            original = str(error["msg"]).removeprefix("Value error, ")
            if original not in reason:  # pydantic's own words stay, after the precise ones (scripts grep them)
                reason = f"{reason} ({original})"
            if reason not in reasons.setdefault(loc, []):
                reasons[loc].append(reason)
        for loc, found in reasons.items():
            if found and loc not in booleans:
                errors.append(ConfigError(str(path), _key_path(prefix + loc), "; or ".join(found)))
        return None


def _resolve(
    settings: WithSecrets,
    path: Path,
    key: str,
    env: Mapping[str, str],
    redactor: Redactor,
    errors: list[ConfigError],
) -> None:
    try:
        settings.resolve_secrets(env, path.parent, redactor)
    except SecretMissing as exc:
        errors.append(ConfigError(str(path), f"{key}.{exc.key}" if key else exc.key, str(exc)))


def _load_group(
    path: Path, sources: SourceRegistry, env: Mapping[str, str], redactor: Redactor, errors: list[ConfigError]
) -> Group | None:
    raw = _read_toml(path, errors)
    if raw is None:
        return None
    _learn_secrets(raw, path.parent, env, redactor)
    before = len(errors)
    spec = _validate(GroupFile, raw, path, errors)
    if spec is None:
        return None
    where = str(path)
    site_ids = {site.id for site in spec.sites}
    _unique([s.id for s in spec.sites], "sites", where, errors)
    _unique([d.id for d in spec.devices], "devices", where, errors)
    _unique([a.id for a in spec.pool_accounts], "pool_accounts", where, errors)
    for i, device in enumerate(spec.devices):
        if device.site not in site_ids:
            errors.append(ConfigError(where, f"devices[{i}].site", f"undefined site {device.site!r}"))
    accounts: list[PoolAccount] = []
    for i, account in enumerate(spec.pool_accounts):
        key = f"pool_accounts[{i}]"
        if account.site is not None and account.site not in site_ids:
            errors.append(ConfigError(where, f"{key}.site", f"undefined site {account.site!r}"))
        if account.kind not in sources:
            known = ", ".join(sorted(sources))
            errors.append(ConfigError(where, f"{key}.kind", f"unknown pool kind {account.kind!r} (known: {known})"))
            continue
        settings = _validate(
            sources[account.kind].settings_model,
            account.model_extra or {},
            path,
            errors,
            ("pool_accounts", i),
        )
        if isinstance(settings, PoolSourceSettings):
            _resolve(settings, path, key, env, redactor, errors)
            accounts.append(PoolAccount(spec.id, account.id, account.kind, account.site, account.coin, settings))
    fleets = _miner_fleets(spec, path, sources, site_ids, errors)
    _check_permits(spec, sources, where, site_ids, errors)
    for i, notice in enumerate(spec.notices):
        for site in notice.sites:
            if site not in site_ids:
                errors.append(ConfigError(where, f"notices[{i}].sites", f"undefined site {site!r}"))
    if len(errors) > before:
        return None
    return Group(spec=spec, accounts=tuple(accounts), source_file=path, fleets=fleets)


def _miner_fleets(
    spec: GroupFile, path: Path, sources: SourceRegistry, site_ids: set[str], errors: list[ConfigError]
) -> tuple[MinerFleet, ...]:
    where = str(path)
    _unique([f.id for f in spec.miner_fleets], "miner_fleets", where, errors)
    fleets: list[MinerFleet] = []
    device_names: dict[str, str] = {}
    for i, fleet in enumerate(spec.miner_fleets):
        key = f"miner_fleets[{i}]"
        if fleet.site not in site_ids:
            errors.append(ConfigError(where, f"{key}.site", f"undefined site {fleet.site!r}"))
        if fleet.kind not in sources.devices:
            known = ", ".join(sorted(sources.devices))
            errors.append(ConfigError(where, f"{key}.kind", f"unknown device kind {fleet.kind!r} (known: {known})"))
            continue
        settings = _validate(
            sources.devices[fleet.kind].settings_model, fleet.model_extra or {}, path, errors, ("miner_fleets", i)
        )
        if not isinstance(settings, CgminerFleetSettings):
            continue
        for miner in settings.addresses:
            if miner.name in device_names:
                errors.append(
                    ConfigError(where, f"{key}.miners", f"device {miner.name!r} is also in {device_names[miner.name]}")
                )
            device_names[miner.name] = f"fleet {fleet.id!r}"
        fleets.append(MinerFleet(spec.id, fleet.id, fleet.kind, fleet.site, settings))
    return tuple(fleets)


def _unique(ids: list[str], key: str, where: str, errors: list[ConfigError]) -> None:
    seen: set[str] = set()
    for i, item in enumerate(ids):
        if item in seen:
            errors.append(ConfigError(where, f"{key}[{i}].id", f"duplicate id {item!r}"))
        seen.add(item)


def _check_permits(
    spec: GroupFile, sources: SourceRegistry, where: str, site_ids: set[str], errors: list[ConfigError]
) -> None:
    ordered = sorted(enumerate(spec.permits), key=lambda pair: pair[1].valid_from)
    for (_, earlier), (j, later) in pairwise(ordered):
        if earlier.valid_to is None or earlier.valid_to >= later.valid_from:
            errors.append(
                ConfigError(
                    where,
                    f"permits[{j}].valid_from",
                    f"permit {later.version!r} overlaps permit {earlier.version!r} "
                    f"({earlier.valid_from}..{earlier.valid_to or 'open'})",
                )
            )
    _unique([p.version for p in spec.permits], "permits", where, errors)
    for i, permit in enumerate(spec.permits):
        for k, pool in enumerate(permit.pools):
            if pool not in sources:
                errors.append(ConfigError(where, f"permits[{i}].pools[{k}]", f"unknown pool kind {pool!r}"))
        for k, address in enumerate(permit.payout_addresses):
            if "BTC" in permit.coins and not is_valid_btc_address(address):
                errors.append(
                    ConfigError(
                        where,
                        f"permits[{i}].payout_addresses[{k}]",
                        f"{address!r} is not a valid Bitcoin address",
                    )
                )
        for k, window in enumerate(permit.blackouts):
            for site in window.sites:
                if site not in site_ids:
                    errors.append(ConfigError(where, f"permits[{i}].blackouts[{k}].sites", f"undefined site {site!r}"))


def declared_addresses(permit: PermitVersion | None) -> frozenset[str]:
    """The permit's declared payout addresses in comparable form."""
    return frozenset(normalize_address(a) for a in permit.payout_addresses) if permit else frozenset()


def _budget_warnings(config: AppConfig, sources: SourceRegistry) -> list[str]:
    """Warn where an account's requests per interval cannot fit its pool's rate budget."""
    interval = config.main.schedule.interval_s
    demand: dict[str, float] = {}
    capacity: dict[str, float] = {}
    users: dict[str, list[str]] = {}
    for group in config.groups:
        for account in group.accounts:
            source = sources[account.kind]
            budget = sources.budget_for(account.kind, config.main.rate_budgets.get(account.kind))
            key = source.budget_key(account.settings)
            demand[key] = demand.get(key, 0.0) + source.requests_per_poll(account.settings)
            capacity[key] = budget.per_minute * interval / 60.0
            users.setdefault(key, []).append(f"{group.id}/{account.id}")
    return [
        f"rate budget shared by {', '.join(users[key])}: {need:g} requests per {interval:g} s interval, "
        f"but the pool's budget allows {capacity[key]:g}; raise schedule.interval_s or polls will be rate_limited"
        for key, need in sorted(demand.items())
        if need > capacity[key]
    ]


def _calendar_warnings(regions: RegionsFile) -> list[str]:
    return [
        f"regions: ban {ban.id!r} is limited to municipalities but lists no OKTMO codes; it applies to no site yet"
        for ban in regions.bans
        if ban.municipal_only and not ban.oktmo
    ]
