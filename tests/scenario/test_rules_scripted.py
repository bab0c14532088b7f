"""Scripted violations per rule: each starts at T1 and stops at T2, through the real stack, on a fake clock.

One simulator (HTTP pools) and one miner fleet (TCP) serve a scenario whose behaviour is scripted in time
(workers joining with `online_from`, down for a while with `offline_from`/`offline_until`, miners with
`hashing_from`/`hashing_until`, a pool slot configured and made active for a while with `from`/`until` and
`slot_schedule`, an account fault window, payouts rotating onto an undeclared address, permit blackout windows
and validity ends, permit versions in force for one day). Each test writes its own config for its own groups,
then steps a fake clock by one poll interval (or through a list of poll times): `collect_once`, the engine's
round, delivery to the session's real Alertmanager. It measures when the alert fired and resolved against T1
and T2.

The fake clock runs a few hours behind the real one, and `resend_s` is three days: Alertmanager judges
`endsAt` (fake now + 3 × resend_s for a firing alert) against its own wall clock, so firing alerts stay
active there, and a resolved alert (endsAt = the fake resolution time, in the real past) leaves at once.
Group ids start with `scr-`/`clean-`: no other test uses them on the shared Alertmanager.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from demo_config import ROOT

from collector.adapters.registry import source_registry
from collector.app import build_collector, build_compliance, collect_once
from collector.compliance.findings import Finding
from collector.config import load_config
from collector.redact import Redactor
from collector.sinks.base import MemorySink
from simulator import truth
from simulator.local_servers import AlertmanagerServer
from simulator.miners.fleet import MinerFleet
from simulator.scenario import Scenario, parse_scenario
from simulator.server import SimulatorServer

LOG = logging.getLogger("test.scripted")
P = 60  # the poll interval, fake seconds
HOLD = 60  # [alerting] hold_s of the rule scenarios: one interval
STALE = 150  # [compliance] stale_after_s
WINDOW = 180  # hashrate and unaccounted windows
RESEND = 3 * 86_400  # see the module docstring: keeps firing alerts alive in Alertmanager
MSK = ZoneInfo("Europe/Moscow")
EKB = ZoneInfo("Asia/Yekaterinburg")
DECLARED = "bc1qavy4wx445z06wul8fu98wz88ekcfqt6l7f3xl5"
UNDECLARED = "bc1qtrqx57y9lz6hq4jwlvm26sqzp38d09z0j49v0c"
POOL_5M = 300  # pools report a 5-minute mean: it lags a change by up to this much
DEVICE_MEAN = 900  # the miner hashrate the collector reads settles this long after a miner stops (measured)

# Rule timeline (fake clock): polls at BASE + k·P; the violation starts half an interval after a poll.
BASE = math.floor(time.time() / P) * P - 3 * 3600
T1 = BASE + 20 * 60 + 30
T2 = BASE + 45 * 60 + 30
END = BASE + 75 * 60


def _last_moscow_midnight(latest: float) -> int:
    """The latest Moscow midnight at or before `latest` (unix seconds)."""
    local = datetime.fromtimestamp(latest, MSK)
    return int(datetime(local.year, local.month, local.day, tzinfo=MSK).timestamp())


# The clean day runs 12 h either side of a Moscow midnight, ending before the real now.
MIDNIGHT = _last_moscow_midnight(time.time() - 12 * 3600 - 600)
NEW_DAY = datetime.fromtimestamp(MIDNIGHT, MSK).date()
EKB_BLACKOUT = (
    int(datetime.combine(NEW_DAY, datetime.min.time(), EKB).timestamp()) + 2 * 3600,
    int(datetime.combine(NEW_DAY, datetime.min.time(), EKB).timestamp()) + 5 * 3600,
)
STALE_WINDOW = (MIDNIGHT + 2 * 3600, MIDNIGHT + 4 * 3600)
# Permit versions in force for one Moscow day, [DAY_T1, DAY_T2): the day before NEW_DAY (both ends in the past).
VERSION_DAY = NEW_DAY - timedelta(days=1)
DAY_T1 = int(datetime.combine(VERSION_DAY, datetime.min.time(), MSK).timestamp())
DAY_T2 = MIDNIGHT
HISTORY_START = datetime.fromtimestamp(min(BASE, DAY_T1) - 3 * 86_400, UTC).date()
OFFLINE_AFTER = 120  # [compliance] offline_after_s of the workers_offline scenario
DROP_WINDOW = 3600  # [compliance] drop_window_s of the hashrate_drop scenario: its median outlasts T2 − T1


def _local(ts: int, zone: ZoneInfo) -> str:
    """A TOML local date-time (no offset) for unix time `ts` in `zone`: how group files write windows."""
    return datetime.fromtimestamp(ts, zone).replace(tzinfo=None).isoformat()


def scenario_toml(payout_delay_hours: float) -> str:
    """Every scripted group of this module in one scenario (times are unix seconds)."""
    return f"""
