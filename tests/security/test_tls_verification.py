"""TLS verification stays on: pools with an untrusted certificate fail a poll; only a CA bundle trusts one."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from demo_config import copy_demo_config
from security_support import REPO, HttpsServer, clean_env, https_server, run_minewatch

from collector.compliance.delivery import DeliveryFailed, _JsonPoster
from collector.redact import Redactor
from simulator.local_servers import free_port


@pytest.fixture
def untrusted(tmp_path: Path) -> Iterator[HttpsServer]:
    with https_server(tmp_path) as server:
        yield server


def test_a_pool_behind_an_untrusted_certificate_fails_its_poll_as_unreachable(
    tmp_path: Path, untrusted: HttpsServer
) -> None:
    config = copy_demo_config(
        tmp_path / "config",
        simulator_url=untrusted.url,
        influx_url=f"http://127.0.0.1:{free_port()}",
        database="unused",
        network=False,
    )
    run = run_minewatch("collect", "--once", "--print", "-c", str(config.main), env=clean_env())

    assert run.code == 1, str(run)
    lines = [line for line in run.out.splitlines() if line]
    assert lines, str(run)
    # Nothing from a pool is written: only each account's failed source_health point (besides the permit and
    # site points, which come from the config, not from a poll).
    measurements = {line.split(",", 1)[0] for line in lines}
    assert measurements == {"source_health", "permit", "site"}, str(run)
    health = [line for line in lines if line.startswith("source_health,")]
    assert len(health) == len(config.accounts), str(run)
    for line in health:
        assert "success=0i" in line
        assert 'error_kind="unreachable"' in line
    failures = [line for line in run.err.splitlines() if "poll failed" in line]
    assert len(failures) == len(config.accounts), str(run)
    for line in failures:
        assert "(unreachable)" in line
        assert re.search(r"TLS certificate verification failed \(.*certificate.*\)", line), line
    # The handshake failed: not one request reached the server.
    assert untrusted.requests_seen == []


def test_no_code_path_turns_verification_off() -> None:
    pattern = re.compile(
        r"verify\s*=\s*False|\.verify\s*=\s*False|CERT_NONE|check_hostname\s*=\s*False|_create_unverified"
    )
    offenders = [
        f"{path.relative_to(REPO)}:{number}: {line.strip()}"
        for package in ("collector", "exporters", "simulator", "dashboards")
        for path in sorted((REPO / package).rglob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert offenders == []


def test_a_notifier_trusts_a_private_certificate_only_through_its_ca_bundle(untrusted: HttpsServer) -> None:
    url = untrusted.url + "/hook"
    with requests.Session() as session:
        default = _JsonPoster(url, session, timeout_s=5.0, redact=Redactor())
        with pytest.raises(DeliveryFailed) as failed:
            default.post({"alert": "x"})
        assert failed.value.reason == "unreachable"
        assert untrusted.requests_seen == []

        trusted = _JsonPoster(url, session, timeout_s=5.0, redact=Redactor(), ca_bundle=str(untrusted.cert))
        trusted.post({"alert": "x"})
    assert untrusted.requests_seen == ["POST /hook"]
