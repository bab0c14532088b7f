"""docker-compose.yml, the Dockerfile and config/compose/: validated without a Docker engine.

`docker-compose config` (Debian's docker-compose 1.29; `apt-get install docker-compose`) interpolates and
validates the file; the rendered result is then held to the stack's rules: published ports on loopback only,
every bind-mounted host path present in the repository, the demo only under its profile, and the configs
the containers run with valid and wired to the services they name. Nothing is started or pulled.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from collector.cli import main as minewatch

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
DATASOURCES = ROOT / "dashboards" / "provisioning" / "datasources" / "minewatch.yaml"
DASHBOARD_PROVIDERS = ROOT / "dashboards" / "provisioning" / "dashboards" / "minewatch.yaml"
GENERATED = ROOT / "dashboards" / "generated"
INFLUXDB_INIT = ROOT / "config" / "compose" / "influxdb-init"
GRAFANA_READER = INFLUXDB_INIT / "grafana-reader.sh"

# What the stack requires from its user, with stand-in values.
REQUIRED_ENV = {
    "MINEWATCH_INFLUX_TOKEN": "test-token-0123456789abcdef",
    "INFLUXDB_ADMIN_PASSWORD": "test-influx-password",
    "GRAFANA_ADMIN_PASSWORD": "test-grafana-password",
    "GRAFANA_INFLUX_PASSWORD": "test-grafana-influx-password",
}
# The secrets config/groups/example-mining.toml names (the production compose config's default groups).
EXAMPLE_GROUP_ENV = {"EXAMPLE_MINING_BRAIINS_TOKEN": "braiins-token", "EXAMPLE_MINING_EMCD_KEY": "emcd-key"}
DEMO_SERVICES = {"simulator", "demo-collector"}
ALWAYS_SERVICES = {"influxdb", "grafana", "collector"}
COMPOSE_CONFIGS = {"collector": "config/compose/minewatch.toml", "demo-collector": "config/compose/demo.toml"}


# --- running docker-compose ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def docker_compose() -> str:
    """The docker-compose binary; missing is a failure, never a skip."""
    found = shutil.which("docker-compose")
    if found is None:
        pytest.fail(
            "docker-compose is not installed: apt-get install docker-compose (Debian's 1.29 validates the file)",
            pytrace=False,
        )
    return found


def _env(**overrides: str | None) -> dict[str, str]:
    """The process environment without anything that steers compose, plus the required variables."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("COMPOSE_", "DOCKER_", "MINEWATCH_")) and key not in REQUIRED_ENV
    }
    env.update(REQUIRED_ENV)
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def _compose(binary: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [binary, "-f", str(COMPOSE_FILE), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def rendered(docker_compose: str) -> dict[str, Any]:
    """`docker-compose --profile demo config`: every service, interpolated, paths made absolute."""
    result = _compose(docker_compose, "--profile", "demo", "config", env=_env())
    assert result.returncode == 0, result.stderr
    document = yaml.safe_load(result.stdout)
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    """docker-compose.yml as written."""
    document = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def _services(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    services = document.get("services")
    assert isinstance(services, dict)
    return services


@pytest.mark.parametrize("profile_args", [(), ("--profile", "demo")], ids=["default", "demo"])
def test_compose_config_validates(docker_compose: str, profile_args: tuple[str, ...]) -> None:
    result = _compose(docker_compose, *profile_args, "config", "-q", env=_env())
    assert result.returncode == 0, f"docker-compose config -q failed:\n{result.stderr}"


@pytest.mark.parametrize("variable", sorted(REQUIRED_ENV))
def test_compose_config_names_a_missing_secret(docker_compose: str, variable: str) -> None:
    result = _compose(docker_compose, "config", "-q", env=_env(**{variable: None}))
    assert result.returncode != 0, f"docker-compose accepted the file without {variable}"
    assert f"set {variable}" in result.stderr, result.stderr
    for name, value in REQUIRED_ENV.items():
        if name != variable:
            assert value not in result.stderr, f"the error message shows the value of {name}"


# --- ports, mounts, profiles ------------------------------------------------------------------------------


def _published(port: Any) -> tuple[str, str, str]:
    """(host ip, host port, container port) of a port entry, in short or long syntax."""
    if isinstance(port, dict):
        return str(port.get("host_ip", "")), str(port.get("published", "")), str(port.get("target", ""))
    text = str(port).split("/", 1)[0]
    parts = text.rsplit(":", 2)
    if len(parts) == 3:
        return parts[0], parts[1], parts[2]
    return "", parts[0] if len(parts) == 2 else "", parts[-1]


def _mounts(service: dict[str, Any]) -> Iterator[tuple[str, str, bool]]:
    """(source, target, read_only) of every volume entry, in short or long syntax."""
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            yield str(volume.get("source", "")), str(volume["target"]), bool(volume.get("read_only", False))
        else:
            parts = str(volume).split(":")
            source, target = (parts[0], parts[1]) if len(parts) > 1 else ("", parts[0])
            yield source, target, len(parts) > 2 and "ro" in parts[2].split(",")


def _binds(service: dict[str, Any]) -> list[tuple[Path, str, bool]]:
    return [(Path(source), target, ro) for source, target, ro in _mounts(service) if source.startswith("/")]


def test_every_published_port_is_on_loopback(rendered: dict[str, Any]) -> None:
    seen_host_ports: dict[str, str] = {}
    for name, service in _services(rendered).items():
        for port in service.get("ports", []):
            host_ip, host_port, _ = _published(port)
            assert host_ip == "127.0.0.1", f"{name}: port {port!r} is not bound to 127.0.0.1"
            assert host_port not in seen_host_ports, f"{name} and {seen_host_ports[host_port]} both publish {host_port}"
            seen_host_ports[host_port] = name
    assert {"3000", "8086", "9108"} <= seen_host_ports.keys()


def test_every_bind_mount_exists_in_the_repository(rendered: dict[str, Any]) -> None:
    declared_volumes = set(rendered.get("volumes") or {})
    for name, service in _services(rendered).items():
        for source, target, _ in _mounts(service):
            if not source:
                continue
            if source.startswith("/"):
                path = Path(source)
                assert path.is_relative_to(ROOT), f"{name}: {source} is outside the repository"
                assert path.exists(), f"{name}: bind-mounted {path.relative_to(ROOT)} (at {target}) does not exist"
            else:
                assert source in declared_volumes, f"{name}: volume {source!r} is not declared"


def test_repository_content_is_mounted_read_only(rendered: dict[str, Any]) -> None:
    for name, service in _services(rendered).items():
        for path, target, read_only in _binds(service):
            assert read_only, f"{name}: {path} is mounted at {target} writable"


def test_grafana_mounts_provisioning_and_generated_dashboards(rendered: dict[str, Any]) -> None:
    binds = {target: path for path, target, _ in _binds(_services(rendered)["grafana"])}
    expected = {
        "/etc/grafana/provisioning/datasources": DATASOURCES.parent,
        "/etc/grafana/provisioning/dashboards": DASHBOARD_PROVIDERS.parent,
        "/var/lib/grafana/dashboards": GENERATED,
    }
    for target, host in expected.items():
        assert binds.get(target) == host, f"grafana: {target} should be {host.relative_to(ROOT)}"
    for required in (DATASOURCES, DASHBOARD_PROVIDERS):
        assert required.is_file(), f"{required.relative_to(ROOT)} is missing (Grafana provisioning, issue 5 item 3)"
    assert sorted(GENERATED.glob("*.json")), "dashboards/generated/ holds no dashboard JSON yet"


def test_demo_services_are_only_in_the_demo_profile(raw: dict[str, Any]) -> None:
    services = _services(raw)
    assert services.keys() == DEMO_SERVICES | ALWAYS_SERVICES
    for name in DEMO_SERVICES:
        assert services[name].get("profiles") == ["demo"], name
    for name in ALWAYS_SERVICES:
        assert "profiles" not in services[name], f"{name} must run without a profile"


def test_demo_collector_shares_the_simulators_loopback(rendered: dict[str, Any]) -> None:
    services = _services(rendered)
    demo = services["demo-collector"]
    assert demo.get("network_mode") == "service:simulator"
    assert "ports" not in demo, "a service in another's network namespace publishes through that service"
    command = services["simulator"]["command"]
    assert command[command.index("--listen") + 1] == "0.0.0.0:18400"
    assert "--allow-external" in command
    published = {_published(port)[2]: _published(port)[1] for port in services["simulator"]["ports"]}
    assert published.get("18400") == "18400"


def _container_file(service: dict[str, Any], container_path: str) -> Path | None:
    """The host file behind a container path, through the service's bind mounts (longest target first)."""
    for host, target, _ in sorted(_binds(service), key=lambda bind: len(bind[1]), reverse=True):
        if PurePosixPath(container_path).is_relative_to(target):
            return host / PurePosixPath(container_path).relative_to(target)
    return None


@pytest.mark.parametrize("service_name", ["collector", "simulator", "demo-collector"])
def test_files_named_in_commands_are_mounted(rendered: dict[str, Any], service_name: str) -> None:
    service = _services(rendered)[service_name]
    paths = [arg for arg in service["command"] if arg.startswith("/")]
    assert paths, f"{service_name}: its command names no file"
    for path in paths:
        host = _container_file(service, path)
        assert host is not None, f"{service_name}: {path} is on no bind mount"
        assert host.is_file(), f"{service_name}: {path} is {host}, which is not a file"


def test_collectors_run_the_compose_configs(rendered: dict[str, Any]) -> None:
    services = _services(rendered)
    for name, config in COMPOSE_CONFIGS.items():
        command = services[name]["command"]
        assert command[0] == "run", name
        assert _container_file(services[name], command[command.index("-c") + 1]) == ROOT / config


# --- the compose main configs ----------------------------------------------------------------------------


def _main_file(relative: str) -> dict[str, Any]:
    with (ROOT / relative).open("rb") as handle:
        return tomllib.load(handle)


@pytest.mark.parametrize("config", sorted(COMPOSE_CONFIGS.values()))
def test_compose_config_passes_check_config(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], config: str
) -> None:
    monkeypatch.setenv("MINEWATCH_INFLUX_TOKEN", REQUIRED_ENV["MINEWATCH_INFLUX_TOKEN"])
    if config.endswith("minewatch.toml"):  # its default groups are config/groups/: the example's secrets
        for key, value in EXAMPLE_GROUP_ENV.items():
            monkeypatch.setenv(key, value)
    assert minewatch(["check-config", "-c", str(ROOT / config)]) == 0, capsys.readouterr().err


def test_demo_config_needs_only_the_influx_token(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("MINEWATCH_INFLUX_TOKEN", raising=False)
    assert minewatch(["check-config", "-c", str(ROOT / COMPOSE_CONFIGS["demo-collector"])]) == 2
    assert "MINEWATCH_INFLUX_TOKEN" in capsys.readouterr().err


@pytest.mark.parametrize("service_name", sorted(COMPOSE_CONFIGS))
def test_compose_config_is_wired_to_the_stack(rendered: dict[str, Any], service_name: str) -> None:
    services = _services(rendered)
    main = _main_file(COMPOSE_CONFIGS[service_name])
    influx_env = services["influxdb"]["environment"]
    url = urlsplit(main["influxdb"]["url"])
    assert (url.hostname, url.port) == ("influxdb", 8086)
    assert main["influxdb"].get("api", "v1") == "v1"
    assert main["influxdb"]["database"] == influx_env["DOCKER_INFLUXDB_INIT_BUCKET"]
    token_env = main["influxdb"]["token_env"]
    service = services[service_name]
    assert service["environment"][token_env] == influx_env["DOCKER_INFLUXDB_INIT_ADMIN_TOKEN"]
    # The exporter listens on every interface inside, and its port is published (on loopback) by the service
    # that owns the network namespace.
    assert main["exporter"]["listen_address"] == "0.0.0.0"
    owner = service.get("network_mode", "").removeprefix("service:") or service_name
    targets = {_published(port)[2] for port in services[owner].get("ports", [])}
    assert str(main["exporter"]["port"]) in targets, f"{owner} does not publish the exporter's port"
    # The alert state lives on a volume, not in the read-only config mount.
    state = PurePosixPath(main["alerting"]["state_file"])
    volumes = {target for source, target, _ in _mounts(service) if source and not source.startswith("/")}
    assert any(state.is_relative_to(target) for target in volumes), f"{state} is on no volume"


# --- Grafana ---------------------------------------------------------------------------------------------


def test_grafana_login_is_safe(rendered: dict[str, Any]) -> None:
    environment = _services(rendered)["grafana"]["environment"]
    assert environment["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert environment["GF_USERS_ALLOW_SIGN_UP"] == "false"
    assert environment["GF_SECURITY_ADMIN_PASSWORD"] == REQUIRED_ENV["GRAFANA_ADMIN_PASSWORD"]
    # Grafana reads InfluxDB with its read-only login, never with the admin token.
    assert environment["GRAFANA_INFLUX_PASSWORD"] == REQUIRED_ENV["GRAFANA_INFLUX_PASSWORD"]
    assert "MINEWATCH_INFLUX_TOKEN" not in environment, "Grafana must not get InfluxDB's admin token"
    assert REQUIRED_ENV["MINEWATCH_INFLUX_TOKEN"] not in {str(value) for value in environment.values()}
    image = _services(rendered)["grafana"]["image"]
    assert re.fullmatch(r"grafana/grafana:\d+\.\d+\.\d+", image), f"pin a Grafana OSS release: {image}"


def test_datasource_points_at_the_compose_influxdb(rendered: dict[str, Any]) -> None:
    assert DATASOURCES.is_file(), f"{DATASOURCES.relative_to(ROOT)} is missing (Grafana provisioning)"
    document = yaml.safe_load(DATASOURCES.read_text(encoding="utf-8"))
    sources = {source.get("uid"): source for source in document.get("datasources", [])}
    assert "minewatch-influxdb" in sources, f"no datasource with uid minewatch-influxdb in {sorted(sources)}"
    source = sources["minewatch-influxdb"]
    url = urlsplit(source["url"])
    assert (url.hostname, url.port) == ("influxdb", 8086), source["url"]
    influx_env = _services(rendered)["influxdb"]["environment"]
    database = source.get("database") or source.get("jsonData", {}).get("dbName")
    assert database == influx_env["DOCKER_INFLUXDB_INIT_BUCKET"]
    # The read-only InfluxDB 1.x-API login the influxdb service creates, with the password Grafana is given.
    json_data, secure = source.get("jsonData", {}), source.get("secureJsonData", {})
    assert source.get("user") == "grafana", source.get("user")
    assert secure.get("password") == "${GRAFANA_INFLUX_PASSWORD}", secure
    assert not [key for key in json_data if re.fullmatch(r"httpHeaderName\d+", key)], "no custom auth header"
    assert "MINEWATCH_INFLUX_TOKEN" not in DATASOURCES.read_text(encoding="utf-8")
    grafana_env = _services(rendered)["grafana"]["environment"]
    assert grafana_env["GRAFANA_INFLUX_PASSWORD"] == influx_env["GRAFANA_INFLUX_PASSWORD"]


def _script_commands(path: Path) -> list[list[str]]:
    """The commands of a shell script: comments dropped, continuation lines joined, split into words."""
    commands: list[list[str]] = []
    pending = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        commands.append(shlex.split(pending + stripped, comments=True))
        pending = ""
    assert not pending, f"{path.name} ends inside a continued line"
    return [command for command in commands if command]


def test_influxdb_init_script_creates_a_read_only_grafana_login() -> None:
    assert GRAFANA_READER.is_file(), f"{GRAFANA_READER.relative_to(ROOT)} is missing (Grafana's InfluxDB login)"
    assert os.access(GRAFANA_READER, os.X_OK), f"{GRAFANA_READER.relative_to(ROOT)} is not executable (chmod 755)"
    text = GRAFANA_READER.read_text(encoding="utf-8")
    assert text.startswith("#!/bin/bash\n"), "the influxdb image runs it as an executable: bash shebang"
    syntax = subprocess.run(["bash", "-n", str(GRAFANA_READER)], capture_output=True, text=True, check=False)
    assert syntax.returncode == 0, syntax.stderr
    commands = _script_commands(GRAFANA_READER)
    assert ["set", "-euo", "pipefail"] in commands, "a failed step must fail the initialisation"
    creates = [command for command in commands if command[:4] == ["influx", "v1", "auth", "create"]]
    assert len(creates) == 1, f"expected one `influx v1 auth create`, got {creates}"
    [create] = creates

    def flag(name: str) -> str:
        assert create.count(name) == 1, f"`influx v1 auth create` needs one {name}: {create}"
        return create[create.index(name) + 1]

    assert flag("--username") == "grafana"
    assert flag("--password") == "${GRAFANA_INFLUX_PASSWORD}"
    assert flag("--read-bucket") == "${DOCKER_INFLUXDB_INIT_BUCKET_ID}"
    assert flag("--org") == "${DOCKER_INFLUXDB_INIT_ORG}"
    # Read permission only: never any write permission, in the command or anywhere else in the script.
    assert "--write-bucket" not in text
    assert not [word for command in commands for word in command if word.startswith("--write")]
    assert not [command for command in commands if command[:2] == ["influx", "auth"]], "no v2 token either"


def test_influxdb_runs_the_init_scripts_with_grafanas_password(rendered: dict[str, Any]) -> None:
    influxdb = _services(rendered)["influxdb"]
    binds = {target: (path, read_only) for path, target, read_only in _binds(influxdb)}
    assert binds.get("/docker-entrypoint-initdb.d") == (INFLUXDB_INIT, True), (
        f"influxdb: mount {INFLUXDB_INIT.relative_to(ROOT)} read-only at /docker-entrypoint-initdb.d"
    )
    scripts = sorted(INFLUXDB_INIT.glob("*.sh"))
    assert GRAFANA_READER in scripts
    for script in scripts:  # the image runs only executable *.sh files
        assert os.access(script, os.X_OK), f"{script.relative_to(ROOT)} is not executable"
    assert influxdb["environment"]["GRAFANA_INFLUX_PASSWORD"] == REQUIRED_ENV["GRAFANA_INFLUX_PASSWORD"]


def test_dashboard_provider_reads_the_mounted_directory() -> None:
    assert DASHBOARD_PROVIDERS.is_file(), f"{DASHBOARD_PROVIDERS.relative_to(ROOT)} is missing"
    document = yaml.safe_load(DASHBOARD_PROVIDERS.read_text(encoding="utf-8"))
    paths = [provider.get("options", {}).get("path") for provider in document.get("providers", [])]
    assert "/var/lib/grafana/dashboards" in paths, paths


# --- the Dockerfile --------------------------------------------------------------------------------------


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    logical: list[str] = []
    pending = ""
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical.append(pending + stripped)
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    return [(text.split(None, 1)[0].upper(), text.split(None, 1)[1] if " " in text else "") for text in logical]


def _words(arguments: str) -> list[str]:
    return [str(word) for word in json.loads(arguments)] if arguments.startswith("[") else shlex.split(arguments)


def _final_stage() -> list[tuple[str, str]]:
    instructions = _instructions()
    starts = [i for i, (instruction, _) in enumerate(instructions) if instruction == "FROM"]
    assert starts, "the Dockerfile has no FROM"
    return instructions[starts[-1] :]


def test_dockerfile_copies_only_what_exists() -> None:
    ignored = [
        line.strip().rstrip("/")
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    copies = [_words(args) for instruction, args in _instructions() if instruction in {"COPY", "ADD"}]
    assert copies
    for words in copies:
        if any(word.startswith("--from=") for word in words):
            continue  # from another stage, not the build context
        sources = [word for word in words if not word.startswith("--")][:-1]
        for source in sources:
            assert sorted(ROOT.glob(source)), f"COPY {source}: no such path"
            excluded = [pattern for pattern in ignored if fnmatch.fnmatch(source.rstrip("/"), pattern)]
            assert not excluded, f"COPY {source}: excluded by .dockerignore ({excluded})"


def test_dockerfile_runs_as_an_unprivileged_user() -> None:
    final = _final_stage()
    assert final[0][1].split()[0].startswith("python:3.11-slim"), final[0]
    users = [args.split(":")[0].strip() for instruction, args in final if instruction == "USER"]
    assert users, "the final stage sets no USER (it would run as root)"
    assert users[-1] not in {"root", "0"}


def test_dockerfile_runs_minewatch() -> None:
    final = dict(_final_stage())
    assert _words(final["ENTRYPOINT"]) == ["minewatch"]
    assert "9108" in final["EXPOSE"].split()
    assert "9108/metrics" in final["HEALTHCHECK"]


def test_dockerignore_keeps_local_state_out() -> None:
    ignored = {line.strip() for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()}
    assert {".venv", ".git", ".demo", "tests"} <= ignored
