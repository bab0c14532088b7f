"""Local real servers for the demo and the tests: influxd (Debian's 1.6.7), victoria-metrics and Alertmanager.

Each instance runs from its own temp dir on free 127.0.0.1 ports (every listener, including influxd's RPC
port, which defaults to 8088 and would clash between instances). Nothing listens on other interfaces and
nothing talks to anything but loopback. A missing binary is an error that names `make system-deps`: the
tests that need these servers must run in CI, never skip, and the demo installs them first.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import requests

SYSTEM_DEPS_HINT = (
    "run `make system-deps` (installs Debian's influxdb, victoria-metrics and prometheus-alertmanager packages)"
)
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0


class MissingBinary(RuntimeError):
    """A server binary the tests need is not installed."""


class ServerFailed(RuntimeError):
    """A server did not come up (or died); the message carries the tail of its stderr."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_port_block(count: int) -> int:
    """The first of `count` consecutive TCP ports on 127.0.0.1 that are free right now.

    Searched below Linux's ephemeral range (32768 and up), where other processes' client sockets do not land.
    """
    for base in range(20_000, 32_768 - count, 311):
        probes: list[socket.socket] = []
        try:
            for port in range(base, base + count):
                probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                probes.append(probe)
                probe.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for probe in probes:
                probe.close()
    raise OSError(f"no block of {count} free ports on 127.0.0.1 below 32768")


def find_binary(name: str) -> str:
    """The absolute path of `name`, or `MissingBinary` telling how to install it."""
    path = shutil.which(name) or (f"/usr/bin/{name}" if os.access(f"/usr/bin/{name}", os.X_OK) else None)
    if path is None:
        raise MissingBinary(f"{name} is not installed: {SYSTEM_DEPS_HINT}")
    return path


def _tail(path: Path, limit: int = 3000) -> str:
    """The last `limit` characters of a log file."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return text[-limit:] if text else "(empty)"


class _Server:
    """A child process with log files, a readiness probe and SIGTERM-then-SIGKILL shutdown."""

    name = "server"
    ready_path = "/"
    ready_statuses: tuple[int, ...] = (200,)

    def __init__(self, workdir: Path, http_port: int) -> None:
        self.workdir = workdir
        self.http_port = http_port
        self.url = f"http://127.0.0.1:{http_port}"
        self.stdout_log = workdir / f"{self.name}.stdout.log"
        self.stderr_log = workdir / f"{self.name}.stderr.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._logs: list[IO[bytes]] = []

    def command(self) -> Sequence[str]:
        """The command line that starts the server."""
        raise NotImplementedError

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs."""
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    @property
    def is_running(self) -> bool:
        """True while the process is alive."""
        return self._process is not None and self._process.poll() is None

    def start(self, timeout_s: float = READY_TIMEOUT_S) -> None:
        """Start the process (if not running) and wait until it answers its readiness probe."""
        if self.is_running:
            return
        self._close_logs()
        # Appended, so a restart keeps the earlier run's output for post-mortems.
        stdout = self.stdout_log.open("ab")
        stderr = self.stderr_log.open("ab")
        self._logs = [stdout, stderr]
        self._process = subprocess.Popen(
            list(self.command()), stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL, cwd=self.workdir
        )
        self._wait_ready(timeout_s)

    def _wait_ready(self, timeout_s: float) -> None:
        """Poll the readiness endpoint; on failure stop the process and raise with its stderr tail."""
        deadline = time.monotonic() + timeout_s
        last = "no answer yet"
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                self._close_logs()
                raise ServerFailed(
                    f"{self.name} exited with {self._process.returncode} during start-up; "
                    f"stderr tail:\n{_tail(self.stderr_log)}"
                )
            try:
                response = requests.get(self.url + self.ready_path, timeout=1.0)
                if response.status_code in self.ready_statuses:
                    return
                last = f"{response.status_code} {response.text[:200]}"
            except requests.RequestException as exc:
                last = type(exc).__name__
            time.sleep(0.05)
        self.stop(kill=True)
        raise ServerFailed(
            f"{self.name} on {self.url} not ready after {timeout_s:g} s (last: {last}); "
            f"stderr tail:\n{_tail(self.stderr_log)}"
        )

    def stop(self, *, kill: bool = False, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """Stop the process: SIGTERM (or SIGKILL at once with `kill=True`), then SIGKILL after the timeout."""
        process = self._process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=timeout_s)
        self._close_logs()

    def kill(self) -> None:
        """SIGKILL the process, as a crash would."""
        self.stop(kill=True)

    def restart(self, *, kill: bool = False) -> None:
        """Stop and start again on the same ports and data."""
        self.stop(kill=kill)
        self.start()

    def stderr_tail(self, limit: int = 3000) -> str:
        """The end of the server's stderr, for assertion messages."""
        return _tail(self.stderr_log, limit)

    def _close_logs(self) -> None:
        for handle in self._logs:
            handle.close()
        self._logs = []


