"""No secret ever leaves the process: not on stdout/stderr, in logs, metrics, reports, state or spool files.

One full config (the demo's, copied) gets distinctive secrets in environment variables and secret files —
InfluxDB password, pool tokens and API keys, the exporter's basic-auth password — and (checked apart) a token
in the webhook URL's path.
Then everything that tends to print secrets is provoked: pools answering 401/403 and a pool echoing the
request (key and all) in a 500 body; an InfluxDB refusing the password and one that is unreachable; a webhook
target that is down; a bad config value next to a secret (and a secret pasted into a wrong key);
`check-config`, `collect --print`, `collect`, `run` (scraped with and without credentials) and `report
monthly`. Every text produced — output, every file under the run's temp dir (state, spool, logs, reports; PDF
text via pypdf) and the scrapes — must hold no secret, nor its URL-encoded or base64 form.
"""

from __future__ import annotations

import base64
import json
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
import requests
from demo_config import DemoConfig, copy_demo_config
from pypdf import PdfReader
from security_support import MINEWATCH, REPO, clean_env, run_minewatch
from servers import serving

from simulator.local_servers import InfluxdServer, free_port
from simulator.scenario import load_scenario
from simulator.server import SimulatorServer

pytestmark = pytest.mark.integration

INFLUX_USER = "mw_leaktest"
INFLUX_PASSWORD = "S3CRET-influx-pw-5d2a9c"
WRONG_INFLUX_PASSWORD = "S3CRET-influx-wrong-81be07"
EXPORTER_USER = "scraper"
EXPORTER_PASSWORD = "S3CRET-exporter-pw-0c4f1e"
# The webhook URL is plain config (no `_env`/`_file` form, user info refused), so a token in its path is not
# a secret minewatch knows of; it is checked separately below, to show where it surfaces.
WEBHOOK_TOKEN = "S3CRET-webhook-token-93aa61"
# baikal keeps the demo's own keys, so its polls succeed, its violations fire and the webhook is tried.
KEPT_SECRETS = tuple(
    (REPO / "config" / "demo" / "secrets" / name).read_text(encoding="utf-8").strip()
    for name in ("baikal-braiins.secret", "baikal-emcd.secret")
)
POOL_SECRETS = {
    "sibgaz-braiins.secret": "S3CRET-braiins-token-sibgaz-c41a",
    "sibgaz-emcd.secret": "S3CRET-emcd-key-sibgaz-e07f",
    "tverpower-emcd.secret": "S3CRET-emcd-key-tverpower-19c6",
    "uralhash-b-braiins.secret": "S3CRET-braiins-token-uralb-a5d0",
    "uralhash-braiins.secret": "S3CRET-braiins-token-ural-66e2",
}
SECRETS = (INFLUX_PASSWORD, WRONG_INFLUX_PASSWORD, EXPORTER_PASSWORD, *POOL_SECRETS.values(), *KEPT_SECRETS)
ENV = {"MW_LEAK_INFLUX_PW": INFLUX_PASSWORD, "MW_LEAK_EXPORTER_PW": EXPORTER_PASSWORD}


def spellings(secret: str) -> set[str]:
    """The forms a leaked secret takes: as is, URL-encoded, base64 (alone and as basic-auth credentials)."""
    forms = {secret, quote(secret, safe=""), quote_plus(secret)}
    for text in (secret, f"{INFLUX_USER}:{secret}", f"{EXPORTER_USER}:{secret}"):
        encoded = base64.b64encode(text.encode()).decode()
        forms |= {encoded, encoded.rstrip("=")}
    # base64 of the secret inside a longer text starts at any of three alignments: its stable middle part.
    for shift in range(3):
        chunk = base64.b64encode(b"\x00" * shift + secret.encode()).decode()
        forms.add(chunk[4 : len(chunk) - 4])
    return forms


class _Echo(BaseHTTPRequestHandler):
    """A hostile pool: answers 500 (or 401 under /auth) with the whole request, key and headers, in the body."""

    def _answer(self) -> None:
        body = json.dumps({"error": "boom", "path": self.path, "headers": dict(self.headers)}).encode()
        self.send_response(401 if "profile" in self.path else 500)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer  # noqa: N815

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def echo_pool() -> Iterator[str]:
    with serving(_Echo) as url:
        yield url