seed = 4242
history_start = {HISTORY_START.isoformat()}
sats_per_phs_day = 50000

[[accounts]]
group_id = "scr-blackout"
pool = "braiins"
username = "scrbo"
secret = "scr-bo-token"
workers = [{{ name = "w1", nominal_ths = 100.0 }}]

[[accounts]]
group_id = "scr-payout"
pool = "braiins"
username = "scrpay"
secret = "scr-pay-token"
payout_addresses = ["{DECLARED}", "{UNDECLARED}"]
payout_every_days = 1
payout_delay_hours = {payout_delay_hours!r}
workers = [{{ name = "w1", nominal_ths = 100.0 }}]

[[accounts]]
group_id = "scr-quota"
pool = "braiins"
username = "scrquota"
secret = "scr-quota-token"
workers = [
  {{ name = "base", nominal_ths = 60.0 }},
  {{ name = "surge", nominal_ths = 600.0, online_from = {T1}, offline_from = {T2} }},
]

[[accounts]]
group_id = "scr-blind"
pool = "braiins"
username = "scrblind"
secret = "scr-blind-token"
fault = "server_error"
fault_from = {T1}
fault_until = {T2}
workers = [{{ name = "w1", nominal_ths = 100.0 }}]

[[accounts]]
group_id = "scr-unacc"
pool = "braiins"
username = "scrunacc"
secret = "scr-unacc-token"
workers = [{{ name = "w1", nominal_ths = 50.0 }}, {{ name = "w2", nominal_ths = 50.0 }}]

[[accounts]]
group_id = "scr-validity"
pool = "braiins"
username = "scrvalid"
secret = "scr-valid-token"
workers = [{{ name = "w1", nominal_ths = 100.0, offline_from = {MIDNIGHT + 25 * 60 + 30} }}]

[[accounts]]
group_id = "scr-region"
pool = "braiins"
username = "scrregion"
secret = "scr-region-token"
workers = [{{ name = "w1", nominal_ths = 100.0 }}]

[[accounts]]
group_id = "scr-coin"
pool = "braiins"
username = "scrcoin"
secret = "scr-coin-token"
workers = [{{ name = "w1", nominal_ths = 100.0 }}]

[[accounts]]
group_id = "scr-offline"
pool = "braiins"
username = "scroffline"
secret = "scr-offline-token"
# w2 is down for [T1, T2): an outage that ends (the simulator's `offline_until`).
workers = [
  {{ name = "w1", nominal_ths = 100.0 }},
  {{ name = "w2", nominal_ths = 50.0, offline_from = {T1}, offline_until = {T2} }},
]

[[accounts]]
group_id = "scr-drop"
pool = "braiins"
username = "scrdrop"
secret = "scr-drop-token"
workers = [
  {{ name = "small", nominal_ths = 50.0 }},
  {{ name = "big", nominal_ths = 200.0, offline_from = {T1}, offline_until = {T2} }},
]

[[accounts]]
group_id = "clean-a"
pool = "braiins"
username = "cleana"
secret = "clean-a-token"
payout_addresses = ["{DECLARED}"]
payout_every_days = 1
workers = [{{ name = "a1", nominal_ths = 40.0 }}, {{ name = "a2", nominal_ths = 40.0 }}]

[[accounts]]
group_id = "clean-a"
pool = "emcd"
username = "cleanaemcd"
secret = "clean-a-emcd-key"
payout_address = "{DECLARED}"
payout_addresses = ["{DECLARED}"]
# Its permit ends at midnight: the group stops hashing there half an hour before.
workers = [{{ name = "e1", nominal_ths = 30.0, offline_from = {MIDNIGHT - 1800} }}]

