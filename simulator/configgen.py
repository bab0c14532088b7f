"""Write a minewatch configuration that polls every account of a scenario: for tests, benchmarks, rehearsals."""

from __future__ import annotations

import shutil
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
        (dest / "groups" / f"{group_id}.toml").write_text(
            f'id = "{group_id}"\nlegal_name = "Test {group_id}"\ninn = "{7700000000 + index}"\n'
            f'register_record = "R-{index}"\n\n'
            '[[sites]]\nid = "s1"\nregion = "RU-TVE"\ntimezone = "Europe/Moscow"\n\n'
            + "\n".join(accounts)
            + '\n[[permits]]\nversion = "v1"\nvalid_from = 2020-01-01\ncoins = ["BTC"]\n'
            + f"pools = {pools!r}\n".replace("'", '"')
        )
    return dest / "minewatch.toml"