@pytest.fixture(scope="module")
def simulator() -> Iterator[SimulatorServer]:
    with SimulatorServer(load_scenario(REPO / "simulator" / "scenarios" / "demo.toml"), port=0) as server:
        yield server


@pytest.fixture(scope="module")
def influx_user(influxd_auth: InfluxdServer) -> InfluxdServer:
    influxd_auth.admin_query(f"CREATE USER \"{INFLUX_USER}\" WITH PASSWORD '{INFLUX_PASSWORD}' WITH ALL PRIVILEGES")
    influxd_auth.admin_query('CREATE DATABASE "mw_leaks"')
    return influxd_auth


def leaky_config(
    dest: Path, simulator: SimulatorServer, echo_pool: str, influx_url: str, *, password_env: str = "MW_LEAK_INFLUX_PW"
) -> DemoConfig:
    """The demo config with every secret replaced by a distinctive one; one group's pools are the echo server."""
    webhook = f"http://127.0.0.1:{free_port()}/hooks/{WEBHOOK_TOKEN}"
    config = copy_demo_config(
        dest,
        simulator_url=simulator.url,
        influx_url=influx_url,
        database="mw_leaks",
        influx={"username": f'"{INFLUX_USER}"', "password_env": f'"{password_env}"'},
        schedule={"interval_s": "5", "timeout_s": "3", "misfire_grace_s": "5"},
        alerting={"webhook_url": f'"{webhook}"'},
        exporter={"basic_auth_username": f'"{EXPORTER_USER}"', "basic_auth_password_env": '"MW_LEAK_EXPORTER_PW"'},
        network=False,
        # A poll is 4 requests: at 5 s, raise the pools' budgets as a negotiated limit would (see test_cli_run).
        extra="[rate_budgets.braiins]\nrequests_per_minute = 600\nburst = 20\n\n"
        "[rate_budgets.emcd]\nrequests_per_minute = 600\nburst = 40\n",
    )
    for name, secret in POOL_SECRETS.items():
        config.secret_file(name).write_text(secret + "\n", encoding="utf-8")
    tver = config.group_file("tverpower")
    tver.write_text(tver.read_text(encoding="utf-8").replace(simulator.url, echo_pool), encoding="utf-8")
    return config


def snapshot(root: Path) -> dict[Path, bytes]:
    return {path: path.read_bytes() for path in root.rglob("*") if path.is_file()}


def files_text(root: Path, before: dict[Path, bytes]) -> dict[str, str]:
    """Every file under `root` the runs wrote or changed, as text (PDFs: their extracted text too).

    The inputs (secret files, the configs as written) hold secrets by design and are left out.
    """
    texts: dict[str, str] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        if before.get(path) == data:
            continue
        texts[str(path.relative_to(root))] = data.decode("utf-8", errors="replace")
        if path.suffix == ".pdf":
            texts[f"{path.relative_to(root)} (text)"] = "\n".join(
                page.extract_text() or "" for page in PdfReader(path).pages
            )
    return texts


def assert_no_leak(texts: dict[str, str]) -> None:
    leaks = [
        f"{where}: {form!r} (of {secret[:12]}...)"
        for where, text in texts.items()
        for secret in SECRETS
        for form in spellings(secret)
        if form in text
    ]
    assert leaks == [], "\n".join(leaks)


