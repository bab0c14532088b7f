"""Golden cases: recorded pool (and chain API) responses in, the exact line protocol the runner writes out.

Each folder `tests/golden/<kind>/<case>/` holds:
- `case.toml`: `now` (the fixed clock, unix s), `account`, `coin`, `declared_addresses` (the permit's; pools
  only), `[settings]` (the source's settings beyond the secret and `base_url`), optional `[responses.<endpoint>]`
  overrides (`status`, `content_type`, `headers`, `file`) and optional `[expect]` checks: `backoff_until`
  (unix s) and `requests` (the request paths in order, the secret written as `{secret}`);
- one file per endpoint the source calls, `<endpoint>.json` by default, served byte for byte;
- `expected.lp` (every line the runner writes, `source_health` included) or `expected.err`
  (first line: the error kind; optional second line: a substring of the error message, base URL removed).

The responses are served by a real `http.server` on 127.0.0.1 at the pool's real paths. Pool kinds run as a
`PoolTarget` of a one-account group; network kinds (`source_registry().networks`, e.g. mempool: no secret, no
group) run as a `NetworkTarget`. Regenerate the expected files with `MINEWATCH_REGEN_GOLDEN=1`, then check
every number by hand against the case's README.
"""

from __future__ import annotations

import logging
import os
import threading
import tomllib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from golden_support import assert_matches_expected, regenerate

from collector.adapters.base import PoolSourceSettings, SourceContext
from collector.adapters.http import HttpClient
from collector.adapters.registry import source_registry
from collector.config import Group, GroupFile, PoolAccount
from collector.redact import Redactor
from collector.runner import Runner
from collector.sinks.base import MemorySink
from collector.state import StateStore
from collector.targets import NetworkTarget, PoolTarget

GOLDEN = Path(__file__).parent / "golden"
REGEN = os.environ.get("MINEWATCH_REGEN_GOLDEN") == "1"
SECRET_ENV = "MINEWATCH_GOLDEN_SECRET"


@dataclass(frozen=True)
class PoolWire:
    """How a pool kind is reached: its secret, where the secret travels, and its paths per endpoint."""

    secret_name: str | None  # None: a public API (no secret, nothing to redact)
    secret: str | None
    auth_header: str | None  # None: the secret travels in the URL path or the form (or there is none)
    routes: Callable[[str, str], dict[str, str]]  # (coin ticker, secret) -> {path: endpoint}
    base_path: str = ""  # appended to the server root for the settings' base_url (mempool's is ".../api")

    def scrub(self, text: str) -> str:
        """`text` with the secret written as `{secret}`."""
        return text if self.secret is None else text.replace(self.secret, "{secret}")


# mempool answers reward stats for any block count 1..2016 (`/v1/mining/reward-stats/:blockCount`).
MEMPOOL_ROUTES = {
    "/api/v1/mining/hashrate/3d": "hashrate",
    **{f"/api/v1/mining/reward-stats/{blocks}": "reward_stats" for blocks in range(1, 2017)},
}


