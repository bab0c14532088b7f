"""The exporter's optional basic auth: 401s with a challenge, counted refusals, config rules, a real Prometheus."""

from __future__ import annotations

import base64
import logging
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from exporter_support import Scrape
from exporter_world import ExporterWorld
from pydantic import ValidationError

from collector.adapters.registry import source_registry
from collector.cli import main as cli_main
from collector.config import ConfigInvalid, ExporterConfig, load_config
from collector.redact import Redactor
from exporters.prometheus import server as server_module
from exporters.prometheus.server import AUTH_REALM, ExporterServer, start_exporter
from simulator.local_servers import MissingBinary, PrometheusServer, ServerFailed

USER = "scraper"
PASSWORD = "S3CRET-exporter-pw:with colon é"
FAILURES = "minewatch_exporter_auth_failures_total"
REPO = Path(__file__).resolve().parents[2]
# RFC 7617: credentials are UTF-8 (the realm says charset="UTF-8"); requests would send a str as latin-1.
AUTH = {"Authorization": "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()}


@pytest.fixture(scope="module")
def guarded(world: ExporterWorld) -> Iterator[ExporterServer]:
    with start_exporter(world.collector, world.engine, port=0, basic_auth=(USER, PASSWORD)) as server:
        yield server


def _failures(server: ExporterServer, reason: str) -> float | None:
    text = requests.get(server.url, headers=AUTH, timeout=5).text
    return Scrape(text).value(FAILURES, reason=reason)


def test_right_credentials_get_the_metrics(guarded: ExporterServer) -> None:
    response = requests.get(guarded.url, headers=AUTH, timeout=5)

    assert response.status_code == 200
    assert "minewatch_build_info" in response.text
    assert Scrape(response.text).value(FAILURES, reason="missing") is not None


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "missing"),
        ({"Authorization": "Basic " + base64.b64encode(f"{USER}:wrong".encode()).decode()}, "invalid"),
        ({"Authorization": "Basic " + base64.b64encode(f"other:{PASSWORD}".encode()).decode()}, "invalid"),
        ({"Authorization": "Basic " + base64.b64encode(f"{USER}:{PASSWORD}x".encode()).decode()}, "invalid"),
        ({"Authorization": "Basic not-base64!!"}, "invalid"),
        ({"Authorization": "Bearer " + PASSWORD}, "invalid"),
        ({"Authorization": "Basic"}, "invalid"),
    ],
)
def test_missing_or_wrong_credentials_get_a_counted_401(
    guarded: ExporterServer, headers: dict[str, str], reason: str
) -> None:
    before = _failures(guarded, reason) or 0.0
    for path in ("/metrics", "/", "/nope"):
        response = requests.get(guarded.url.removesuffix("/metrics") + path, headers=headers, timeout=5)
        assert response.status_code == 401, path
        assert response.headers["WWW-Authenticate"].startswith(f'Basic realm="{AUTH_REALM}"')
        assert "minewatch_" not in response.text
        assert PASSWORD not in response.text
    assert _failures(guarded, reason) == before + 3


def test_the_password_is_never_logged(world: ExporterWorld, caplog: pytest.LogCaptureFixture) -> None:
    with (
        caplog.at_level(logging.DEBUG),
        start_exporter(world.collector, world.engine, port=0, basic_auth=(USER, PASSWORD)) as server,
    ):
        requests.get(server.url, auth=(USER, "nope"), timeout=5)
        requests.get(server.url, headers=AUTH, timeout=5)
    assert "basic auth" in caplog.text
    assert PASSWORD not in caplog.text
    assert "nope" not in caplog.text


def test_without_auth_no_refusal_is_counted(world: ExporterWorld) -> None:
    with start_exporter(world.collector, world.engine, port=0) as server:
        response = requests.get(server.url, timeout=5)
    assert response.status_code == 200
    assert FAILURES not in response.text