class InfluxdServer(_Server):
    """influxd 1.6.x with a generated config: data in `workdir`, HTTP and RPC on free loopback ports.

    With `auth=True`, `[http] auth-enabled = true` and an admin user (`admin_user`/`admin_password`) is
    created on first start, through the documented bootstrap: with auth on and no user yet, InfluxDB
    accepts one unauthenticated `CREATE USER ... WITH ALL PRIVILEGES`.
    """

    name = "influxd"
    ready_path = "/ping"
    ready_statuses = (204,)

    def __init__(
        self,
        workdir: Path,
        *,
        auth: bool = False,
        binary: str | None = None,
        http_port: int | None = None,
        rpc_port: int | None = None,
    ) -> None:
        self.binary = binary or find_binary("influxd")
        super().__init__(workdir, http_port or free_port())
        self.rpc_port = rpc_port or free_port()
        self.auth = auth
        self.admin_user = "admin"
        self.admin_password = f"pw-{secrets.token_hex(8)}"
        self._bootstrapped = False
        self.config_path = workdir / "influxd.conf"
        self.config_path.write_text(self.config_text())

    def config_text(self) -> str:
        """A minimal influxd TOML: only what differs from the defaults or must not be shared."""
        dirs = {name: (self.workdir / name).as_posix() for name in ("meta", "data", "wal")}
        return f"""\
# Generated by simulator/local_servers.py. Upstream spells the first key reporting-disabled, Debian's build prints
# reporting-enabled; influxd ignores unknown keys, so both are set.
reporting-disabled = true
reporting-enabled = false
bind-address = "127.0.0.1:{self.rpc_port}"

[meta]
  dir = "{dirs["meta"]}"
  logging-enabled = false

[data]
  dir = "{dirs["data"]}"
  wal-dir = "{dirs["wal"]}"
  index-version = "inmem"
  query-log-enabled = false

[http]
  bind-address = "127.0.0.1:{self.http_port}"
  auth-enabled = {"true" if self.auth else "false"}
  log-enabled = false
  pprof-enabled = false

[monitor]
  store-enabled = false

[subscriber]
  enabled = false

[continuous_queries]
  enabled = false

[logging]
  level = "warn"
"""

    def command(self) -> Sequence[str]:
        """`influxd -config FILE`."""
        return [self.binary, "-config", str(self.config_path)]

    def start(self, timeout_s: float = READY_TIMEOUT_S) -> None:
        """Start, wait for `/ping`, and create the admin user on the first start of an auth instance."""
        super().start(timeout_s)
        if self.auth and not self._bootstrapped:
            statement = f"CREATE USER \"{self.admin_user}\" WITH PASSWORD '{self.admin_password}' WITH ALL PRIVILEGES"
            response = requests.post(self.url + "/query", data={"q": statement}, timeout=10)
            if response.status_code != 200 or "error" in response.text:
                raise ServerFailed(f"influxd auth bootstrap failed: {response.status_code} {response.text}")
            self._bootstrapped = True

    def admin_query(self, influxql: str, *, database: str | None = None) -> dict[str, Any]:
        """Run InfluxQL as the admin (when auth is on) and return the decoded JSON; raise on any error."""
        data = {"q": influxql, "epoch": "ns"}
        if database is not None:
            data["db"] = database
        auth = (self.admin_user, self.admin_password) if self.auth else None
        response = requests.post(self.url + "/query", data=data, auth=auth, timeout=10)
        payload: dict[str, Any] = response.json()
        errors = [payload.get("error")] + [result.get("error") for result in payload.get("results", [])]
        if response.status_code != 200 or any(errors):
            raise AssertionError(f"{influxql!r} failed: {response.status_code} {json.dumps(payload)[:500]}")
        return payload