WIRES: dict[str, PoolWire] = {
    "antpool": PoolWire(
        secret_name="api_key",
        secret="golden-antpool-key-0001",
        auth_header=None,  # key, nonce and signature travel in the POST form
        routes=lambda _coin, _secret: {
            "/api/accountOverview.htm": "accountOverview",
            "/api/hashrate.htm": "hashrate",
            "/api/account.htm": "account",
            "/api/userWorkerList.htm": "userWorkerList",
            "/api/workers.htm": "workers",
            "/api/paymentHistoryV2.htm": "paymentHistoryV2",
        },
    ),
    "braiins": PoolWire(
        secret_name="token",
        secret="golden-braiins-token-0001",
        auth_header="Pool-Auth-Token",
        routes=lambda _coin, _secret: {
            "/accounts/profile/json/btc": "profile",
            "/accounts/workers/json/btc": "workers",
            "/accounts/rewards/json/btc": "rewards",
            "/accounts/payouts/json/btc": "payouts",
        },
    ),
    "emcd": PoolWire(
        secret_name="api_key",
        secret="5f1c2d3e-aaaa-4bbb-8ccc-0123456789ab",
        auth_header=None,
        routes=lambda coin, secret: {
            f"/v1/info/{secret}": "info",
            f"/v1/{coin.lower()}/workers/{secret}": "workers",
            f"/v1/{coin.lower()}/income/{secret}": "income",
            f"/v1/{coin.lower()}/payouts/{secret}": "payouts",
        },
    ),
    "f2pool": PoolWire(
        secret_name="token",
        secret="golden-f2pool-secret-0001",
        auth_header="F2P-API-SECRET",
        routes=lambda _coin, _secret: {
            "/v2/hash_rate/info": "hash_rate_info",
            "/v2/hash_rate/history": "hash_rate_history",
            "/v2/hash_rate/worker/list": "worker_list",
            "/v2/assets/balance": "balance",
            "/v2/assets/transactions/list": "transactions",
            "/v2/mining_user/get": "mining_user",
        },
    ),
    "viabtc": PoolWire(
        secret_name="api_key",
        secret="golden0viabtc0api0key0000000001a",
        auth_header="X-API-KEY",
        routes=lambda _coin, _secret: {
            "/res/openapi/v1/hashrate": "hashrate",
            "/res/openapi/v1/account": "account",
            "/res/openapi/v1/hashrate/worker": "workers",
            "/res/openapi/v1/hashrate/chart": "hashrate_chart",
            "/res/openapi/v1/profit/history": "profit_history",
            "/res/openapi/v1/wallet/payment/history": "payment_history",
        },
    ),
    "mempool": PoolWire(
        secret_name=None,
        secret=None,
        auth_header=None,  # a public API: no key, no header
        routes=lambda _coin, _secret: MEMPOOL_ROUTES,
        base_path="/api",
    ),
}


@dataclass(frozen=True)
class Reply:
    """One canned HTTP answer."""

    status: int
    content_type: str
    headers: Mapping[str, str]
    body: bytes


