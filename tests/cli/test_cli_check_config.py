"""`minewatch check-config` as a subprocess: a broken demo config exits 2 and never prints a secret's value.

The secret sits in a file the config names; the error is in a group file. The nastier cases paste the secret
into a field whose error message quotes the value, as an operator mixing up two fields would.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from cli_support import CliRunner, MakeConfig
from demo_config import DemoConfig

SECRET = "SEKRIT-cli-sibgaz-7c41e9"


def edit(config: DemoConfig, group_id: str, old: str, new: str) -> None:
    """Replace the first `old` in a group file."""
    path = config.group_file(group_id)
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def typo_in_secret_owner(config: DemoConfig) -> None:
    edit(config, "sibgaz", "legal_name =", "legal_nmae =")


def secret_pasted_as_site(config: DemoConfig) -> None:
    edit(config, "baikal", 'site = "ulan-ude-1"', f'site = "{SECRET}"')


def secret_pasted_while_owner_broken(config: DemoConfig) -> None:
    secret_pasted_as_site(config)
    typo_in_secret_owner(config)


@pytest.mark.parametrize(
    ("break_config", "expected"),
    [
        pytest.param(typo_in_secret_owner, "sibgaz.toml: legal_nmae: ", id="typo in the group that owns the secret"),
        pytest.param(secret_pasted_as_site, "baikal.toml: pool_accounts[0].site: ", id="secret pasted as a site"),
        pytest.param(
            secret_pasted_while_owner_broken,
            "baikal.toml: pool_accounts[0].site: ",
            id="secret pasted as a site while its owner group is invalid",
        ),
    ],
)
def test_check_config_exits_2_and_never_shows_the_secret(
    cli: CliRunner, make_config: MakeConfig, break_config: Callable[[DemoConfig], None], expected: str
) -> None:
    config = make_config()
    config.secret_file("sibgaz-braiins.secret").write_text(SECRET + "\n", encoding="utf-8")
    break_config(config)

    run = cli.run("check-config", "-c", str(config.main), timeout_s=20)

    assert run.code == 2, str(run)
    assert expected in run.err
    assert SECRET not in run.out
    assert SECRET not in run.err
    assert "Traceback" not in run.err