class VictoriaMetricsServer(_Server):
    """victoria-metrics single-node on a free loopback port; it takes line protocol on `/api/v2/write`.

    It stores measurement `m` field `f` as metric `m_f`, string fields as 0, ignores bucket/org/token, and
    keeps one month of data: write recent timestamps.
    """

    name = "victoria-metrics"
    ready_path = "/health"
    ready_statuses = (200,)

    def __init__(self, workdir: Path, *, binary: str | None = None) -> None:
        self.binary = binary or find_binary("victoria-metrics")
        super().__init__(workdir, free_port())
        self.data_dir = workdir / "data"

    def command(self) -> Sequence[str]:
        """Only the HTTP listener (graphite, influx UDP/TCP and opentsdb listeners are off by default)."""
        return [
            self.binary,
            f"-httpListenAddr=127.0.0.1:{self.http_port}",
            f"-storageDataPath={self.data_dir}",
            "-loggerLevel=WARN",
            "-search.disableCache",
            # Tests read what they just wrote; the default 30 s offset would hide it from /api/v1/query.
            "-search.latencyOffset=0s",
        ]

    def force_flush(self) -> None:
        """Make recently written samples searchable now."""
        requests.get(self.url + "/internal/force_flush", timeout=10).raise_for_status()

    def export(self, match: str) -> list[dict[str, Any]]:
        """Raw samples of the series matching a selector (`/api/v1/export`), one dict per series."""
        self.force_flush()
        response = requests.get(self.url + "/api/v1/export", params={"match[]": match}, timeout=10)
        response.raise_for_status()
        return [json.loads(line) for line in response.text.splitlines() if line.strip()]


class AlertmanagerServer(_Server):
    """Alertmanager (Debian's `prometheus-alertmanager`) with a generated config whose one receiver is a webhook.

    The API listens on a free loopback port; `--cluster.listen-address=` (empty) turns gossip off, which the
    default would open on 0.0.0.0:9094. Every alert goes to `webhook_url`, grouped by all labels (one
    notification per alert) with short waits so a test sees notifications within a second or two.
    Alerts live in memory only: a restart keeps silences (in `workdir`) but forgets alerts.
    """

    name = "alertmanager"
    ready_path = "/-/ready"
    ready_statuses = (200,)

    def __init__(
        self,
        workdir: Path,
        *,
        webhook_url: str,
        group_wait_s: float = 1.0,
        group_interval_s: float = 1.0,
        repeat_interval: str = "4h",
        binary: str | None = None,
        http_port: int | None = None,
    ) -> None:
        self.binary = binary or _find_alertmanager()
        super().__init__(workdir, http_port or free_port())
        self.webhook_url = webhook_url
        self.group_wait_s = group_wait_s
        self.group_interval_s = group_interval_s
        self.repeat_interval = repeat_interval
        self.data_dir = workdir / "data"
        self.config_path = workdir / "alertmanager.yml"
        self.config_path.write_text(self.config_text())

    def config_text(self) -> str:
        """One route, one webhook receiver; JSON is valid YAML, so no YAML library is needed to write it."""
        config = {
            "route": {
                "receiver": "webhook",
                "group_by": ["..."],
                "group_wait": f"{self.group_wait_s:g}s",
                "group_interval": f"{self.group_interval_s:g}s",
                "repeat_interval": self.repeat_interval,
            },
            "receivers": [
                {"name": "webhook", "webhook_configs": [{"url": self.webhook_url, "send_resolved": True}]},
            ],
        }
        return "# Generated by simulator/local_servers.py.\n" + json.dumps(config, indent=2) + "\n"

    def command(self) -> Sequence[str]:
        """API on 127.0.0.1 only, no cluster listener, state in the work dir."""
        return [
            self.binary,
            f"--config.file={self.config_path}",
            f"--storage.path={self.data_dir}",
            f"--web.listen-address=127.0.0.1:{self.http_port}",
            "--cluster.listen-address=",
            "--log.level=warn",
        ]

    def alerts(self, **params: str) -> list[dict[str, Any]]:
        """`GET /api/v2/alerts` with the given query parameters (e.g. `filter='group_id="g1"'`)."""
        response = requests.get(self.url + "/api/v2/alerts", params=params, timeout=10)
        response.raise_for_status()
        result: list[dict[str, Any]] = response.json()
        return result

    def add_silence(self, matchers: dict[str, str], *, duration_s: float = 3600.0, comment: str = "test") -> str:
        """Silence alerts whose labels equal `matchers` for `duration_s`; returns the silence id."""
        now = time.time()
        body = {
            "matchers": [{"name": k, "value": v, "isRegex": False, "isEqual": True} for k, v in matchers.items()],
            "startsAt": _rfc3339(now),
            "endsAt": _rfc3339(now + duration_s),
            "createdBy": "minewatch tests",
            "comment": comment,
        }
        response = requests.post(self.url + "/api/v2/silences", json=body, timeout=10)
        if response.status_code != 200:
            raise ServerFailed(f"alertmanager refused the silence: {response.status_code} {response.text[:300]}")
        silence_id: str = response.json()["silenceID"]
        return silence_id