def test_no_secret_leaks_from_any_command(
    tmp_path: Path, simulator: SimulatorServer, echo_pool: str, influx_user: InfluxdServer
) -> None:
    outputs: dict[str, str] = {}
    env = clean_env(ENV | {"MW_LEAK_WRONG_PW": WRONG_INFLUX_PASSWORD})
    closed = f"http://127.0.0.1:{free_port()}"
    good = leaky_config(tmp_path / "good", simulator, echo_pool, influx_user.url)
    refused = leaky_config(tmp_path / "refused", simulator, echo_pool, influx_user.url, password_env="MW_LEAK_WRONG_PW")
    down = leaky_config(tmp_path / "down", simulator, echo_pool, closed)

    def record(name: str, *args: str, expect: set[int]) -> None:
        run = run_minewatch(*args, env=env)
        outputs[f"{name} stdout"], outputs[f"{name} stderr"] = run.out, run.err
        assert run.code in expect, str(run)
        assert "Traceback" not in run.err, str(run)

    before = snapshot(tmp_path)
    record("check-config", "check-config", "-c", str(good.main), expect={0})
    # A bad value next to a secret, and the InfluxDB password pasted into the wrong key.
    bad = leaky_config(tmp_path / "bad", simulator, echo_pool, influx_user.url)
    text = bad.main.read_text(encoding="utf-8")
    text = re.sub(r'^database = ".*"$', f'database = "db"\napi = "{INFLUX_PASSWORD}"\ntimeout_s = -1', text, flags=re.M)
    bad.main.write_text(
        text.replace("[exporter]\n", f'[exporter]\nenabled = "{EXPORTER_PASSWORD}"\n'), encoding="utf-8"
    )
    before |= snapshot(tmp_path / "bad")
    record("check-config bad", "check-config", "-c", str(bad.main), expect={2})
    assert outputs["check-config bad stderr"].count("config error") >= 3, outputs["check-config bad stderr"]
    record("collect --print", "collect", "--once", "--print", "-c", str(good.main), expect={1})
    record("collect refused", "collect", "--once", "-c", str(refused.main), expect={1})
    record("collect down", "collect", "--once", "-c", str(down.main), expect={1})
    formats = ("--format", "csv,json,pdf")
    month = ("--month", "2026-10")
    record("report", "report", "monthly", *month, *formats, "--out", str(tmp_path / "reports"), "-c", str(good.main),
           expect={0, 1})  # fmt: skip
    record("report refused", "report", "monthly", *month, *formats, "--out", str(tmp_path / "r2"),
           "-c", str(refused.main), expect={0, 1})  # fmt: skip

    for name, config in (("run", good), ("run refused", refused)):
        outputs |= run_daemon(name, config, env, tmp_path)

    written = files_text(tmp_path, before)
    assert any(name.endswith(".csv") for name in written), sorted(written)  # the report was written
    assert_no_leak(outputs | written)
    # The runs did provoke what they were meant to.
    everything = "\n".join(outputs.values())
    assert "***" in everything  # redaction happened (the EMCD key in a URL path)
    assert re.search(r"\b(401|403|auth)\b", everything)
    # Not a secret minewatch knows (see WEBHOOK_TOKEN): show where the plain-config token surfaces.
    surfaced = sorted(where for where, text in (outputs | written).items() if WEBHOOK_TOKEN in text)
    print("webhook path token appears in:", surfaced)


def run_daemon(name: str, config: DemoConfig, env: dict[str, str], workdir: Path) -> dict[str, str]:
    """`minewatch run` for a few polls, scraped with and without credentials, then SIGTERM."""
    out, err = workdir / f"{name}.out", workdir / f"{name}.err"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen(
            [*MINEWATCH, "run", "-c", str(config.main)], stdout=stdout, stderr=stderr, cwd=REPO, env=env
        )
        try:
            url = _metrics_url(err, process)
            time.sleep(8)  # a poll or two, alert rounds, a webhook attempt
            denied = requests.get(url, timeout=5)
            wrong = requests.get(url, auth=(EXPORTER_USER, "nope"), timeout=5)
            scrape = requests.get(url, auth=(EXPORTER_USER, EXPORTER_PASSWORD), timeout=5)
            assert (denied.status_code, wrong.status_code, scrape.status_code) == (401, 401, 200)
            assert "minewatch_exporter_auth_failures_total" in scrape.text
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
    return {
        f"{name} scrape": scrape.text,
        f"{name} 401 body": denied.text + wrong.text + json.dumps(dict(denied.headers)),
    }


def _metrics_url(err: Path, process: subprocess.Popen[bytes]) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = re.search(r"Prometheus exporter on (http://127\.0\.0\.1:\d+/metrics)", err.read_text(errors="replace"))
        if found:
            return found.group(1)
        assert process.poll() is None, err.read_text(errors="replace")
        time.sleep(0.2)
    raise AssertionError(f"the exporter never started:\n{err.read_text(errors='replace')[-3000:]}")