def test_a_non_loopback_bind_without_auth_warns(
    world: ExporterWorld, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Tests never listen beyond loopback: the warning comes before the bind, which is stubbed to fail here.
    def no_bind(*args: object, **kwargs: object) -> None:
        raise OSError(99, "not bound in tests")

    monkeypatch.setattr(server_module, "make_server", no_bind)
    for address in ("0.0.0.0", "192.0.2.10", "::"):
        caplog.clear()
        with caplog.at_level(logging.WARNING), pytest.raises(OSError, match="not bound in tests"):
            start_exporter(world.collector, address=address, port=0)
        assert "without basic auth" in caplog.text, address
    for address, auth in (("127.0.0.1", None), ("::1", None), ("0.0.0.0", (USER, PASSWORD))):
        caplog.clear()
        with caplog.at_level(logging.WARNING), pytest.raises(OSError, match="not bound in tests"):
            start_exporter(world.collector, address=address, port=0, basic_auth=auth)
        assert "without basic auth" not in caplog.text, address


def test_basic_auth_on_a_non_loopback_bind_warns_of_clear_text(
    world: ExporterWorld, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_bind(*args: object, **kwargs: object) -> None:
        raise OSError(99, "not bound in tests")

    monkeypatch.setattr(server_module, "make_server", no_bind)
    for address, warned in (("0.0.0.0", True), ("192.0.2.10", True), ("::", True), ("127.0.0.1", False)):
        caplog.clear()
        with caplog.at_level(logging.WARNING), pytest.raises(OSError, match="not bound in tests"):
            start_exporter(world.collector, address=address, port=0, basic_auth=(USER, PASSWORD))
        assert ("clear text" in caplog.text) is warned, address
        assert PASSWORD not in caplog.text


def test_credentials_are_compared_as_equal_length_digests(monkeypatch: pytest.MonkeyPatch) -> None:
    """No length leak: whatever is sent, `compare_digest` sees two SHA-256 digests."""
    seen: list[tuple[int, int]] = []
    real = server_module.hmac.compare_digest

    def recording(a: bytes, b: bytes) -> bool:
        seen.append((len(a), len(b)))
        return real(a, b)

    monkeypatch.setattr(server_module.hmac, "compare_digest", recording)
    auth = server_module.BasicAuth(USER, PASSWORD)
    for given in (f"{USER}:{PASSWORD}", "x", f"{USER}:{PASSWORD}" * 100, ""):
        header = "Basic " + base64.b64encode(given.encode()).decode()
        assert auth.check(header) == (None if given == f"{USER}:{PASSWORD}" else "invalid")
    assert len(seen) == 4
    assert all(lengths == (32, 32) for lengths in seen), seen


def test_a_disabled_exporter_does_not_need_its_password(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MW_TEST_UNSET_EXPORTER_PW", raising=False)
    root = tmp_path / "config"
    shutil.copytree(REPO / "tests" / "configs" / "good", root)
    main_file = root / "minewatch.toml"
    keys = 'enabled = false\nbasic_auth_username = "scraper"\nbasic_auth_password_env = "MW_TEST_UNSET_EXPORTER_PW"'
    main_file.write_text(main_file.read_text(encoding="utf-8") + f"\n[exporter]\n{keys}\n", encoding="utf-8")
    config = load_config(main_file, source_registry(), redactor=Redactor(), environ={})
    assert config.main.exporter.basic_auth is None  # not resolved: nothing to serve
    enabled = main_file.read_text(encoding="utf-8").replace("enabled = false", "enabled = true")
    main_file.write_text(enabled, encoding="utf-8")
    with pytest.raises(ConfigInvalid, match="MW_TEST_UNSET_EXPORTER_PW"):
        load_config(main_file, source_registry(), redactor=Redactor(), environ={})


def test_empty_credentials_are_refused_at_start(world: ExporterWorld) -> None:
    for credentials in (("", PASSWORD), (USER, ""), ("a:b", PASSWORD)):
        with pytest.raises(ValueError, match="basic auth needs"):
            start_exporter(world.collector, port=0, basic_auth=credentials)


# --- config -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        {"basic_auth_username": USER},
        {"basic_auth_password_env": "EXPORTER_PW"},
        {"basic_auth_password_file": "pw.txt"},
        {"basic_auth_username": USER, "basic_auth_password_env": "A", "basic_auth_password_file": "b"},
        {"basic_auth_username": USER, "basic_auth_password": PASSWORD},
        {"basic_auth_username": "a:b", "basic_auth_password_env": "A"},
    ],
)
def test_half_configured_basic_auth_is_a_config_error(raw: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as caught:
        ExporterConfig.model_validate(raw)
    assert PASSWORD not in str(caught.value)


def test_the_password_resolves_from_env_or_file_and_is_redacted(tmp_path: Path) -> None:
    (tmp_path / "pw.txt").write_text(PASSWORD + "\n")
    redactor = Redactor()
    by_file = ExporterConfig.model_validate({"basic_auth_username": USER, "basic_auth_password_file": "pw.txt"})
    by_file.resolve_secrets({}, tmp_path, redactor)
    by_env = ExporterConfig.model_validate({"basic_auth_username": USER, "basic_auth_password_env": "PW"})
    by_env.resolve_secrets({"PW": PASSWORD}, tmp_path, Redactor())

    assert by_file.basic_auth == by_env.basic_auth == (USER, PASSWORD)
    assert redactor(f"pw={PASSWORD}") == "pw=***"
    assert PASSWORD not in repr(by_file)
    assert PASSWORD not in str(by_file.model_dump())
    assert ExporterConfig().basic_auth is None


# --- a real Prometheus --------------------------------------------------------------------------------------


class _AuthPrometheus(PrometheusServer):
    """Prometheus scraping one job with `basic_auth: {username, password_file}`."""

    def __init__(self, workdir: Path, target: str, password_file: Path) -> None:
        self.auth_target = target
        self.password_file = password_file
        super().__init__(workdir, scrape_targets={"minewatch": [target]}, interval_s=1.0)

    def config_text(self) -> str:
        text = super().config_text()
        job = '"job_name": "minewatch",'
        auth = f'"basic_auth": {{"username": "{USER}", "password_file": "{self.password_file}"}},'
        assert job in text
        return text.replace(job, job + "\n      " + auth)


def _up(prometheus: PrometheusServer, wanted: float, timeout_s: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        targets = prometheus.api("targets")["activeTargets"]  # empty until the first scrape is scheduled
        result = prometheus.query('up{job="minewatch"}')
        if targets and result and float(result[0]["value"][1]) == wanted and targets[0]["health"] != "unknown":
            return dict(targets[0])
        assert time.monotonic() < deadline, f"up never became {wanted}: {targets}"
        time.sleep(0.2)


@pytest.mark.integration
@pytest.mark.parametrize(("password", "up"), [(PASSWORD, 1.0), ("wrong-password", 0.0)])
def test_a_real_prometheus_scrapes_with_basic_auth(
    tmp_path: Path, guarded: ExporterServer, password: str, up: float
) -> None:
    password_file = tmp_path / "password"
    password_file.write_text(password)  # Prometheus reads the file as is (no trailing newline)
    try:
        (tmp_path / "prom").mkdir()
        prometheus = _AuthPrometheus(tmp_path / "prom", f"127.0.0.1:{guarded.port}", password_file)
        prometheus.start()
    except (MissingBinary, ServerFailed) as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        target = _up(prometheus, up)
    finally:
        prometheus.stop()
    if up:
        assert target["health"] == "up", target.get("lastError")
    else:
        assert target["health"] == "down"
        assert "401" in target["lastError"]
        assert (_failures(guarded, "invalid") or 0) >= 1


@pytest.mark.parametrize(
    ("keys", "error"),
    [
        ('basic_auth_username = "scraper"\nbasic_auth_password_env = "MW_TEST_UNSET_EXPORTER_PW"', "password_env"),
        ('basic_auth_username = "scraper"', "basic auth needs both"),
        ('basic_auth_password_file = "pw.txt"', "basic auth needs both"),
    ],
)
def test_check_config_reports_half_or_unresolvable_basic_auth(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, keys: str, error: str
) -> None:
    monkeypatch.delenv("MW_TEST_UNSET_EXPORTER_PW", raising=False)
    root = tmp_path / "config"
    shutil.copytree(REPO / "tests" / "configs" / "good", root)
    main_file = root / "minewatch.toml"
    main_file.write_text(main_file.read_text(encoding="utf-8") + f"\n[exporter]\n{keys}\n", encoding="utf-8")

    code = cli_main(["check-config", "-c", str(main_file)])
    err = capsys.readouterr().err

    assert code == 2, err
    assert "exporter" in err
    assert error in err
