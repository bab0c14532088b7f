"""V1Transport against the real influxd 1.6.7 (and a stub for what influxd will not produce); V2Transport
against victoria-metrics."""

from __future__ import annotations

import gzip
import socket
import time
from collections.abc import Iterator

import pytest
import requests
from servers import InfluxdServer, StubHTTPServer, StubResponse, VictoriaMetricsServer, free_port

from collector.errors import StorageError
from collector.redact import Redactor
from collector.sinks.influx import Series, V1Transport, V2Transport, quote_ident
from collector.sinks.lineprotocol import build_line

T0 = 1_700_000_000 * 1_000_000_000


@pytest.fixture
def auth_db(influxd_auth: InfluxdServer) -> Iterator[str]:
    """A fresh database on the auth-enabled influxd, created and dropped as the admin."""
    name = f"auth_{time.monotonic_ns()}"
    influxd_auth.admin_query(f"CREATE DATABASE {quote_ident(name)}")
    yield name
    influxd_auth.admin_query(f"DROP DATABASE {quote_ident(name)}")


# -- against influxd -------------------------------------------------------------------------------------


@pytest.mark.integration
def test_write_then_query(influx_db: V1Transport) -> None:
    """Lines written are read back as typed `Series` with ns epoch times."""
    influx_db.write(
        [build_line("m", {"host": "a"}, {"f": 1.5, "n": 3}, T0), build_line("m", {"host": "b"}, {"f": 2.5}, T0)]
    )

    series = influx_db.query('SELECT "f", "n" FROM "m" GROUP BY "host"')

    assert series == [
        Series(name="m", columns=["time", "f", "n"], rows=[[T0, 1.5, 3]], tags={"host": "a"}),
        Series(name="m", columns=["time", "f", "n"], rows=[[T0, 2.5, None]], tags={"host": "b"}),
    ]
    assert influx_db.ping()


@pytest.mark.integration
def test_gzip_write(influxd: InfluxdServer, influx_db: V1Transport) -> None:
    """The gzip option is understood by influxd."""
    with V1Transport(influxd.url, influx_db.database, gzip=True) as transport:
        transport.write([build_line("gz", {}, {"f": float(i)}, T0 + i) for i in range(100)])

    assert influx_db.query('SELECT count("f") FROM "gz"')[0].rows[0][1] == 100


@pytest.mark.integration
def test_field_type_conflict_is_a_partial_write(influx_db: V1Transport) -> None:
    """400 partial write: not retryable, the server's dropped count in the message, the valid lines stored."""
    influx_db.write([build_line("m", {}, {"f": 1.0}, T0)])

    with pytest.raises(StorageError) as caught:
        influx_db.write(
            [
                build_line("m", {}, {"f": 2}, T0 + 1),
                build_line("m", {}, {"f": 3.0}, T0 + 2),
                build_line("m", {}, {"f": 4}, T0 + 3),
            ]
        )

    error = caught.value
    assert (error.status, error.retryable) == (400, False)
    assert "dropped 2 of 3 lines" in str(error)
    assert "dropped=2" in str(error)
    assert "field type conflict" in str(error)
    assert influx_db.query('SELECT "f" FROM "m"')[0].column("f") == [1, 3]


@pytest.mark.integration
def test_unparsable_line_is_not_retryable(influx_db: V1Transport) -> None:
    """400 unable to parse: not retryable; influxd still stores the parsable lines of the request."""
    with pytest.raises(StorageError) as caught:
        influx_db.write(["m f=", build_line("m", {}, {"f": 3.0}, T0)])

    assert (caught.value.status, caught.value.retryable) == (400, False)
    assert "could not parse part of a 2-line batch" in str(caught.value)
    assert influx_db.query('SELECT "f" FROM "m"')[0].column("f") == [3]


@pytest.mark.integration
def test_long_error_text_is_truncated_keeping_the_dropped_count(influx_db: V1Transport) -> None:
    """InfluxDB quotes the bad line; the message stays bounded and keeps the tail where `dropped=` is."""
    influx_db.write([build_line("m", {}, {"s": "x"}, T0)])

    with pytest.raises(StorageError) as caught:
        influx_db.write([build_line("m", {"t": "v" * 5000}, {"s": 1.0}, T0 + 1)])

    assert len(str(caught.value)) < 600
    assert "dropped=1" in str(caught.value)


@pytest.mark.integration
def test_unknown_database_is_not_retryable_and_named(influxd: InfluxdServer) -> None:
    """404 database not found: not retryable, the message names the database."""
    with V1Transport(influxd.url, "no_such_db_here") as transport, pytest.raises(StorageError) as caught:
        transport.write([build_line("m", {}, {"f": 1.0}, T0)])

    assert (caught.value.status, caught.value.retryable) == (404, False)
    assert "'no_such_db_here'" in str(caught.value)