[[accounts]]
group_id = "clean-b"
pool = "braiins"
username = "cleanb"
secret = "clean-b-token"
# The day shift stops 10 min before the blackout window, the night shift starts 10 min after it.
workers = [
  {{ name = "day", nominal_ths = 70.0, offline_from = {EKB_BLACKOUT[0] - 600} }},
  {{ name = "night", nominal_ths = 70.0, online_from = {EKB_BLACKOUT[1] + 600} }},
]

[[accounts]]
group_id = "clean-c"
pool = "braiins"
username = "cleanc"
secret = "clean-c-token"
fault = "server_error"
fault_from = {STALE_WINDOW[0]}
fault_until = {STALE_WINDOW[1]}
workers = [{{ name = "c1", nominal_ths = 50.0 }}, {{ name = "c2", nominal_ths = 50.0 }}]

[[miners]]
group_id = "scr-whitelist"
site = "tver-1"
name = "wl-1"
dialect = "braiins_os"
model = "Antminer S19 XP"
nominal_ths = 140.0
active_slot = 0
slot_schedule = [{{ from = {T1}, active_slot = 1 }}, {{ from = {T2}, active_slot = 0 }}]
pools = [
  {{ url = "stratum+tcp://stratum.braiins.com:3333", user = "scrwl.wl1" }},
  {{ url = "stratum+tcp://btc.rogue-pool.example:3333", user = "scrwl.wl1", from = {T1}, until = {T2} }},
]

[[miners]]
group_id = "scr-devices"
site = "tver-1"
name = "dc-{{n}}"
count = 3
dialect = "braiins_os"
model = "Antminer S19 XP"
nominal_ths = 140.0
pools = [{{ url = "stratum+tcp://stratum.braiins.com:3333", user = "scrdc.dc{{n}}" }}]

[[miners]]
group_id = "scr-devices"
site = "tver-1"
name = "dc-extra"
dialect = "braiins_os"
model = "Antminer S19 XP"
nominal_ths = 140.0
hashing_from = {T1}
hashing_until = {T2}
pools = [{{ url = "stratum+tcp://stratum.braiins.com:3333", user = "scrdc.extra" }}]

[[miners]]
group_id = "scr-unacc"
site = "tver-1"
name = "ua-{{n}}"
count = 2
dialect = "braiins_os"
model = "Antminer S19 XP"
pool_account = "braiins:scrunacc"
worker = "w{{n}}"

[[miners]]
group_id = "scr-unacc"
site = "tver-1"
name = "ua-x"
dialect = "braiins_os"
model = "Antminer S19 XP"
nominal_ths = 100.0
hashing_from = {T1}
hashing_until = {T2}
pools = [{{ url = "stratum+tcp://btc.rogue-pool.example:3333", user = "hidden.x" }}]

# Three dialects that report power; pw-x (3 kW nominal, ~300 W idle) hashes only in [T1, T2).
[[miners]]
group_id = "scr-power"
site = "tver-1"
name = "pw-1"
dialect = "braiins_os"
model = "Antminer S19 XP"
nominal_ths = 140.0
power_w = 3000.0
pools = [{{ url = "stratum+tcp://stratum.braiins.com:3333", user = "scrpw.pw1" }}]

[[miners]]
group_id = "scr-power"
site = "tver-1"
name = "pw-2"
dialect = "whatsminer"
model = "M30S+_VE40"
nominal_ths = 100.0
power_w = 3000.0
pools = [{{ url = "stratum+tcp://stratum.braiins.com:3333", user = "scrpw.pw2" }}]

[[miners]]
group_id = "scr-power"
site = "tver-1"
name = "pw-x"
dialect = "avalon"
model = "AvalonMiner 1246"
nominal_ths = 90.0
power_w = 3000.0
hashing_from = {T1}
hashing_until = {T2}
pools = [{{ url = "stratum+tcp://stratum.braiins.com:3333", user = "scrpw.pwx" }}]

[[miners]]
group_id = "clean-c"
site = "tver-2"
name = "cc-{{n}}"
count = 2
dialect = "braiins_os"
model = "Antminer S19 XP"
power_w = 3000.0
pool_account = "braiins:cleanc"
worker = "c{{n}}"
"""


def build_scenario() -> Scenario:
    """The module's scenario (payouts are sent as requested: Braiins reports the request time as the send time)."""
    return parse_scenario(_toml(scenario_toml(0.0)))


