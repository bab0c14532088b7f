"""The report tests' world: one group in Europe/Berlin through October 2026 (DST ends on the 25th), and its data.

Every value is written by hand (loops over a fixed 10-minute grid), so each report column has a known answer.
Times are UTC unless named local. The Berlin month runs 2026-09-30T22:00Z .. 2026-10-31T23:00Z (745 hours).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from collector.adapters.registry import source_registry
from collector.config import AppConfig, load_config
from collector.redact import Redactor

INTERVAL_S = 600
MONTH_START = datetime(2026, 9, 30, 22, tzinfo=UTC)
MONTH_END = datetime(2026, 10, 31, 23, tzinfo=UTC)
GAP_START = datetime(2026, 10, 8, tzinfo=UTC)  # the week with no data at all (collector down)
GAP_END = datetime(2026, 10, 15, tzinfo=UTC)
PERMIT_CHANGE = datetime(2026, 10, 14, 22, tzinfo=UTC)  # 15 Oct 00:00 in Berlin (CEST)
D2_GAP = (datetime(2026, 10, 20, tzinfo=UTC), datetime(2026, 10, 21, tzinfo=UTC))  # miner d2 unreachable
POWER_SPIKE = datetime(2026, 10, 25, tzinfo=UTC)

ADDR_V1 = "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"
ADDR_V2 = "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy"
ADDR_UNDECLARED = "1BoatSLRHtKNngkdXEeobR76b53LETtpyT"

MAIN = """\
[influxdb]
url = "http://127.0.0.1:9"
database = "unused"

[schedule]
interval_s = 600
timeout_s = 20

[compliance]
stale_after_s = 1800

[registry]
groups_dir = "groups"
regions_file = "regions.toml"
"""

REGIONS = """\
[[bans]]
id = "test-autumn-berlin"
kind = "seasonal"
regions = ["DE-BE"]
season_start = "10-28"
season_end = "11-05"
valid_from = 2026-01-01
"""

GROUP = f"""\
id = "gamma"
legal_name = 'OOO "Gamma Hash"'
inn = "7701000001"
register_record = "7102500009077"
timezone = "Europe/Berlin"

[[sites]]
id = "ber-1"
region = "DE-BE"
timezone = "Europe/Berlin"
capacity = "10 kW"

[[devices]]
id = "s19-lot"
site = "ber-1"
model = "Antminer S19"
count = 3

[[pool_accounts]]
id = "main"
kind = "braiins"
site = "ber-1"
token_file = "../secrets/main.secret"
base_url = "http://127.0.0.1:9"

[[pool_accounts]]
id = "side"
kind = "emcd"
site = "ber-1"
api_key_file = "../secrets/side.secret"
base_url = "http://127.0.0.1:9"

[[pool_accounts]]
id = "spare"
kind = "braiins"
token_file = "../secrets/spare.secret"
base_url = "http://127.0.0.1:9"

[[miner_fleets]]
id = "ber-1-s19"
kind = "cgminer"
site = "ber-1"
dialect = "antminer"
miners = [{{ address = "127.0.0.1:4029", name = "d1" }}, {{ address = "127.0.0.1:4030", name = "d2" }}]

[[permits]]
version = "v1"
valid_from = 2026-01-01
valid_to = 2026-10-14
coins = ["BTC"]
pools = ["braiins"]
max_hashrate = "100 TH/s"
payout_addresses = ["{ADDR_V1}"]

[[permits.blackouts]]
start = 2026-10-05T18:00:00
end = 2026-10-05T22:00:00
sites = ["ber-1"]
reason = "grid peak"