@pytest.mark.integration
def test_query_errors_raise(influx_db: V1Transport) -> None:
    """A parse error (400) and a statement error (200 with `error`) both raise, not retryable."""
    with pytest.raises(StorageError) as parse_error:
        influx_db.query("SELEC nothing")
    with pytest.raises(StorageError) as statement_error:
        influx_db.query('SELECT * FROM "no_such_db_here".."m"')

    assert (parse_error.value.status, parse_error.value.retryable) == (400, False)
    assert "error parsing query" in str(parse_error.value)
    assert (statement_error.value.status, statement_error.value.retryable) == (200, False)
    assert "no_such_db_here" in str(statement_error.value)


@pytest.mark.integration
def test_ensure_database_is_idempotent(influx_db: V1Transport) -> None:
    """CREATE DATABASE on an existing database succeeds on 1.x."""
    influx_db.ensure_database()
    influx_db.ensure_database()


def test_unreachable_port_is_retryable() -> None:
    """Connection refused: retryable, no status; ping says False."""
    with V1Transport(f"http://127.0.0.1:{free_port()}", "db", timeout_s=2.0) as transport:
        with pytest.raises(StorageError) as caught:
            transport.write([build_line("m", {}, {"f": 1.0}, T0)])
        assert not transport.ping()

    assert (caught.value.status, caught.value.retryable) == (None, True)
    assert "unreachable" in str(caught.value)