def undeclared_payout_at() -> int:
    """When the latest payout to the undeclared address (before the fake clock's usual range) was sent."""
    scenario = build_scenario()
    account = scenario.account("braiins", "scrpay")
    return max(p.sent_at or 0 for p in truth.payout_schedule(scenario, account, BASE) if p.address == UNDECLARED)


def _toml(text: str) -> dict[str, Any]:
    import tomllib

    return tomllib.loads(text)


# --- group files ------------------------------------------------------------------------------------------

_IDENT = 'legal_name = "Test {id}"\ninn = "{inn}"\nregister_record = "R-{id}"\n'


def _site(site: str, region: str = "RU-TVE", zone: str = "Europe/Moscow") -> str:
    return f'[[sites]]\nid = "{site}"\nregion = "{region}"\ntimezone = "{zone}"\n\n'


def _braiins(account: str, username: str) -> str:
    return (
        f'[[pool_accounts]]\nid = "{account}"\nkind = "braiins"\ntoken_file = "../secrets/{username}.secret"\n'
        'base_url = "@POOLS@"\n\n'
    )


def _fleet(site: str, names: Sequence[str]) -> str:
    entries = "".join(f'  {{ address = "@MINER:{n}@", name = "{n}" }},\n' for n in names)
    head = f'[[miner_fleets]]\nid = "{site}-miners"\nkind = "cgminer"\nsite = "{site}"\ntimeout_s = 2\n'
    return f"{head}miners = [\n{entries}]\n\n"


_PERMIT = '[[permits]]\nversion = "v1"\nvalid_from = 2020-01-01\ncoins = ["BTC"]\npools = ["braiins"]\n'


def _day_versions(v2: str, others: str) -> str:
    """v1 up to the day before VERSION_DAY, v2 (with `v2`) for VERSION_DAY only, v3 from NEW_DAY (`others`)."""
    v1 = f'[[permits]]\nversion = "v1"\nvalid_from = 2020-01-01\nvalid_to = {VERSION_DAY - timedelta(days=1)}\n'
    v2_head = f'[[permits]]\nversion = "v2"\nvalid_from = {VERSION_DAY}\nvalid_to = {VERSION_DAY}\n'
    v3 = f'[[permits]]\nversion = "v3"\nvalid_from = {NEW_DAY}\n'
    return f"{v1}{others}\n{v2_head}{v2}\n{v3}{others}"


_BTC = 'coins = ["BTC"]\npools = ["braiins"]\n'