def _find_alertmanager() -> str:
    """Debian installs Alertmanager as `prometheus-alertmanager`; upstream tarballs call it `alertmanager`."""
    try:
        return find_binary("prometheus-alertmanager")
    except MissingBinary:
        return find_binary("alertmanager")


def _rfc3339(unix_s: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(unix_s)) + f".{int(unix_s % 1 * 1000):03d}Z"


class PrometheusServer(_Server):
    """Prometheus (Debian's `prometheus`) scraping given targets, with rule files, TSDB in `workdir`.

    Only the web listener opens, on a free loopback port. Scrapes and rule evaluations run every
    `interval_s`, so a test sees a target up and its rules evaluated within a few seconds.
    """

    name = "prometheus"
    ready_path = "/-/ready"
    ready_statuses = (200,)

    def __init__(
        self,
        workdir: Path,
        *,
        scrape_targets: dict[str, Sequence[str]],
        rule_files: Sequence[Path] = (),
        interval_s: float = 1.0,
        binary: str | None = None,
        http_port: int | None = None,
    ) -> None:
        self.binary = binary or find_binary("prometheus")
        super().__init__(workdir, http_port or free_port())
        self.scrape_targets = scrape_targets
        self.rule_files = list(rule_files)
        self.interval_s = interval_s
        self.data_dir = workdir / "data"
        self.config_path = workdir / "prometheus.yml"
        self.config_path.write_text(self.config_text())

    def config_text(self) -> str:
        """One scrape job per entry of `scrape_targets` (job name -> host:port list); JSON is valid YAML."""
        interval = f"{self.interval_s:g}s"
        config = {
            "global": {"scrape_interval": interval, "evaluation_interval": interval, "scrape_timeout": interval},
            "rule_files": [str(path) for path in self.rule_files],
            "scrape_configs": [
                {"job_name": job, "static_configs": [{"targets": list(targets)}]}
                for job, targets in self.scrape_targets.items()
            ],
        }
        return "# Generated by simulator/local_servers.py.\n" + json.dumps(config, indent=2) + "\n"

    def command(self) -> Sequence[str]:
        """Web UI and API on 127.0.0.1 only, TSDB in the work dir."""
        return [
            self.binary,
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.data_dir}",
            f"--web.listen-address=127.0.0.1:{self.http_port}",
            "--log.level=warn",
        ]

    def api(self, path: str, **params: str) -> Any:
        """`GET /api/v1/<path>`; the `data` member of a successful answer."""
        response = requests.get(f"{self.url}/api/v1/{path}", params=params, timeout=10)
        response.raise_for_status()
        payload = response.json()
        if payload.get("status") != "success":
            raise ServerFailed(f"prometheus /api/v1/{path}: {payload}")
        return payload["data"]

    def query(self, promql: str) -> list[dict[str, Any]]:
        """An instant query's result vector."""
        result: list[dict[str, Any]] = self.api("query", query=promql)["result"]
        return result

    def alerts(self) -> list[dict[str, Any]]:
        """The alerts Prometheus holds (pending and firing)."""
        alerts: list[dict[str, Any]] = self.api("alerts")["alerts"]
        return alerts