[[permits]]
version = "v2"
valid_from = 2026-10-15
coins = ["BTC"]
pools = ["braiins"]
max_hashrate = "200 TH/s"
payout_addresses = ["{ADDR_V1}", "{ADDR_V2}"]
"""


def write_config(root: Path) -> AppConfig:
    (root / "groups").mkdir(parents=True)
    (root / "secrets").mkdir()
    for name in ("main", "side", "spare"):
        (root / "secrets" / f"{name}.secret").write_text(f"token-{name}\n")
    (root / "minewatch.toml").write_text(MAIN)
    (root / "regions.toml").write_text(REGIONS)
    (root / "groups" / "gamma.toml").write_text(GROUP)
    return load_config(root / "minewatch.toml", source_registry(), redactor=Redactor())


def ns(moment: datetime) -> int:
    return int(moment.timestamp()) * 1_000_000_000


def grid() -> Iterator[datetime]:
    """Every poll time of the month outside the week with no data."""
    t = MONTH_START
    while t < MONTH_END:
        if not GAP_START <= t < GAP_END:
            yield t
        t += timedelta(seconds=INTERVAL_S)


def _hashrate(t: datetime) -> float:
    if datetime(2026, 10, 2, 10, tzinfo=UTC) <= t < datetime(2026, 10, 2, 12, tzinfo=UTC):
        return 1.2e14  # above quota v1 (1e14): 12 rounds
    if datetime(2026, 10, 20, 6, tzinfo=UTC) <= t < datetime(2026, 10, 20, 7, tzinfo=UTC):
        return 2.5e14  # above quota v2 (2e14): 6 rounds, the peak
    return 9e13 if t < PERMIT_CHANGE else 1.5e14  # 1.5e14 would break v1 but is within v2


def seed_lines() -> list[str]:
    lines: list[str] = []
    # --- credits: one per UTC day at 00:00:dd except the gap week, plus three around the month's local edges
    for day in [*range(1, 8), *range(15, 32)]:
        t = datetime(2026, 10, day, 0, 0, day, tzinfo=UTC)
        lines.append(
            f"pool_earning,account=main,coin=BTC,group_id=gamma,pool=braiins amount_sats={1_000_000 + day}i {ns(t)}"
        )
    edges = [
        (datetime(2026, 9, 30, 22, 30, tzinfo=UTC), 312_500_000),  # 1 Oct 00:30 in Berlin: inside
        (datetime(2026, 10, 31, 22, 30, tzinfo=UTC), 555),  # 31 Oct 23:30 CET: inside
        (datetime(2026, 10, 31, 23, 30, tzinfo=UTC), 999),  # 1 Nov 00:30 CET: outside
        (datetime(2026, 9, 30, 21, 30, tzinfo=UTC), 444),  # 30 Sep 23:30 CEST: outside
    ]
    lines += [
        f"pool_earning,account=main,coin=BTC,group_id=gamma,pool=braiins amount_sats={v}i {ns(t)}" for t, v in edges
    ]
    for t, v in ((datetime(2026, 10, 20, tzinfo=UTC), 5000), (datetime(2026, 10, 21, tzinfo=UTC), 7000)):
        lines.append(f"pool_earning,account=side,coin=BTC,group_id=gamma,pool=emcd amount_sats={v}i {ns(t)}")
    # --- payouts
    payouts = [
        (datetime(2026, 10, 3, 12, tzinfo=UTC), 2_000_000, ADDR_V1, 1),
        (datetime(2026, 10, 20, 12, tzinfo=UTC), 1_500_000, ADDR_V2, 1),
        (datetime(2026, 10, 22, 12, tzinfo=UTC), 300_000, ADDR_UNDECLARED, 0),
        (datetime(2026, 9, 29, 12, tzinfo=UTC), 9_000_000, ADDR_V1, 1),  # September: outside
    ]
    for t, amount, address, declared in payouts:
        lines.append(
            f"pool_payout,account=main,coin=BTC,group_id=gamma,pool=braiins amount_sats={amount}i,"
            f'address="{address}",txid="tx{amount}",declared={declared}i {ns(t)}'
        )
    for t in grid():
        at = ns(t)
        hs = _hashrate(t)
        quota = 1e14 if t < PERMIT_CHANGE else 2e14
        lines.append(
            f"compliance,group_id=gamma status_code=0i,pool_total_hs={hs},pool_permitted_hs={hs - 1e13},"
            f"quota_hs={quota},quota_utilisation={hs / quota} {at}"
        )
        lines.append(f"compliance_pool,group_id=gamma,permitted=yes,pool=braiins hashrate_hs={hs - 1e13} {at}")
        lines.append(f"compliance_pool,group_id=gamma,permitted=no,pool=emcd hashrate_hs=1e13 {at}")
        lines.append(f"pool_account,account=main,coin=BTC,group_id=gamma,pool=braiins hashrate_hs={hs - 1e13} {at}")
        lines.append(f"pool_account,account=side,coin=BTC,group_id=gamma,pool=emcd hashrate_hs=1e13 {at}")
        d1_power = 9000.0 if t == POWER_SPIKE else 3000.0
        lines.append(f"device,device=d1,group_id=gamma,model=S19,site=ber-1 power_w={d1_power},online=1i {at}")
        d2_down = D2_GAP[0] <= t < D2_GAP[1]
        if not d2_down:
            online = 1 if t == datetime(2026, 10, 3, tzinfo=UTC) else 0  # online once: still counts as active
            lines.append(f"device,device=d2,group_id=gamma,model=S19,site=ber-1 power_w=3500.0,online={online}i {at}")
        main_failed = datetime(2026, 10, 3, tzinfo=UTC) <= t < datetime(2026, 10, 3, 1, 40, tzinfo=UTC)  # 10 polls
        for kind, target, ok in (
            ("braiins", "main", not main_failed),
            ("emcd", "side", True),
            ("cgminer", "d1", True),
            ("cgminer", "d2", not d2_down),
        ):
            lines.append(f"source_health,group_id=gamma,kind={kind},target={target} success={int(ok)}i,stale=0i {at}")
    # --- alert transitions (series group_id, rule, severity; subject in a field)
    transitions = [
        (datetime(2026, 9, 28, tzinfo=UTC), "pool_whitelist", "emcd", "firing"),  # fires before the month
        (datetime(2026, 10, 1, 22, tzinfo=UTC), "pool_whitelist", "emcd", "resolved"),  # 1440 min inside
        (datetime(2026, 10, 2, 10, 10, tzinfo=UTC), "hashrate_quota", "", "firing"),
        (datetime(2026, 10, 2, 12, tzinfo=UTC), "hashrate_quota", "", "resolved"),  # 110 min
        (datetime(2026, 10, 4, 9, tzinfo=UTC), "power_quota", "", "pending"),
        (datetime(2026, 10, 4, 9, 5, tzinfo=UTC), "power_quota", "", "resolved"),  # never fired: no episode
        (datetime(2026, 10, 20, 6, 5, tzinfo=UTC), "hashrate_quota", "", "firing"),
        (datetime(2026, 10, 20, 7, tzinfo=UTC), "hashrate_quota", "", "resolved"),  # 55 min
        (datetime(2026, 10, 22, 12, 5, tzinfo=UTC), "payout_address", ADDR_UNDECLARED, "firing"),  # to month end
        (datetime(2026, 11, 2, tzinfo=UTC), "payout_address", ADDR_UNDECLARED, "resolved"),  # after the month
    ]
    for t, rule, subject, state in transitions:
        lines.append(
            f'violation,group_id=gamma,rule={rule},severity=critical state="{state}",subject="{subject}" {ns(t)}'
        )
    # --- another group's data in the same database must not leak into gamma's rows
    lines.append(f"pool_earning,account=main,coin=BTC,group_id=gamma2,pool=braiins amount_sats=123i {ns(MONTH_START)}")
    return lines
