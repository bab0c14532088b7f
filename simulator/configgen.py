"""Write a minewatch configuration that polls every account of a scenario: for tests, benchmarks, rehearsals."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from simulator.scenario import Scenario

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class AccountKeys:
    """How a pool's settings name the scenario account's credentials (secrets are written to files)."""

    secret_file: str  # the settings key for `Account.secret`
    api_secret_file: str | None = None  # ... for `Account.api_secret`, where the pool signs requests
    username: str | None = None  # ... for `Account.username`, where the pool wants the account name


# One entry per simulated pool; each matches that pool's settings model in collector/pools/<kind>/adapter.py.
ACCOUNT_KEYS: dict[str, AccountKeys] = {
    "braiins": AccountKeys("token_file"),
    "emcd": AccountKeys("api_key_file"),
    "f2pool": AccountKeys("token_file", username="mining_user_name"),
    "viabtc": AccountKeys("api_key_file", api_secret_file="secret_key_file"),
    "antpool": AccountKeys("api_key_file", api_secret_file="api_secret_file", username="user_id"),
}


def write_config(
    dest: Path,
    scenario: Scenario,
    *,
    simulator_url: str,
    influx_url: str,
    database: str,
    schedule: str = "",
    miners: Mapping[str, tuple[str, int]] | None = None,
    fleet_settings: str = "",
) -> Path:
    """A config for every account of `scenario`: one group file per group id, every pool permitted.

    Account ids are `<pool>-<username>` (a scenario may reuse a username on two pools). With `miners` (name ->
    (host, port) of a running MinerFleet) each group gets one fleet per site of its miners, named as in the
    scenario, plus `fleet_settings` (TOML lines). A scenario with `[network]` gets a mempool feed.
    """
    (dest / "groups").mkdir(parents=True)
    (dest / "secrets").mkdir()
    shutil.copy(ROOT / "config" / "regions.toml", dest / "regions.toml")
    network = ""
    if scenario.network is not None:
        network = f'\n[[network]]\nkind = "mempool"\ncoin = "BTC"\nbase_url = "{simulator_url}/api"\n'
    (dest / "minewatch.toml").write_text(
        f'[influxdb]\nurl = "{influx_url}"\ndatabase = "{database}"\n\n[schedule]\n{schedule}\n{network}'
    )
    by_group: dict[str, list[str]] = {group: [] for group in {m.group_id for m in scenario.miners} if miners}
    pools = sorted({account.pool for account in scenario.accounts})
    for account in scenario.accounts:
        keys = ACCOUNT_KEYS[account.pool]
        name = f"{account.pool}-{account.username}"
        lines = [
            "[[pool_accounts]]",
            f'id = "{name}"',
            f'kind = "{account.pool}"',
            'site = "s1"',
            f'base_url = "{simulator_url}"',
            f'{keys.secret_file} = "../secrets/{name}.secret"',
        ]
        (dest / "secrets" / f"{name}.secret").write_text(account.secret + "\n")
        if keys.api_secret_file is not None and account.api_secret is not None:
            (dest / "secrets" / f"{name}.api-secret").write_text(account.api_secret + "\n")
            lines.append(f'{keys.api_secret_file} = "../secrets/{name}.api-secret"')
        if keys.username is not None:
            lines.append(f'{keys.username} = "{account.username}"')
        by_group.setdefault(account.group_id, []).append("\n".join(lines) + "\n")
    for index, (group_id, accounts) in enumerate(sorted(by_group.items())):
        sites = ["s1", *sorted({m.site for m in scenario.miners if m.group_id == group_id and miners})]
        site_tables = "".join(
            f'[[sites]]\nid = "{site}"\nregion = "RU-TVE"\ntimezone = "Europe/Moscow"\n\n' for site in sites
        )
        (dest / "groups" / f"{group_id}.toml").write_text(
            f'id = "{group_id}"\nlegal_name = "Test {group_id}"\ninn = "{7700000000 + index}"\n'
            f'register_record = "R-{index}"\n\n'
            + site_tables
            + "\n".join(accounts)
            + _fleets(scenario, group_id, miners, fleet_settings)
            + '\n[[permits]]\nversion = "v1"\nvalid_from = 2020-01-01\ncoins = ["BTC"]\n'
            + f"pools = {pools!r}\n".replace("'", '"')
        )
    return dest / "minewatch.toml"


def _fleets(scenario: Scenario, group_id: str, miners: Mapping[str, tuple[str, int]] | None, settings: str) -> str:
    """One `[[miner_fleets]]` table per site of the group's miners, each miner named as in the scenario."""
    if not miners:
        return ""
    by_site: dict[str, list[str]] = {}
    for miner in scenario.miners:
        if miner.group_id == group_id:
            host, port = miners[miner.name]
            by_site.setdefault(miner.site, []).append(f'  {{ address = "{host}:{port}", name = "{miner.name}" }},')
    return "".join(
        f'\n[[miner_fleets]]\nid = "{site}-miners"\nkind = "cgminer"\nsite = "{site}"\n{settings}\n'
        + "miners = [\n"
        + "\n".join(entries)
        + "\n]\n"
        for site, entries in sorted(by_site.items())
    )