GROUPS: dict[str, str] = {
    "scr-whitelist": _site("tver-1")
    + _fleet("tver-1", ["wl-1"])
    + _PERMIT
    + 'stratum_hosts = ["stratum.braiins.com"]\n',
    "scr-blackout": _site("tver-1")
    + _braiins("scr-bo", "scrbo")
    + _PERMIT
    + f'blackouts = [{{ start = {_local(T1, MSK)}, end = {_local(T2, MSK)}, reason = "grid peak" }}]\n',
    "scr-payout": _site("tver-1") + _braiins("scr-pay", "scrpay") + _PERMIT + f'payout_addresses = ["{DECLARED}"]\n',
    "scr-quota": _site("tver-1") + _braiins("scr-quota", "scrquota") + _PERMIT + 'max_hashrate = "100 TH/s"\n',
    "scr-blind": _site("tver-1") + _braiins("scr-blind", "scrblind") + _PERMIT,
    "scr-unacc": _site("tver-1")
    + _braiins("scr-unacc", "scrunacc")
    + _fleet("tver-1", ["ua-1", "ua-2", "ua-x"])
    + _PERMIT,
    "scr-devices": _site("tver-1")
    + _fleet("tver-1", ["dc-1", "dc-2", "dc-3", "dc-extra"])
    + _PERMIT
    + "registered_devices = 3\n",
    "scr-validity": _site("tver-1")
    + _braiins("scr-valid", "scrvalid")
    + _PERMIT
    + f"valid_to = {NEW_DAY - timedelta(days=1)}\n",
    # v2 (one Moscow day) lists another region than the site's; v3 restores it.
    "scr-region": _site("tver-1")
    + _braiins("scr-region", "scrregion")
    + _day_versions(_BTC + 'regions = ["RU-MOW"]\n', _BTC + 'regions = ["RU-TVE"]\n'),
    # v2 (one Moscow day) lists only LTC while the account keeps mining BTC; v3 lists BTC again.
    "scr-coin": _site("tver-1")
    + _braiins("scr-coin", "scrcoin")
    + _day_versions('coins = ["LTC"]\npools = ["braiins"]\n', _BTC),
    "scr-power": _site("tver-1") + _fleet("tver-1", ["pw-1", "pw-2", "pw-x"]) + _PERMIT + 'max_power = "7.5 kW"\n',
    "scr-offline": _site("tver-1") + _braiins("scr-offline", "scroffline") + _PERMIT,
    "scr-drop": _site("tver-1") + _braiins("scr-drop", "scrdrop") + _PERMIT,
    # A permit change at midnight (Moscow): v2 drops EMCD and lowers the quota; the EMCD worker stopped first.
    "clean-a": _site("tver-1")
    + _braiins("clean-a-braiins", "cleana")
    + '[[pool_accounts]]\nid = "clean-a-emcd"\nkind = "emcd"\napi_key_file = "../secrets/cleanaemcd.secret"\n'
    'base_url = "@POOLS@"\n\n'
    + '[[permits]]\nversion = "v1"\nvalid_from = 2020-01-01\n'
    + f"valid_to = {NEW_DAY - timedelta(days=1)}\n"
    + f'coins = ["BTC"]\npools = ["braiins", "emcd"]\nmax_hashrate = "120 TH/s"\npayout_addresses = ["{DECLARED}"]\n'
    + 'regions = ["RU-TVE"]\n\n'
    + f'[[permits]]\nversion = "v2"\nvalid_from = {NEW_DAY}\ncoins = ["BTC"]\npools = ["braiins"]\n'
    + f'max_hashrate = "90 TH/s"\npayout_addresses = ["{DECLARED}"]\nregions = ["RU-TVE"]\n',
    # A permit blackout in Yekaterinburg's local time; the group stops before it and resumes after it.
    "clean-b": _site("ekb-1", "RU-SVE", "Asia/Yekaterinburg")
    + _braiins("clean-b-braiins", "cleanb")
    + _PERMIT
    + f"blackouts = [{{ start = {_local(EKB_BLACKOUT[0], EKB)}, end = {_local(EKB_BLACKOUT[1], EKB)} }}]\n"
    + 'regions = ["RU-SVE"]\n',
    # Miners on permitted stratum hosts, within device, power and hashrate quotas; the pool API goes stale for
    # two hours inside a declared maintenance notice.
    "clean-c": _site("tver-2")
    + _braiins("clean-c-braiins", "cleanc")
    + _fleet("tver-2", ["cc-1", "cc-2"])
    + "[[notices]]\n"
    + f"start = {_local(STALE_WINDOW[0] - 1800, MSK)}\nend = {_local(STALE_WINDOW[1] + 1800, MSK)}\n"
    + 'reason = "pool API maintenance"\nrules = ["collector_blind"]\n\n'
    + _PERMIT
    + 'stratum_hosts = ["stratum.braiins.com"]\nuser_patterns = ["cleanc.*"]\nregistered_devices = 2\n'
    + 'max_power = "10 kW"\nmax_hashrate = "110 TH/s"\nregions = ["RU-TVE"]\n',
}


class FakeClock:
    """A clock the test sets; the simulator, the miners and the collector all read it."""

    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@dataclass
class World:
    scenario: Scenario
    clock: FakeClock
    pools: SimulatorServer
    fleet: MinerFleet


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    scenario = build_scenario()
    clock = FakeClock(BASE)
    with SimulatorServer(scenario, clock=clock) as pools, MinerFleet(scenario, clock=clock) as fleet:
        yield World(scenario, clock, pools, fleet)


