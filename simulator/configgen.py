"""Write a minewatch configuration that polls every account of a scenario: for tests, benchmarks, rehearsals."""

from __future__ import annotations

import shutil
from pathlib import Path

from simulator.scenario import Scenario

ROOT = Path(__file__).resolve().parent.parent


def write_config(
    dest: Path, scenario: Scenario, *, simulator_url: str, influx_url: str, database: str, schedule: str = ""
) -> Path:
    """A config for every account of `scenario`: one group file per group id, every pool permitted.

    Account ids are `<pool>-<username>` (a scenario may reuse a username on two pools).
    """
    (dest / "groups").mkdir(parents=True)
    (dest / "secrets").mkdir()
    shutil.copy(ROOT / "config" / "regions.toml", dest / "regions.toml")
    (dest / "minewatch.toml").write_text(
        f'[influxdb]\nurl = "{influx_url}"\ndatabase = "{database}"\n\n[schedule]\n{schedule}\n'
    )
    by_group: dict[str, list[str]] = {}
    for account in scenario.accounts:
        secret_file = dest / "secrets" / f"{account.pool}-{account.username}.secret"
        secret_file.write_text(account.secret + "\n")
        key = "token_file" if account.pool == "braiins" else "api_key_file"
        by_group.setdefault(account.group_id, []).append(
            f'[[pool_accounts]]\nid = "{account.pool}-{account.username}"\nkind = "{account.pool}"\nsite = "s1"\n'
            f'{key} = "../secrets/{secret_file.name}"\nbase_url = "{simulator_url}"\n'
        )
    for index, (group_id, accounts) in enumerate(sorted(by_group.items())):
        (dest / "groups" / f"{group_id}.toml").write_text(
            f'id = "{group_id}"\nlegal_name = "Test {group_id}"\ninn = "{7700000000 + index}"\n'
            f'register_record = "R-{index}"\n\n'
            '[[sites]]\nid = "s1"\nregion = "RU-TVE"\ntimezone = "Europe/Moscow"\n\n'
            + "\n".join(accounts)
            + '\n[[permits]]\nversion = "v1"\nvalid_from = 2020-01-01\ncoins = ["BTC"]\npools = ["braiins", "emcd"]\n'
        )
    return dest / "minewatch.toml"