def test_timeout_is_retryable() -> None:
    """A server that accepts the connection but never answers: retryable 'timed out'."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)  # never accepted: the kernel completes the handshake, nobody answers
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        with V1Transport(url, "db", timeout_s=0.3) as transport, pytest.raises(StorageError) as caught:
            transport.write([build_line("m", {}, {"f": 1.0}, T0)])

    assert (caught.value.status, caught.value.retryable) == (None, True)
    assert "timed out" in str(caught.value)


# -- auth against influxd with auth-enabled ---------------------------------------------------------------


@pytest.mark.integration
def test_username_password_accepted(influxd_auth: InfluxdServer, auth_db: str) -> None:
    """HTTP Basic with the admin user: write, query and ensure_database work."""
    with V1Transport(
        influxd_auth.url, auth_db, username=influxd_auth.admin_user, password=influxd_auth.admin_password
    ) as transport:
        transport.ensure_database()
        transport.write([build_line("m", {}, {"f": 1.0}, T0)])
        assert transport.query('SELECT "f" FROM "m"')[0].rows == [[T0, 1]]


@pytest.mark.integration
def test_wrong_password_rejected_without_leaking_it(influxd_auth: InfluxdServer, auth_db: str) -> None:
    """401: not retryable, says the credentials were rejected, never shows the password."""
    password = "wrong-password-123"
    with V1Transport(influxd_auth.url, auth_db, username=influxd_auth.admin_user, password=password) as transport:
        with pytest.raises(StorageError) as on_write:
            transport.write([build_line("m", {}, {"f": 1.0}, T0)])
        with pytest.raises(StorageError) as on_query:
            transport.query("SHOW MEASUREMENTS")

    for caught in (on_write, on_query):
        assert (caught.value.status, caught.value.retryable) == (401, False)
        assert "rejected the credentials" in str(caught.value)
        assert password not in str(caught.value)


@pytest.mark.integration
def test_password_in_url_never_shown(influxd_auth: InfluxdServer, auth_db: str) -> None:
    """Credentials given in the URL are used, and the URL in messages carries no user info."""
    password = "url-password-456"
    url = influxd_auth.url.replace("http://", f"http://{influxd_auth.admin_user}:{password}@")
    with V1Transport(url, auth_db) as transport, pytest.raises(StorageError) as caught:
        transport.write([build_line("m", {}, {"f": 1.0}, T0)])

    assert caught.value.status == 401
    assert password not in str(caught.value)
    assert f"at {influxd_auth.url} " in str(caught.value)
    good = influxd_auth.url.replace("http://", f"http://{influxd_auth.admin_user}:{influxd_auth.admin_password}@")
    with V1Transport(good, auth_db) as transport:
        transport.write([build_line("m", {}, {"f": 1.0}, T0)])


@pytest.mark.integration
def test_ensure_database_refused_but_usable(influxd_auth: InfluxdServer, auth_db: str) -> None:
    """CREATE DATABASE refused (403, as on 2.x/3.x) is fine when the database answers queries, else raised."""
    influxd_auth.admin_query("CREATE USER \"writer\" WITH PASSWORD 'writer-pass'")
    influxd_auth.admin_query(f'GRANT ALL ON {quote_ident(auth_db)} TO "writer"')
    try:
        with V1Transport(influxd_auth.url, auth_db, username="writer", password="writer-pass") as transport:
            transport.ensure_database()  # refused, but SHOW MEASUREMENTS works
        with (
            V1Transport(influxd_auth.url, "not_granted", username="writer", password="writer-pass") as transport,
            pytest.raises(StorageError) as caught,
        ):
            transport.ensure_database()
        assert (caught.value.status, caught.value.retryable) == (403, False)
        assert "requires admin privilege" in str(caught.value)
    finally:
        influxd_auth.admin_query('DROP USER "writer"')


# -- what influxd will not produce on demand: a stub ------------------------------------------------------


def test_token_header_sent_on_write_and_query() -> None:
    """`token=` sends `Authorization: Token <token>` and no Basic auth; the token never shows in errors."""
    token = "tok-secret-0123456789"
    answers = [
        StubResponse(204),
        StubResponse(200, '{"results":[{"statement_id":0}]}'),
        StubResponse(401, '{"error":"x"}'),
    ]
    with StubHTTPServer(answers) as stub, V1Transport(stub.url, "db", token=token) as transport:
        transport.write(["m f=1.0 1"])
        assert transport.query("SHOW MEASUREMENTS") == []
        with pytest.raises(StorageError) as caught:
            transport.write(["m f=1.0 1"])

    write, query, _ = stub.requests
    assert write.headers["Authorization"] == f"Token {token}"
    assert query.headers["Authorization"] == f"Token {token}"
    assert write.path == "/write?db=db&precision=ns"
    assert write.body == b"m f=1.0 1"
    assert token not in str(caught.value)


def test_basic_auth_and_rp_and_gzip_on_the_wire() -> None:
    """username/password become HTTP Basic; rp is passed; gzip bodies are marked and decompress."""
    with (
        StubHTTPServer() as stub,
        V1Transport(stub.url, "db", retention_policy="week", username="u", password="p4ss", gzip=True) as transport,
    ):
        transport.write(["a f=1.0 1", "b f=2.0 2"])

    request = stub.requests[0]
    assert request.headers["Authorization"] == "Basic dTpwNHNz"
    assert request.path == "/write?db=db&precision=ns&rp=week"
    assert request.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(request.body) == b"a f=1.0 1\nb f=2.0 2"


@pytest.mark.parametrize(
    ("status", "body", "retryable", "text"),
    [
        (500, '{"error":"engine: cache full"}', True, "engine: cache full"),
        (503, "unavailable", True, "503"),
        (429, '{"code":"too many requests","message":"slow down"}', True, "slow down"),
        (413, '{"error":"Request Entity Too Large"}', False, "413"),
        (403, '{"error":"forbidden"}', False, "rejected the credentials"),
        (404, "404 page not found", False, "endpoint not found"),
        (422, '{"code":"unprocessable entity","message":"points beyond retention"}', False, "beyond retention"),
    ],
)
def test_status_classification(status: int, body: str, retryable: bool, text: str) -> None:
    """5xx and 429 are retryable; every other 4xx is not; 2.x/3.x `message` bodies are understood."""
    with (
        StubHTTPServer([StubResponse(status, body)]) as stub,
        V1Transport(stub.url, "db") as transport,
        pytest.raises(StorageError) as caught,
    ):
        transport.write(["m f=1.0 1"])

    assert (caught.value.status, caught.value.retryable) == (status, retryable)
    assert text in str(caught.value)


def test_registered_secret_redacted_from_server_text() -> None:
    """A secret the server echoes back (or any registered secret) is redacted from error text."""
    redact = Redactor()
    redact.add("echoed-secret")
    answer = StubResponse(400, '{"error":"bad line: url=http://u:echoed-secret@pool"}')
    with (
        StubHTTPServer([answer]) as stub,
        V1Transport(stub.url, "db", redact=redact) as transport,
        pytest.raises(StorageError) as caught,
    ):
        transport.write(["m f=1.0 1"])

    assert "echoed-secret" not in str(caught.value)
    assert "***" in str(caught.value)


def test_ensure_database_on_a_v2_style_server() -> None:
    """2.x refuses CREATE DATABASE; a following SHOW MEASUREMENTS that works means 'managed elsewhere'."""
    answers = [
        StubResponse(200, '{"results":[{"statement_id":0,"error":"not implemented: CREATE DATABASE"}]}'),
        StubResponse(200, '{"results":[{"statement_id":0}]}'),
    ]
    with StubHTTPServer(answers) as stub, V1Transport(stub.url, "bucket", token="t0k3n") as transport:
        transport.ensure_database()

    assert [request.path for request in stub.requests] == ["/query", "/query"]


def test_bad_url_and_ambiguous_auth_are_refused() -> None:
    """Configuration mistakes fail at construction, without I/O."""
    with pytest.raises(ValueError, match="http"):
        V1Transport("127.0.0.1:8086", "db")
    with pytest.raises(ValueError, match="token"):
        V1Transport("http://127.0.0.1:8086", "db", token="t", username="u", password="p")


# -- V2Transport ------------------------------------------------------------------------------------------


@pytest.mark.integration
def test_v2_write_reaches_victoria_metrics(victoria_metrics: VictoriaMetricsServer) -> None:
    """Numeric points with current timestamps written through influxdb_client arrive with exact values."""
    now_s = int(time.time())
    lines = [
        build_line(
            "mw_v2", {"group_id": "g1", "pool": "p"}, {"hashrate_hs": 1.25e14, "workers_active": 7}, now_s * 10**9
        ),
        build_line(
            "mw_v2", {"group_id": "g2", "pool": "p"}, {"hashrate_hs": 1e-08, "workers_active": -1}, (now_s - 60) * 10**9
        ),
    ]
    transport = V2Transport(victoria_metrics.url, "minewatch", org="org", token="ignored-token")
    try:
        transport.write(lines)
    finally:
        transport.close()

    exported = victoria_metrics.export('{__name__=~"mw_v2_.*"}')
    samples = {
        (series["metric"]["__name__"], series["metric"]["group_id"]): (series["values"], series["timestamps"])
        for series in exported
    }
    assert samples == {
        ("mw_v2_hashrate_hs", "g1"): ([1.25e14], [now_s * 1000]),
        ("mw_v2_workers_active", "g1"): ([7], [now_s * 1000]),
        ("mw_v2_hashrate_hs", "g2"): ([1e-08], [(now_s - 60) * 1000]),
        ("mw_v2_workers_active", "g2"): ([-1], [(now_s - 60) * 1000]),
    }


@pytest.mark.integration
def test_v2_against_influxd_16_is_a_clear_404(influxd: InfluxdServer) -> None:
    """influxd 1.6 has no /api/v2/write: not retryable, and the message says the endpoint is missing."""
    transport = V2Transport(influxd.url, "db/autogen", org="-", token="u:p")
    try:
        with pytest.raises(StorageError) as caught:
            transport.write(["m f=1.0 1"])
    finally:
        transport.close()

    assert (caught.value.status, caught.value.retryable) == (404, False)
    assert "endpoint not found" in str(caught.value)


@pytest.mark.parametrize(
    ("status", "retryable", "text"),
    [
        (503, True, "retryable"),
        (429, True, "slow down"),
        (400, False, "unable to parse"),
        (401, False, "rejected the credentials"),
        (404, False, "bucket 'b' not found"),
    ],
)
def test_v2_status_classification(status: int, retryable: bool, text: str) -> None:
    """V2Transport maps ApiException statuses with the same rules as V1Transport."""
    messages = {
        400: "unable to parse 'x': missing fields",
        404: 'bucket "b" not found',
        429: "slow down",
        401: "unauthorized access",
        503: "unavailable",
    }
    body = f'{{"code":"x","message":"{messages[status]}"}}'.replace('"b"', '\\"b\\"')
    token = "v2-secret-token"
    with StubHTTPServer([StubResponse(status, body, {"Content-Type": "application/json"})]) as stub:
        transport = V2Transport(stub.url, "b", org="o", token=token)
        try:
            with pytest.raises(StorageError) as caught:
                transport.write(["m f=1.0 1"])
        finally:
            transport.close()

    assert (caught.value.status, caught.value.retryable) == (status, retryable)
    assert text in str(caught.value)
    assert token not in str(caught.value)
    assert stub.requests[0].headers["Authorization"] == f"Token {token}"


def test_v2_unreachable_is_retryable() -> None:
    """Connection refused through urllib3: retryable."""
    transport = V2Transport(f"http://127.0.0.1:{free_port()}", "b", org="o", token="t", timeout_s=2.0)
    try:
        with pytest.raises(StorageError) as caught:
            transport.write(["m f=1.0 1"])
    finally:
        transport.close()

    assert (caught.value.status, caught.value.retryable) == (None, True)


def test_stub_server_sanity() -> None:
    """The stub answers the scripted status (guards the tests above against a silent stub)."""
    with StubHTTPServer([StubResponse(418, "teapot")]) as stub:
        assert requests.get(stub.url + "/x", timeout=5).status_code == 418
