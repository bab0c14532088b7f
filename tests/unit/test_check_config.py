"""`minewatch check-config`: exit 0 on a good config; exit 2 with `file: key.path: reason` on a bad one.

Every bad case is one edit of tests/configs/good (copied to a temp dir). Whatever the input, the output never
holds a traceback or a secret's value.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from unit.support import FILE_SECRETS, REPO, CliRun, ConfigDir

CheckConfig = Callable[[Path], CliRun]
ALPHA = "groups/alpha.toml"
BETA = "groups/beta.toml"
MAIN = "minewatch.toml"
UNSET_ENV = "MINEWATCH_TEST_UNSET_TOKEN"
INLINE_SECRETS = ("SEKRIT-inline-token-5e5e", "SEKRIT-inline-influx-3b3b")
BRAIINS_FILE = 'token_file = "../secrets/alpha-braiins.secret"'


@dataclass(frozen=True)
class Case:
    """One bad config: how to make it, and the error line it must produce.

    `key` ending in `*` matches any key path starting with the rest; `reason` "" accepts any reason.
    """

    id: str
    edit: Callable[[ConfigDir], None]
    file: str
    key: str
    reason: str


def replace(file: str, old: str, new: str) -> Callable[[ConfigDir], None]:
    return lambda cfg: cfg.replace(file, old, new)


def write_bytes(file: str, data: bytes) -> Callable[[ConfigDir], None]:
    def edit(cfg: ConfigDir) -> None:
        cfg.file(file).write_bytes(data)

    return edit


CASES = [
    Case(
        "influxdb url without a scheme",
        replace(MAIN, 'url = "http://127.0.0.1:18086"', 'url = "127.0.0.1:18086"'),
        MAIN,
        "influxdb.url",
        "must be an http:// or https:// URL",
    ),
    Case(
        "pool base_url with credentials in it",
        replace(
            ALPHA,
            f'{BRAIINS_FILE}\nbase_url = "http://127.0.0.1:9"',
            f'{BRAIINS_FILE}\nbase_url = "http://u:pw@127.0.0.1:9"',
        ),
        ALPHA,
        "pool_accounts[0].base_url",
        "without a user or password",
    ),
    Case(
        "seasonal ban ending on a day that does not exist",
        replace("regions.toml", 'season_end = "03-15"', 'season_end = "13-45"'),
        "regions.toml",
        "bans*",
        "'13-45' is not a calendar day",
    ),
    Case(
        "unknown pool kind",
        replace(ALPHA, 'kind = "emcd"', 'kind = "f2poool"'),
        ALPHA,
        "pool_accounts[1].kind",
        "unknown pool kind 'f2poool'",
    ),
    Case(
        "overlapping permit versions",
        replace(ALPHA, "valid_from = 2026-08-01", "valid_from = 2026-07-01"),
        ALPHA,
        "permits[1].valid_from",
        "overlaps permit '2025-08'",
    ),
    Case(
        "permit valid_to before valid_from",
        replace(ALPHA, "valid_to = 2026-07-31", "valid_to = 2025-07-31"),
        ALPHA,
        "permits[0]",
        "valid_to 2025-07-31 is before valid_from 2025-08-01",
    ),
    Case(
        "bech32 address with a broken checksum",
        replace(ALPHA, "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t5"),
        ALPHA,
        "permits[0].payout_addresses[0]",
        "not a valid Bitcoin address",
    ),
    Case(
        "base58 address with a broken checksum",
        replace(BETA, "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy", "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLz"),
        BETA,
        "permits[0].payout_addresses[0]",
        "not a valid Bitcoin address",
    ),
    Case(
        "pool account at an undefined site",
        replace(ALPHA, 'kind = "braiins"\nsite = "irk-1"', 'kind = "braiins"\nsite = "irk-9"'),
        ALPHA,
        "pool_accounts[0].site",
        "undefined site 'irk-9'",
    ),
    Case(
        "device at an undefined site",
        replace(ALPHA, 'site = "irk-1"\nmodel', 'site = "irk-9"\nmodel'),
        ALPHA,
        "devices[0].site",
        "undefined site 'irk-9'",
    ),
    Case(
        "blackout window for an undefined site",
        replace(ALPHA, 'sites = ["irk-1"]', 'sites = ["irk-9"]'),
        ALPHA,
        "permits[0].blackouts[0].sites",
        "undefined site 'irk-9'",
    ),
    Case(
        "secret env var not set",
        replace(ALPHA, BRAIINS_FILE, f'token_env = "{UNSET_ENV}"'),
        ALPHA,
        "pool_accounts[0].token_env",
        f"environment variable {UNSET_ENV} is not set",
    ),
    Case(
        "secret file missing",
        replace(ALPHA, "alpha-braiins.secret", "no-such.secret"),
        ALPHA,
        "pool_accounts[0].token_file",
        "cannot read",
    ),
    Case(
        "secret file is a directory",
        replace(ALPHA, BRAIINS_FILE, 'token_file = "../secrets"'),
        ALPHA,
        "pool_accounts[0].token_file",
        "cannot read",
    ),
    Case(
        "secret file empty",
        write_bytes("secrets/alpha-braiins.secret", b"\n"),
        ALPHA,
        "pool_accounts[0].token_file",
        "is empty",
    ),
    Case(
        "secret file not UTF-8",
        write_bytes("secrets/alpha-braiins.secret", b"\xff\xfeSEKRIT-alpha-braiins-4f9c2e"),
        ALPHA,
        "pool_accounts[0].token_file",
        "alpha-braiins.secret",
    ),
    Case(
        "secret written inline in a pool account",
        replace(ALPHA, BRAIINS_FILE, f'{BRAIINS_FILE}\ntoken = "{INLINE_SECRETS[0]}"'),
        ALPHA,
        "pool_accounts[0]",
        "token must not be written in the config",
    ),
    Case(
        "secret written inline for influxdb",
        replace(MAIN, 'database = "minewatch_test"', f'database = "minewatch_test"\ntoken = "{INLINE_SECRETS[1]}"'),
        MAIN,
        "influxdb",
        "token must not be written in the config",
    ),
    Case(
        "both token_env and token_file",
        replace(ALPHA, BRAIINS_FILE, f'{BRAIINS_FILE}\ntoken_env = "{UNSET_ENV}"'),
        ALPHA,
        "pool_accounts[0]",
        "give token_env or token_file, not both",
    ),
    Case(
        "unknown key at a group's top level",
        replace(ALPHA, "legal_name =", "legal_nmae ="),
        ALPHA,
        "legal_nmae",
        "Extra inputs are not permitted",
    ),
    Case(
        "unknown key in a site",
        replace(ALPHA, 'capacity = "1.5 MW"', 'capacty = "1.5 MW"'),
        ALPHA,
        "sites[0].capacty",
        "Extra inputs are not permitted",
    ),
    Case(
        "unknown key in a permit",
        replace(ALPHA, 'max_hashrate = "1.2 PH/s"', 'max_hashrte = "1.2 PH/s"'),
        ALPHA,
        "permits[0].max_hashrte",
        "Extra inputs are not permitted",
    ),
    Case(
        "unknown key in a pool account (another pool's setting)",
        replace(
            ALPHA,
            'api_key_file = "../secrets/alpha-emcd.secret"',
            'api_key_file = "../secrets/alpha-emcd.secret"\nreward_days = 3',
        ),
        ALPHA,
        "pool_accounts[1].reward_days",
        "Extra inputs are not permitted",
    ),
    Case(
        "unknown key in the main file",
        replace(MAIN, "workers = 4", "wrokers = 4"),
        MAIN,
        "schedule.wrokers",
        "Extra inputs are not permitted",
    ),
    Case(
        "string where an int goes",
        replace(ALPHA, "count = 7", 'count = "seven"'),
        ALPHA,
        "devices[0].count",
        "valid integer",
    ),
    Case(
        "string where a number goes",
        replace(MAIN, "timeout_s = 20", 'timeout_s = "fast"'),
        MAIN,
        "schedule.timeout_s",
        "valid number",
    ),
    Case(
        "int where a time zone goes",
        replace(ALPHA, 'timezone = "Asia/Irkutsk"\n\n', "timezone = 5\n\n"),
        ALPHA,
        "timezone",
        "",
    ),
    Case(
        "unknown time zone",
        replace(ALPHA, 'timezone = "Asia/Irkutsk"\ncapacity', 'timezone = "Asia/Atlantis"\ncapacity'),
        ALPHA,
        "sites[0].timezone",
        "unknown time zone 'Asia/Atlantis'",
    ),
    Case(
        "bad region code",
        replace(ALPHA, 'region = "RU-IRK"', 'region = "Irkutsk"'),
        ALPHA,
        "sites[0].region",
        "should match pattern",
    ),
    Case(
        "bad power quantity",
        replace(ALPHA, 'capacity = "1.5 MW"', 'capacity = "12 parsecs"'),
        ALPHA,
        "sites[0].capacity",
        "unknown power unit",
    ),
    Case(
        "bad hashrate quantity",
        replace(ALPHA, 'max_hashrate = "1.2 PH/s"', 'max_hashrate = "12 parsecs"'),
        ALPHA,
        "permits[0].max_hashrate",
        "unknown hashrate unit",
    ),
    Case(
        "negative quantity",
        replace(ALPHA, 'capacity = "1.5 MW"', 'capacity = "-1.5 MW"'),
        ALPHA,
        "sites[0].capacity",
        "non-negative",
    ),
    Case("infinite quantity", replace(ALPHA, 'capacity = "1.5 MW"', "capacity = inf"), ALPHA, "sites[0].capacity", ""),
    Case(
        "infinite duration",
        replace(MAIN, "misfire_grace_s = 30", "misfire_grace_s = inf"),
        MAIN,
        "schedule.misfire_grace_s",
        "",
    ),
    Case(
        "timeout not below the interval",
        replace(MAIN, "timeout_s = 20", "timeout_s = 60"),
        MAIN,
        "schedule",
        "must be shorter than interval_s",
    ),
    Case("invalid TOML in a group file", replace(ALPHA, 'id = "alpha"', 'id = "alpha'), ALPHA, "", "not valid TOML"),
    Case("invalid TOML in the main file", replace(MAIN, "[schedule]", "[schedule"), MAIN, "", "not valid TOML"),
    Case("group file not UTF-8", write_bytes(BETA, b'id = "beta"\nlegal_name = "\xff\xfe"\n'), BETA, "", ""),
    Case(
        "missing group dir",
        replace(MAIN, 'groups_dir = "groups"', 'groups_dir = "no-such-dir"'),
        MAIN,
        "registry.groups_dir",
        "is not a directory",
    ),
    Case(
        "missing ban calendar",
        replace(MAIN, 'regions_file = "regions.toml"', 'regions_file = "no-such.toml"'),
        "no-such.toml",
        "",
        "file not found",
    ),
    Case(
        "duplicate group id across files",
        replace(BETA, 'id = "beta"\nlegal', 'id = "alpha"\nlegal'),
        BETA,
        "id",
        "group id 'alpha' also used in",
    ),
    Case(
        "duplicate account id in a group",
        replace(ALPHA, 'id = "alpha_emcd"', 'id = "alpha_main"'),
        ALPHA,
        "pool_accounts[1].id",
        "duplicate id 'alpha_main'",
    ),
    Case(
        'api = "v2" without org and bucket',
        replace(MAIN, 'database = "minewatch_test"', 'database = "minewatch_test"\napi = "v2"'),
        MAIN,
        "influxdb",
        'api = "v2" needs org, bucket',
    ),
    Case(
        "miner fleet at an undefined site",
        replace(ALPHA, 'site = "irk-1"\ndialect', 'site = "irk-9"\ndialect'),
        ALPHA,
        "miner_fleets[0].site",
        "undefined site 'irk-9'",
    ),
    Case(
        "miner fleet of an unknown kind",
        replace(ALPHA, 'kind = "cgminer"', 'kind = "luxos"'),
        ALPHA,
        "miner_fleets[0].kind",
        "unknown device kind 'luxos' (known: cgminer)",
    ),
    Case(
        "miner fleet with an unknown dialect",
        replace(ALPHA, 'dialect = "antminer"', 'dialect = "innosilicon"'),
        ALPHA,
        "miner_fleets[0].dialect",
        "",
    ),
    Case(
        "miner address range backwards",
        replace(ALPHA, "10.20.0.100-10.20.0.105", "10.20.0.105-10.20.0.100"),
        ALPHA,
        "miner_fleets[0]",
        "the range ends before it starts",
    ),
    Case(
        "miner address range too large",
        replace(ALPHA, "10.20.0.100-10.20.0.105", "10.20.0.0-10.20.255.255"),
        ALPHA,
        "miner_fleets[0]",
        "more than 4096 addresses in one range",
    ),
    Case(
        "miner listed twice",
        replace(ALPHA, '"10.20.0.11", name', '"10.20.0.101", name'),
        ALPHA,
        "miner_fleets[0]",
        "10.20.0.101:4028 is listed twice",
    ),
    Case(
        "miner address with a bad port",
        replace(ALPHA, "127.0.0.1:4029", "127.0.0.1:99999"),
        ALPHA,
        "miner_fleets[0]",
        "the port must be a number from 1 to 65535",
    ),
    Case(
        "miner fleet with an unknown key",
        replace(ALPHA, 'dialect = "antminer"', 'dialect = "antminer"\npassword = "root"'),
        ALPHA,
        "miner_fleets[0].password",
        "Extra inputs are not permitted",
    ),
    Case(
        "network feed of an unknown kind",
        replace(MAIN, 'kind = "mempool"', 'kind = "blockchair"'),
        MAIN,
        "network[0].kind",
        "unknown network kind 'blockchair' (known: mempool)",
    ),
    Case(
        "network feed polled too often",
        replace(MAIN, "interval_s = 300", "interval_s = 5"),
        MAIN,
        "network[0].interval_s",
        "",
    ),
    Case(
        "network feed with a bad base_url",
        replace(MAIN, 'base_url = "http://127.0.0.1:9/api"', 'base_url = "mempool.space"'),
        MAIN,
        "network[0].base_url",
        "must be an http:// or https:// URL",
    ),
    Case(
        "unknown key in the alerting section",
        replace(MAIN, "resend_s = 120", "resend_every_s = 120"),
        MAIN,
        "alerting.resend_every_s",
        "Extra inputs are not permitted",
    ),
    Case(
        "negative hold time",
        replace(MAIN, "hold_s = 0", "hold_s = -5"),
        MAIN,
        "alerting.hold_s",
        "greater than or equal to 0",
    ),
    Case(
        "negative per-rule hold time",
        replace(MAIN, "hashrate_quota = 300", "hashrate_quota = -300"),
        MAIN,
        "alerting.hold_s_by_rule.hashrate_quota",
        "greater than or equal to 0",
    ),
    Case(
        "per-rule keep-firing time that is not a number",
        replace(MAIN, "payout_address = 0", 'payout_address = "forever"'),
        MAIN,
        "alerting.keep_firing_s_by_rule.payout_address",
        "valid number",
    ),
    Case(
        "per-rule hold time for a rule name that cannot be one",
        replace(MAIN, "{ hashrate_quota = 300 }", '{ "Hashrate Quota" = 300 }'),
        MAIN,
        "alerting.hold_s_by_rule.Hashrate Quota*",
        "should match pattern",
    ),
    Case(
        "resend interval of zero",
        replace(MAIN, "resend_s = 120", "resend_s = 0"),
        MAIN,
        "alerting.resend_s",
        "greater than or equal to 1",
    ),
    Case(
        "infinite keep-firing time",
        replace(MAIN, "keep_firing_s = 60", "keep_firing_s = inf"),
        MAIN,
        "alerting.keep_firing_s",
        "",
    ),
    Case(
        "empty state file name",
        replace(MAIN, 'state_file = "state/alerts.json"', 'state_file = ""'),
        MAIN,
        "alerting.state_file",
        "at least 1 character",
    ),
    Case(
        "notice ending before it starts",
        replace(BETA, "end = 2026-02-01T12:00:00", "end = 2026-02-01T07:00:00"),
        BETA,
        "notices[0]",
        "end must be after start",
    ),
    Case(
        "notice with an offset",
        replace(BETA, "start = 2026-02-01T08:00:00", "start = 2026-02-01T08:00:00+03:00"),
        BETA,
        "notices[0]",
        "without an offset",
    ),
    Case(
        "notice for an undefined site",
        replace(BETA, 'sites = ["tver-1"]', 'sites = ["tver-9"]'),
        BETA,
        "notices[0].sites",
        "undefined site 'tver-9'",
    ),
    Case(
        "notice without a reason",
        replace(BETA, 'reason = "transformer maintenance"\n', ""),
        BETA,
        "notices[0].reason",
        "Field required",
    ),
    Case(
        "notice with an unknown key",
        replace(BETA, 'reason = "transformer maintenance"', 'reason = "transformer maintenance"\nsite = "tver-1"'),
        BETA,
        "notices[0].site",
        "Extra inputs are not permitted",
    ),
    Case(
        "notice with a start that is not a date-time",
        replace(BETA, "start = 2026-02-01T08:00:00", 'start = "soon"'),
        BETA,
        "notices[0].start",
        "",
    ),
    Case(
        "sources called stale between two polls",
        replace(MAIN, "[schedule]", "[compliance]\nstale_after_s = 70\n\n[schedule]"),
        MAIN,
        "",
        "compliance.stale_after_s (70) must be longer than schedule.interval_s + timeout_s (80)",
    ),
    Case(
        "blackout window mixing local and offset times",
        replace(ALPHA, "end = 2026-01-10T22:00:00", "end = 2026-01-10T22:00:00+08:00"),
        ALPHA,
        "permits[0].blackouts[0]*",
        "",
    ),
]


def _matches(line: str, prefix: str, key: str, reason: str) -> bool:
    head = f"{prefix}: {key[:-1]}" if key.endswith("*") else f"{prefix}: {key}: " if key else f"{prefix}: "
    return line.startswith(head) and reason in line


def test_the_test_config_passes(config_dir: ConfigDir, check_config: CheckConfig) -> None:
    run = check_config(config_dir.main)
    assert (run.code, run.errors) == (0, [])
    assert "ok: 2 groups, 3 pool accounts, 8 miners, 1 network feeds, 1 bans" in run.out


def test_the_demo_config_passes(check_config: CheckConfig) -> None:
    run = check_config(REPO / "config" / "demo" / "minewatch.toml")
    assert run.code == 0, run.err
    assert "ok:" in run.out
    assert "Traceback" not in run.output


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_config_exits_2_naming_file_key_and_reason(
    case: Case, config_dir: ConfigDir, check_config: CheckConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(UNSET_ENV, raising=False)
    case.edit(config_dir)

    run = check_config(config_dir.main)

    assert "Traceback" not in run.output, run.output[-600:]
    assert run.code == 2
    prefix = str(config_dir.file(case.file))
    assert any(_matches(line, prefix, case.key, case.reason) for line in run.errors), (
        f"expected `{prefix}: {case.key}: ...{case.reason}...` among:\n" + "\n".join(run.errors)
    )
    for secret in (*FILE_SECRETS, *INLINE_SECRETS):
        assert secret not in run.output


def test_every_error_of_a_run_is_printed(
    config_dir: ConfigDir, check_config: CheckConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(UNSET_ENV, raising=False)
    config_dir.replace(MAIN, 'database = "minewatch_test"', f'database = "minewatch_test"\ntoken_env = "{UNSET_ENV}"')
    config_dir.replace(ALPHA, 'kind = "emcd"', 'kind = "f2poool"')
    config_dir.replace(ALPHA, 'site = "irk-1"\nmodel', 'site = "irk-9"\nmodel')
    config_dir.replace(BETA, 'timezone = "Europe/Moscow"\ncapacity', 'timezone = "Europe/Tver"\ncapacity')

    run = check_config(config_dir.main)

    assert run.code == 2
    keys = sorted(line.split(": ")[1] for line in run.errors)
    assert keys == ["devices[0].site", "influxdb.token_env", "pool_accounts[1].kind", "sites[0].timezone"]


def test_no_secret_value_is_printed_even_when_other_keys_are_bad(
    config_dir: ConfigDir, check_config: CheckConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_secret = "SEKRIT-env-influx-0d0d0d"
    monkeypatch.setenv("MINEWATCH_TEST_INFLUX_TOKEN", env_secret)
    config_dir.replace(
        MAIN, 'database = "minewatch_test"', 'database = "minewatch_test"\ntoken_env = "MINEWATCH_TEST_INFLUX_TOKEN"'
    )
    config_dir.replace(BETA, 'region = "RU-TVE"', 'region = "Tver"')

    run = check_config(config_dir.main)

    assert run.code == 2
    assert len(run.errors) == 1
    for secret in (env_secret, *FILE_SECRETS):
        assert secret not in run.output


PRODUCTION = REPO / "config" / "minewatch.toml"
PRODUCTION_ENV = {
    "MINEWATCH_INFLUX_TOKEN": "SEKRIT-prod-influx-1a2b3c",
    "EXAMPLE_MINING_BRAIINS_TOKEN": "SEKRIT-prod-braiins-4d5e6f",
    "EXAMPLE_MINING_EMCD_KEY": "SEKRIT-prod-emcd-7a8b9c",
}


def test_the_production_example_fails_naming_each_missing_env_var(
    check_config: CheckConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in PRODUCTION_ENV:
        monkeypatch.delenv(name, raising=False)

    run = check_config(PRODUCTION)

    assert run.code == 2
    assert "Traceback" not in run.output
    for name in PRODUCTION_ENV:
        assert any(f"environment variable {name} is not set" in line for line in run.errors), name


def test_the_production_example_passes_once_its_env_vars_are_set(
    check_config: CheckConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in PRODUCTION_ENV.items():
        monkeypatch.setenv(name, value)

    run = check_config(PRODUCTION)

    assert run.code == 0, run.err
    for value in PRODUCTION_ENV.values():
        assert value not in run.output


def test_config_path_defaults_to_env_var(
    config_dir: ConfigDir, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from collector.cli import main

    config_dir.replace(ALPHA, 'region = "RU-IRK"', 'region = "Irkutsk"')
    monkeypatch.setenv("MINEWATCH_CONFIG", str(config_dir.main))

    code = main(["check-config"])

    assert code == 2
    assert f"{config_dir.file(ALPHA)}: sites[0].region: " in capsys.readouterr().err
