"""Copies of the shipped configs, pointed at a test simulator and a test InfluxDB on free loopback ports."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from simulator.scenario import Scenario

ROOT = Path(__file__).resolve().parent.parent
DEMO_SIMULATOR_URL = "http://127.0.0.1:18400"
DEMO_INFLUX_URL = "http://127.0.0.1:18086"


def demo_config_copy(tmp: Path, *, simulator_url: str, influx_url: str, database: str, extra_main: str = "") -> Path:
    """Copy config/demo (and the ban calendar beside it) into `tmp`; return the main file's path."""
    shutil.copytree(ROOT / "config" / "demo", tmp / "demo")
    shutil.copy(ROOT / "config" / "regions.toml", tmp / "regions.toml")
    for group_file in (tmp / "demo" / "groups").glob("*.toml"):
        group_file.write_text(group_file.read_text().replace(DEMO_SIMULATOR_URL, simulator_url))
    main = tmp / "demo" / "minewatch.toml"
    text = main.read_text().replace(DEMO_INFLUX_URL, influx_url)
    text = re.sub(r'(?m)^database = ".*"$', f'database = "{database}"', text)
    main.write_text(text + extra_main)
    return main


def scenario_config(
    tmp: Path, scenario: Scenario, *, simulator_url: str, influx_url: str, database: str, schedule: str = ""
) -> Path:
    """A config for every account of `scenario`: one group file per group id, every pool permitted.

    Account ids are `<pool>-<username>` (a scenario may reuse a username on two pools).
    """
    (tmp / "groups").mkdir(parents=True)
    (tmp / "secrets").mkdir()
    shutil.copy(ROOT / "config" / "regions.toml", tmp / "regions.toml")
    (tmp / "minewatch.toml").write_text(
        f'[influxdb]\nurl = "{influx_url}"\ndatabase = "{database}"\n\n[schedule]\n{schedule}\n'
    )
    by_group: dict[str, list[str]] = {}
    for account in scenario.accounts:
        secret_file = tmp / "secrets" / f"{account.pool}-{account.username}.secret"
        secret_file.write_text(account.secret + "\n")
        key = "token_file" if account.pool == "braiins" else "api_key_file"
        by_group.setdefault(account.group_id, []).append(
            f'[[pool_accounts]]\nid = "{account.pool}-{account.username}"\nkind = "{account.pool}"\nsite = "s1"\n'
            f'{key} = "../secrets/{secret_file.name}"\nbase_url = "{simulator_url}"\n'
        )
    for index, (group_id, accounts) in enumerate(sorted(by_group.items())):
        (tmp / "groups" / f"{group_id}.toml").write_text(
            f'id = "{group_id}"\nlegal_name = "Test {group_id}"\ninn = "{7700000000 + index}"\n'
            f'register_record = "R-{index}"\n\n'
            '[[sites]]\nid = "s1"\nregion = "RU-TVE"\ntimezone = "Europe/Moscow"\n\n'
            + "\n".join(accounts)
            + '\n[[permits]]\nversion = "v1"\nvalid_from = 2020-01-01\ncoins = ["BTC"]\npools = ["braiins", "emcd"]\n'
        )
    return tmp / "minewatch.toml"