@dataclass
class PoolServer:
    """A loopback HTTP server that answers the pool's real paths from a case folder."""

    case_dir: Path
    wire: PoolWire
    coin: str
    overrides: Mapping[str, Mapping[str, Any]]
    requests_seen: list[str] = field(default_factory=list)
    bodies_seen: list[bytes] = field(default_factory=list)  # POST bodies, the secret replaced by {secret}

    def reply(self, path: str, header_token: str | None) -> Reply:
        """Route a request like the pool would: wrong path -> 404, missing header token -> 403 text/plain."""
        routes = self.wire.routes(self.coin, self.wire.secret or "")
        endpoint = routes.get(path.rstrip("/"))
        if endpoint is None:
            return Reply(404, "text/plain", {}, b"Not Found")
        if self.wire.auth_header is not None and header_token != self.wire.secret:
            return Reply(403, "text/plain", {}, b"Forbidden")
        override = self.overrides.get(endpoint, {})
        body_file = self.case_dir / override.get("file", f"{endpoint}.json")
        if not body_file.is_file():
            return Reply(404, "text/plain", {}, b"no response recorded for " + endpoint.encode())
        return Reply(
            status=override.get("status", 200),
            content_type=override.get("content_type", "application/json"),
            headers=override.get("headers", {}),
            body=body_file.read_bytes(),
        )

    @property
    def handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if server.wire.secret is not None:
                    body = body.replace(server.wire.secret.encode(), b"{secret}")
                server.bodies_seen.append(body)
                self.do_GET()

            def do_GET(self) -> None:
                server.requests_seen.append(server.wire.scrub(self.path))
                token = self.headers.get(server.wire.auth_header) if server.wire.auth_header else None
                reply = server.reply(urlsplit(self.path).path, token)
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(reply.body)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(reply.body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


@dataclass(frozen=True)
class Case:
    """One golden case folder, read."""

    kind: str
    name: str
    path: Path
    spec: dict[str, Any]

    @property
    def id(self) -> str:
        return f"{self.kind}/{self.name}"


def discover() -> list[Case]:
    """The HTTP sources' cases (miner cases are run by test_golden_devices.py)."""
    cases = []
    for case_toml in sorted(path for kind in WIRES for path in GOLDEN.glob(f"{kind}/*/case.toml")):
        with case_toml.open("rb") as handle:
            spec = tomllib.load(handle)
        cases.append(Case(case_toml.parent.parent.name, case_toml.parent.name, case_toml.parent, spec))
    return cases


@contextmanager
def serve(case: Case) -> Iterator[tuple[PoolServer, str]]:
    """Serve the case's responses on 127.0.0.1 (a free port); yield the server and its base URL."""
    server = PoolServer(case.path, WIRES[case.kind], case.spec.get("coin", "BTC"), case.spec.get("responses", {}))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), server.handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server, f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def build_target(
    case: Case, base_url: str, redactor: Redactor, session: requests.Session
) -> PoolTarget | NetworkTarget:
    """A one-account group whose permit declares the case's payout addresses, bound to a real source.

    A network kind (a chain API) has no group and no account: it becomes a `NetworkTarget` for the case's coin.
    """
    spec, wire = case.spec, WIRES[case.kind]
    coin, account_id, now = spec.get("coin", "BTC"), spec.get("account", "main"), spec["now"]
    registry = source_registry()
    network = case.kind in registry.networks
    source_class = registry.networks[case.kind] if network else registry[case.kind]
    raw = {**spec.get("settings", {}), "base_url": base_url + wire.base_path}
    if wire.secret_name is not None:
        raw[f"{wire.secret_name}_env"] = SECRET_ENV
    settings = source_class.settings_model.model_validate(raw)
    assert isinstance(settings, PoolSourceSettings)  # a WithSecrets with a base_url, pools and chain APIs alike
    settings.resolve_secrets({SECRET_ENV: wire.secret} if wire.secret is not None else {}, case.path, redactor)
    log = logging.getLogger("golden")
    if network:
        http = HttpClient(session, redact=redactor)
        ctx = SourceContext(http=http, clock=lambda: float(now), log=log, target=coin, coin=coin)
        source = source_class(settings, ctx)
        return NetworkTarget(kind=case.kind, coin=coin, source=source, http=http, interval_s=60.0, timeout_s=10.0)
    group_file = GroupFile.model_validate(
        {
            "id": "golden",
            "legal_name": "Golden Test LLC",
            "inn": "3800000000",
            "register_record": "7102500000001",
            "timezone": "UTC",
            "sites": [{"id": "site-1", "region": "RU-IRK", "timezone": "UTC"}],
            "permits": [
                {
                    "version": "golden-1",
                    "valid_from": date(2019, 1, 1),
                    "coins": [coin],
                    "pools": [case.kind],
                    "payout_addresses": spec.get("declared_addresses", []),
                }
            ],
        }
    )
    account = PoolAccount("golden", account_id, case.kind, None, coin, settings)
    group = Group(spec=group_file, accounts=(account,), source_file=case.path / "case.toml")
    http = HttpClient(session, redact=redactor)
    ctx = SourceContext(http=http, clock=lambda: float(now), log=log, target=account_id, coin=coin)
    source = source_class(settings, ctx)
    return PoolTarget(group=group, account=account, source=source, http=http, interval_s=60.0, timeout_s=10.0)


CASES = discover()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_golden_case(case: Case, caplog: pytest.LogCaptureFixture) -> None:
    now = float(case.spec["now"])
    redactor, sink, state = Redactor(), MemorySink(), StateStore()
    with serve(case) as (server, base_url), requests.Session() as session:
        session.trust_env = False  # loopback only: never route through a proxy from the environment
        target = build_target(case, base_url, redactor, session)
        runner = Runner(
            sink,
            state,
            clock=lambda: now,
            log=logging.getLogger("golden"),
            monotonic=lambda: 0.0,  # frozen: every poll takes duration_s=0.0, so source_health is exact
        )
        result = runner.poll(target)
    message = (result.message or "").replace(base_url, "")  # the free port changes from run to run
    if REGEN:
        regenerate(case.path, result, sink.lines, message)

    secret = WIRES[case.kind].secret
    assert server.requests_seen, "the source made no request"
    if secret is not None:  # a public API has no secret to leak
        assert all(secret not in line for line in sink.lines), "a secret reached a point"
        assert secret not in message, "a secret reached an error message"
        assert secret not in caplog.text, "a secret reached a log line"

    assert_matches_expected(case.path, result, sink.lines, message)
    expect = case.spec.get("expect", {})
    if "backoff_until" in expect:
        assert state.health(target.key).backoff_until == expect["backoff_until"]
    if "requests" in expect:
        assert server.requests_seen == expect["requests"]
