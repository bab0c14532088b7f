"""Copies of the shipped configs, pointed at a test simulator and a test InfluxDB on free loopback ports."""

from __future__ import annotations

import re
import shutil
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REPO = ROOT
DEMO_CONFIG = ROOT / "config" / "demo"
DEMO_SIMULATOR_URL = "http://127.0.0.1:18400"
DEMO_INFLUX_URL = "http://127.0.0.1:18086"


@dataclass(frozen=True)
class DemoGroup:
    """What a demo group file declares: its account ids (with their pool kind) and its site ids."""

    id: str
    accounts: dict[str, str]
    sites: tuple[str, ...]


@dataclass(frozen=True)
class DemoConfig:
    """A copy of config/demo in a temp dir; `main` is the file to pass to `-c`."""

    main: Path
    groups: dict[str, DemoGroup] = field(default_factory=dict)

    @property
    def accounts(self) -> set[tuple[str, str]]:
        """Every (group id, account id)."""
        return {(group.id, account) for group in self.groups.values() for account in group.accounts}

    def group_file(self, group_id: str) -> Path:
        return self.main.parent / "groups" / f"{group_id}.toml"

    def secret_file(self, name: str) -> Path:
        return self.main.parent / "secrets" / name


def _set_key(text: str, section: str, key: str, value: str) -> str:
    """Set `key = value` in `[section]` of a TOML text (replacing it there, else adding it under the header)."""
    header = re.search(rf"^\[{section}\]\n", text, flags=re.MULTILINE)
    assert header is not None, f"no [{section}] in the demo config"
    end = re.search(r"^\[", text[header.end() :], flags=re.MULTILINE)
    body_end = header.end() + (end.start() if end else len(text) - header.end())
    body = text[header.end() : body_end]
    if re.search(rf"^{key} = ", body, flags=re.MULTILINE):
        body = _replace_once(body, rf"^{key} = .*$", f"{key} = {value}")
    else:
        body = f"{key} = {value}\n" + body
    return text[: header.end()] + body + text[body_end:]


def _replace_once(text: str, pattern: str, replacement: str) -> str:
    new, count = re.subn(pattern, replacement, text, flags=re.MULTILINE)
    assert count == 1, f"{pattern!r} matched {count} times in the demo config"
    return new


_MINER_ENTRY = re.compile(r'\{ address = "[^"]+", name = "([^"]+)" \}')
_FLEET_BLOCK = re.compile(r"^# The site's miners.*?^\]\n", flags=re.MULTILINE | re.DOTALL)


def _repoint_miners(text: str, miners: Mapping[str, tuple[str, int]] | None) -> str:
    if miners is None:
        return _FLEET_BLOCK.sub("", text)

    def repoint(match: re.Match[str]) -> str:
        host, port = miners[match.group(1)]
        return f'{{ address = "{host}:{port}", name = "{match.group(1)}" }}'

    return _MINER_ENTRY.sub(repoint, text)


def copy_demo_config(
    dest: Path,
    *,
    simulator_url: str,
    influx_url: str,
    database: str,
    influx: Mapping[str, str] | None = None,
    schedule: Mapping[str, str] | None = None,
    alerting: Mapping[str, str] | None = None,
    exporter: Mapping[str, str] | None = None,
    extra: str = "",
    miners: Mapping[str, tuple[str, int]] | None = None,
    network: bool = True,
) -> DemoConfig:
    """Copy config/demo and config/regions.toml under `dest` (same relative layout) and repoint them.

    `influx`, `schedule`, `alerting` and `exporter` replace or add keys of `[influxdb]` / `[schedule]` /
    `[alerting]` / `[exporter]` (values are TOML text; the alert state file and the spool always move under
    `dest`, and the exporter listens on a free port unless told otherwise: tests run side by side);
    `extra` is appended to the main file (e.g. `[rate_budgets.braiins]`). `miners` (name -> (host, port) of a
    running MinerFleet) repoints the miner fleets; without it the fleets are left out. `network=False` leaves
    out the mempool feed (for simulators whose scenario has no `[network]`).
    """
    shutil.copytree(DEMO_CONFIG, dest / "demo")
    shutil.copy(REPO / "config" / "regions.toml", dest / "regions.toml")
    groups: dict[str, DemoGroup] = {}
    for group_file in sorted((dest / "demo" / "groups").glob("*.toml")):
        text = group_file.read_text(encoding="utf-8")
        assert DEMO_SIMULATOR_URL in text, f"{group_file.name} no longer points at {DEMO_SIMULATOR_URL}"
        group_file.write_text(
            _repoint_miners(text.replace(DEMO_SIMULATOR_URL, simulator_url), miners), encoding="utf-8"
        )
        data = tomllib.loads(text)
        groups[data["id"]] = DemoGroup(
            id=data["id"],
            accounts={account["id"]: account["kind"] for account in data["pool_accounts"]},
            sites=tuple(site["id"] for site in data["sites"]),
        )
    main = dest / "demo" / "minewatch.toml"
    text = main.read_text(encoding="utf-8")
    text = _replace_once(text, rf'^url = "{re.escape(DEMO_INFLUX_URL)}"$', f'url = "{influx_url}"')
    text = _replace_once(text, r'^database = ".*"$', f'database = "{database}"')
    text = text.replace(DEMO_SIMULATOR_URL, simulator_url)
    if not network:
        text = _replace_once(text, r"^\[\[network\]\]\n(?:\w+ = .*\n)+", "")
    alerting = {"state_file": '"state/alerts.json"', **(alerting or {})}
    exporter = {"port": "0", **(exporter or {})}
    for section, values in (
        ("spool", {"dir": '"state/spool"'}),  # each copy its own (locked) spool, never the shared .demo/
        ("influxdb", influx or {}),
        ("schedule", schedule or {}),
        ("alerting", alerting),
        ("exporter", exporter),
    ):
        for key, value in values.items():
            text = _set_key(text, section, key, value)
    main.write_text(text + "\n" + extra, encoding="utf-8")
    return DemoConfig(main=main, groups=groups)