def write_config(dest: Path, world: World, groups: Sequence[str], *, am_url: str, main_extra: str) -> Path:
    """A main file and the named group files under `dest`, pointed at the module's simulator and miners."""
    (dest / "groups").mkdir(parents=True)
    (dest / "secrets").mkdir()
    (dest / "regions.toml").write_text((ROOT / "config" / "regions.toml").read_text())
    for account in world.scenario.accounts:
        (dest / "secrets" / f"{account.username}.secret").write_text(account.secret + "\n")
    for index, group in enumerate(groups):
        body = GROUPS[group].replace("@POOLS@", world.pools.url)
        for name, (host, port) in world.fleet.addresses().items():
            body = body.replace(f"@MINER:{name}@", f"{host}:{port}")
        header = f'id = "{group}"\n' + _IDENT.format(id=group, inn=7800000000 + index)
        zone = 'timezone = "Asia/Yekaterinburg"\n' if "Yekaterinburg" in body else ""
        (dest / "groups" / f"{group}.toml").write_text(header + zone + "\n" + body)
    main = dest / "minewatch.toml"
    main.write_text(
        f'[influxdb]\nurl = "http://127.0.0.1:9"\ndatabase = "unused"\n\n'
        f"[schedule]\ninterval_s = {P}\ntimeout_s = 5\n\n"
        f'[alerting]\nalertmanager_url = "{am_url}"\nstate_file = "state/alerts.json"\nkeep_firing_s = 0\n'
        f"resend_s = {RESEND}\n{main_extra}\n"
        "[rate_budgets.braiins]\nrequests_per_minute = 60000\nburst = 1000\n\n"
        "[rate_budgets.emcd]\nrequests_per_minute = 60000\nburst = 1000\n"
    )
    return main


@dataclass
class Timeline:
    """What one run saw: per round the findings, and every alert transition with its fake time."""

    findings: list[tuple[int, Finding]] = field(default_factory=list)
    transitions: list[tuple[int, str, str, str, str]] = field(default_factory=list)  # t, group, rule, subject, state
    am_seen: dict[tuple[str, str, str], int] = field(default_factory=dict)

    def first(self, group: str, rule: str, subject: str, state: str, after: int = 0) -> int | None:
        return next(
            (t for t, g, r, s, st in self.transitions if (g, r, s, st) == (group, rule, subject, state) and t >= after),
            None,
        )


def run(
    world: World,
    tmp: Path,
    groups: Sequence[str],
    alertmanager: AlertmanagerServer,
    *,
    start: int,
    end: int,
    step: int,
    main_extra: str,
    times: Sequence[int] = (),
) -> Timeline:
    """Step the fake clock from `start` to `end` (or through `times`): poll, judge, deliver; record all."""
    world.clock.t = times[0] if times else start
    config_path = write_config(tmp, world, groups, am_url=alertmanager.url, main_extra=main_extra)
    config = load_config(config_path, source_registry(), redactor=Redactor())
    collector = build_collector(
        config, source_registry(), MemorySink(), redactor=Redactor(), log=LOG, clock=world.clock
    )
    engine = build_compliance(collector, redactor=Redactor(), log=LOG, grace_s=0.0)
    timeline = Timeline()
    for t in times or range(start, end + 1, step):
        world.clock.t = t
        collect_once(collector)
        for group in collector.groups:
            before = {r.key: r.state for r in engine.book.records() if r.state != "resolved"}
            timeline.findings.extend((t, f) for f in engine.evaluate(group, t))
            after = {r.key: r.state for r in engine.book.records() if r.state != "resolved"}
            for key, state in after.items():
                if before.get(key) != state:
                    timeline.transitions.append((t, *key, state))
            for key in before.keys() - after.keys():
                timeline.transitions.append((t, *key, "resolved"))
        engine.delivery.flush()
        for t_, group_id, rule, subject, state in timeline.transitions:
            if state == "firing" and t_ == t:
                # Delivery is synchronous, but give Alertmanager a moment to index the alert.
                wait_for(
                    f"{rule} of {group_id} in Alertmanager",
                    lambda g=group_id, r=rule, s=subject: in_am(alertmanager, g, r, s),
                )
                timeline.am_seen.setdefault((group_id, rule, subject), t)
    return timeline


def in_am(alertmanager: AlertmanagerServer, group_id: str, rule: str, subject: str) -> bool:
    return any(
        a["labels"]["rule"] == rule and a["labels"].get("subject", "") == subject
        for a in alertmanager.alerts(filter=f'group_id="{group_id}"')
    )


def wait_for(what: str, check: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


RULE_SETTINGS = (
    f"hold_s = {HOLD}\n\n[compliance]\nstale_after_s = {STALE}\nhashrate_window_s = {WINDOW}\n"
    f"unaccounted_window_s = {WINDOW}\npayout_lookback_s = {T2 - T1}\n"
)


@dataclass(frozen=True)
class Case:
    """One scripted rule scenario: its group, the alert's subject, when it starts/stops, and inherent lags."""

    rule: str
    group: str
    subject: str
    t1: int = T1
    t2: int = T2
    start: int = BASE
    end: int = END
    fire_lag: int = 0  # what the rule itself needs beyond a poll and the hold (staleness, windows, pool means)
    resolve_lag: int = 0
    settings: str = ""  # more [compliance] settings
    times: tuple[int, ...] = ()  # the poll times, when not every P from start to end


def _day_times(t1: int, t2: int) -> tuple[int, ...]:
    """Every P around T1 and T2 (a day apart), every half hour in between (sources stay fresh every round)."""
    return (
        *range(t1 - 600, t1 + 1800, P),
        *range(t1 + 1800, t2 - 600, 1800),
        *range(t2 - 600, t2 + 1200 + 1, P),
    )


PAYOUT_T1 = undeclared_payout_at()
CASES = [
    Case("pool_whitelist", "scr-whitelist", "wl-1"),
    Case("blackout", "scr-blackout", "tver-1"),
    # T1: the undeclared payout is sent; T2: it leaves the lookback (payout_lookback_s = T2 − T1).
    Case(
        "payout_address",
        "scr-payout",
        UNDECLARED,
        t1=PAYOUT_T1,
        t2=PAYOUT_T1 + T2 - T1,
        start=PAYOUT_T1 - 20 * 60 - 30,
        end=PAYOUT_T1 + 3600,
    ),
    Case("hashrate_quota", "scr-quota", "", fire_lag=POOL_5M, resolve_lag=POOL_5M + WINDOW),
    Case("collector_blind", "scr-blind", "", fire_lag=STALE),
    Case("unaccounted_hashrate", "scr-unacc", "", fire_lag=WINDOW + POOL_5M, resolve_lag=DEVICE_MEAN),
    Case("device_count", "scr-devices", "", resolve_lag=DEVICE_MEAN),
    # The permit ends with the Moscow day; mining goes on past midnight, then stops (the pool's 5-min mean lags).
    Case(
        "permit_validity",
        "scr-validity",
        "",
        t1=MIDNIGHT,
        t2=MIDNIGHT + 25 * 60 + 30,
        start=MIDNIGHT - 10 * 60,
        end=MIDNIGHT + 45 * 60,
        resolve_lag=POOL_5M,
    ),
]
# Measured latencies of the cases below (fake seconds; polls fall 30 s after T1/T2, except on the midnights):
#   rule             T1→firing  T2→resolved  why
#   region               60          0       a poll on each midnight: pending at T1, firing one hold later
#   coin                 60          0       the same (v2 lists only LTC; the account mines BTC throughout)
#   power_quota          90         90       power follows the 1-min rate: ~7.6 kW at T1+30 (pending), ~8.9 kW
#                                            at T1+90; at T2+30 the half-idle draw is still near the quota
#   workers_offline     210         30       the last share (just before T1) is older than 120 s at T1+150,
#                                            firing one hold later; w2 is back (online) at the T2+30 poll
#   hashrate_drop       210        210       the pool's 5-min mean falls below 70 % of the hour's median at T1+150
#                                            (firing at T1+210) and climbs back over it at T2+210
# Rules a permit version (a calendar day in the group's zone) switches on and off: T1 and T2 are Moscow midnights
# a day apart, so a poll falls on each; v2 is in force for that one day only.
CASES += [
    Case("region", "scr-region", "tver-1", t1=DAY_T1, t2=DAY_T2, times=_day_times(DAY_T1, DAY_T2)),
    Case("coin", "scr-coin", "scr-coin", t1=DAY_T1, t2=DAY_T2, times=_day_times(DAY_T1, DAY_T2)),
    # Power is set by the miners' 1-minute rate: the first poll after T1 or T2 sees a half-way draw.
    Case("power_quota", "scr-power", "", fire_lag=P, resolve_lag=P),
    # Fires once the last share (just before T1) is older than offline_after_s; clears when w2 is back.
    Case(
        "workers_offline",
        "scr-offline",
        "scr-offline",
        fire_lag=OFFLINE_AFTER,
        settings=f"offline_after_s = {OFFLINE_AFTER}\n",
    ),
    # The pool's 5-min mean crosses 70 % of the median (of an hour's samples, so the run starts an hour early)
    # some minutes after T1, and climbs back over it some minutes after T2.
    Case(
        "hashrate_drop",
        "scr-drop",
        "",
        start=BASE - DROP_WINDOW,
        fire_lag=POOL_5M,
        resolve_lag=POOL_5M,
        settings=f"drop_window_s = {DROP_WINDOW}\ndrop_fraction = 0.3\n",
    ),
]
LATENCIES: dict[str, tuple[int, int]] = {}


@pytest.mark.parametrize("case", CASES, ids=[c.rule for c in CASES])
def test_a_scripted_violation_fires_in_time_reaches_alertmanager_and_resolves(
    case: Case, world: World, alertmanager: AlertmanagerServer, tmp_path: Path
) -> None:
    timeline = run(
        world,
        tmp_path,
        [case.group],
        alertmanager,
        start=case.start,
        end=case.end,
        step=P,
        main_extra=RULE_SETTINGS + case.settings,
        times=case.times,
    )
    key = (case.group, case.rule, case.subject)
    assert timeline.first(*key, "pending") is not None, f"never pending: {timeline.transitions}"
    assert timeline.first(*key, "pending", after=0) >= case.t1, "violation seen before it started"  # type: ignore[operator]
    fired = timeline.first(*key, "firing")
    assert fired is not None, f"never fired: {timeline.transitions}"
    assert fired - case.t1 <= P + HOLD + case.fire_lag, f"fired {fired - case.t1} s after T1"
    assert timeline.am_seen.get(key) == fired, "not in Alertmanager when it fired"
    resolved = timeline.first(*key, "resolved", after=fired)
    assert resolved is not None, f"never resolved: {timeline.transitions}"
    assert case.t2 <= resolved <= case.t2 + P + case.resolve_lag, f"resolved {resolved - case.t2} s after T2"
    wait_for("the alert to leave Alertmanager", lambda: not in_am(alertmanager, *key))
    # Only the scripted rule fired for this group: nothing else in the script breaks the permit.
    others = {(g, r, s) for _, g, r, s, st in timeline.transitions if st == "firing"} - {key}
    assert [o for o in others if o[1] not in ("workers_offline", "hashrate_drop")] == []
    LATENCIES[case.rule] = (fired - case.t1, resolved - case.t2)
    print(f"{case.rule}: fired {fired - case.t1} s after T1, resolved {resolved - case.t2} s after T2")


CLEAN_GROUPS = ["clean-a", "clean-b", "clean-c"]


def test_a_clean_scripted_day_raises_no_violation(
    world: World, alertmanager: AlertmanagerServer, tmp_path: Path
) -> None:
    """A permit change at midnight, a blackout the group keeps, a stale pool API under a notice: no violation."""
    settings = f"hold_s = 3600\n\n[compliance]\nstale_after_s = {STALE}\nhashrate_window_s = {WINDOW}\n"
    timeline = run(
        world,
        tmp_path,
        CLEAN_GROUPS,
        alertmanager,
        start=MIDNIGHT - 12 * 3600,
        end=MIDNIGHT + 12 * 3600,
        step=1800,
        main_extra=settings,
    )
    permit_violations = [
        (datetime.fromtimestamp(t, UTC).isoformat(), f.group_id, f.rule, f.subject, f.evidence)
        for t, f in timeline.findings
        if f.status == "violation" and not f.operational and f.rule != "collector_blind"
    ]
    assert permit_violations == []
    # The stale pool API is the one signal, inside its maintenance notice: recorded as excused, never notified.
    blind = [(t, st) for t, g, r, _, st in timeline.transitions if r == "collector_blind"]
    assert blind, "the stale pool API went unnoticed"
    assert {st for _, st in blind} <= {"excused", "resolved"}, blind
    assert all(STALE_WINDOW[0] <= t <= STALE_WINDOW[1] + 1800 for t, _ in blind), blind
    # The version change and the blackout were really crossed (the day was judged under both versions).
    versions = {f.permit_version for t, f in timeline.findings if f.group_id == "clean-a" and f.rule == "coin"}
    assert versions == {"v1", "v2"}
    blackout_ok = [
        f
        for t, f in timeline.findings
        if f.group_id == "clean-b" and f.rule == "blackout" and EKB_BLACKOUT[0] <= t < EKB_BLACKOUT[1]
    ]
    assert blackout_ok, "no round fell inside the blackout window"
    assert all(f.status == "ok" for f in blackout_ok), [f.evidence for f in blackout_ok]
    for group_id in CLEAN_GROUPS:
        assert [
            a["labels"] for a in alertmanager.alerts(filter=f'group_id="{group_id}"') if a["labels"]["kind"] == "permit"
        ] == []
