"""InfluxDB transports: `V1Transport` (the default) and `V2Transport`; `collector.sinks.buffered` buffers for them.

`V1Transport` speaks the InfluxDB 1.x HTTP API (`POST /write`, `POST /query` with InfluxQL), which 1.x, 2.x
(v1-compatible endpoints, DBRP) and 3.x all accept; it is the default. `V2Transport` writes through
`influxdb_client` (`/api/v2/write`) for users who want the v2 API. Both raise `StorageError` with
`retryable` set the way Telegraf's outputs classify failures: network errors, timeouts, 429 and 5xx are
retryable; any other 4xx is not (retrying the same request cannot succeed).

Nothing here does I/O or starts a thread at import or construction time.
"""

from __future__ import annotations

import gzip as gzip_module
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self, cast
from urllib.parse import urlsplit, urlunsplit

import requests
import urllib3

from collector.errors import StorageError
from collector.redact import Redactor

log = logging.getLogger(__name__)

# InfluxDB puts the offending line into a 400's error text; keep messages bounded for logs and metrics.
ERROR_TEXT_LIMIT = 400
_ERROR_TAIL = 80  # kept from the end when truncating: 1.x puts `dropped=N` last
_DROPPED = re.compile(r"dropped=(\d+)")
# Refusals that say nothing about the batch itself (credentials, missing database or bucket): every later
# batch would be refused the same way, so InfluxSink keeps the lines and retries instead of discarding them.
HOLD_STATUSES = frozenset({401, 403, 404})


# InfluxQL strings and quoted identifiers have no escape for these (a raw one is a parse error).
_UNQUOTABLE = ("\r", "\x00")


def _escaped(text: str, quote: str) -> str:
    if any(char in text for char in _UNQUOTABLE):
        raise ValueError(f"{text!r}: InfluxQL cannot quote a carriage return or NUL (line protocol never writes one)")
    return text.replace("\\", "\\\\").replace(quote, "\\" + quote).replace("\n", "\\n")


def quote_ident(name: str) -> str:
    r"""Quote an InfluxQL identifier (database, measurement, tag or field key): `"`, `\` and newline are escaped.

    The one quoting helper for every InfluxQL minewatch builds. Raises ValueError for a CR or NUL.
    """
    return '"' + _escaped(name, '"') + '"'


def quote_literal(value: str) -> str:
    r"""Quote an InfluxQL string literal (a tag value in WHERE): `'`, `\` and newline are escaped.

    Raises ValueError for a CR or NUL, which InfluxQL cannot write (`collector.sinks.lineprotocol` turns both
    into a space in tag values, so a stored value never has one).
    """
    return "'" + _escaped(value, "'") + "'"


@dataclass(frozen=True, slots=True)
class Series:
    """One series of an InfluxQL result: measurement name, GROUP BY tags, column names and rows.

    Values are as InfluxDB's JSON gives them: a float field holding a whole number (1.0, 1e16) comes back
    as a JSON integer, hence a Python `int`; use `SHOW FIELD KEYS` for a field's stored type.
    """

    name: str
    columns: list[str]
    rows: list[list[Any]]
    tags: dict[str, str] = field(default_factory=dict)

    def records(self) -> list[dict[str, Any]]:
        """The rows as dicts keyed by column name."""
        return [dict(zip(self.columns, row, strict=False)) for row in self.rows]

    def column(self, name: str) -> list[Any]:
        """All values of one column."""
        index = self.columns.index(name)
        return [row[index] for row in self.rows]


def _truncate(text: str, limit: int = ERROR_TEXT_LIMIT) -> str:
    """Bound a text, keeping its head and its tail (where InfluxDB puts `dropped=N`)."""
    if len(text) <= limit:
        return text
    return f"{text[: limit - _ERROR_TAIL - 5]} ... {text[-_ERROR_TAIL:]}"


def _one_line(text: str) -> str:
    """Keep an error message on one log line."""
    return text.strip().replace("\r", "\\r").replace("\n", "\\n")


def _display_url(url: str) -> str:
    """The URL without user info, for messages."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _status_error(
    status: int, text: str, *, what: str, where: str, target: str, lines: int, redact: Redactor
) -> StorageError:
    """Turn a non-2xx answer into a `StorageError` with Telegraf's retry classification."""
    detail = _truncate(redact(_one_line(text))) or "(no error text)"
    if status in (401, 403):
        message = f"InfluxDB at {where} rejected the credentials ({status}) on {what}: {detail}"
        return StorageError(message, status=status, retryable=False)
    if status == 404:
        lowered = detail.lower()
        if "database" in lowered or "bucket" in lowered or "dbrp" in lowered or "retention" in lowered:
            message = f"InfluxDB at {where}: {target} not found ({what}, 404): {detail}"
        else:
            message = f"InfluxDB at {where}: {what} endpoint not found (404) while using {target}: {detail}"
        return StorageError(message, status=status, retryable=False)
    if status == 429 or status >= 500:
        message = f"InfluxDB at {where} failed the {what} with {status} (retryable): {detail}"
        return StorageError(message, status=status, retryable=True)
    if status == 400 and what == "write":
        match = _DROPPED.search(detail)
        dropped = int(match.group(1)) if match is not None else None
        if "unable to parse" in detail:
            summary = f"could not parse part of a {lines}-line batch"
        elif dropped is not None:
            summary = f"dropped {dropped} of {lines} lines"
        else:
            summary = f"refused a {lines}-line batch"
        message = f"InfluxDB at {where} {summary} (400): {detail}"
        return StorageError(message, status=status, retryable=False, dropped=dropped)
    message = f"InfluxDB at {where} refused the {what} ({status}): {detail}"
    return StorageError(message, status=status, retryable=False)


# What is read of an answer (decompressed): an error body only for its text, a query answer whole up to a cap
# far above any query minewatch runs (a month of one group's points is a few MiB).
ERROR_BODY_BYTES = 64 * 1024
MAX_QUERY_BYTES = 256 * 1024 * 1024


def _read_body(response: requests.Response, limit: int) -> tuple[bytes, bool]:
    """At most `limit` bytes of a streamed answer's body, and whether that was all of it; the rest is not read."""
    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in response.iter_content(64 * 1024):
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                return b"".join(chunks)[:limit], False
        return b"".join(chunks), True
    finally:
        response.close()


def _response_text(response: requests.Response) -> str:
    """The error text of an InfluxDB answer: `error` (1.x) or `message` (2.x/3.x) from JSON, else the body
    (its first `ERROR_BODY_BYTES` only)."""
    try:
        raw, _ = _read_body(response, ERROR_BODY_BYTES)
    except requests.RequestException:
        return ""
    text = raw.decode("utf-8", errors="replace")
    try:
        payload = json.loads(text)
    except ValueError:
        return text
    if isinstance(payload, dict):
        for key in ("error", "message"):
            if isinstance(payload.get(key), str):
                return str(payload[key])
    return text


class V1Transport:
    """The InfluxDB 1.x HTTP API: `POST /write` (line protocol, ns precision) and `POST /query` (InfluxQL)."""

    def __init__(
        self,
        url: str,
        database: str,
        *,
        retention_policy: str | None = None,
        username: str | None = None,
        password: str | None = None,
        token: str | None = None,
        timeout_s: float = 10.0,
        gzip: bool = False,
        session: requests.Session | None = None,
        redact: Redactor | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"InfluxDB URL must be http(s)://host[:port][/path], got {_display_url(url)!r}")
        if token is not None and (username is not None or password is not None):
            raise ValueError("give InfluxDB either a token or a username and password, not both")
        self._redact = redact if redact is not None else Redactor()
        # Registered with the (possibly shared) redactor so no log line or error can carry them.
        for secret in (password, token, parts.password):
            if secret:
                self._redact.add(secret)
        self.url = url.rstrip("/")
        self.where = _display_url(self.url)
        self.database = database
        self.retention_policy = retention_policy
        self.timeout_s = timeout_s
        self.gzip = gzip
        self._owns_session = session is None
        self._session = session if session is not None else requests.Session()
        self._headers: dict[str, str] = {}
        self._auth: tuple[str, str] | None = None
        if token is not None:
            self._headers["Authorization"] = f"Token {token}"
        elif username is not None or password is not None:
            self._auth = (username or "", password or "")
        rp_note = f" (retention policy {retention_policy!r})" if retention_policy else ""
        self._target = f"database {database!r}{rp_note}"

    def _request(self, method: str, path: str, *, what: str, **kwargs: Any) -> requests.Response:
        """Send one request; network failures become retryable `StorageError`s."""
        try:
            return self._session.request(
                method, self.url + path, timeout=self.timeout_s, auth=self._auth, stream=True, **kwargs
            )
        except (requests.ConnectionError, requests.Timeout) as exc:
            kind = "timed out" if isinstance(exc, requests.Timeout) else "unreachable"
            detail = _truncate(self._redact(_one_line(str(exc))))
            message = f"InfluxDB at {self.where} {kind} on {what}: {detail}"
            raise StorageError(message, retryable=True) from exc
        except requests.RequestException as exc:
            detail = _truncate(self._redact(_one_line(str(exc))))
            raise StorageError(f"InfluxDB {what} to {self.where} failed: {detail}", retryable=False) from exc

    def _error(self, response: requests.Response, what: str, lines: int = 0) -> StorageError:
        """Classify a failed answer."""
        return _status_error(
            response.status_code,
            _response_text(response),
            what=what,
            where=self.where,
            target=self._target,
            lines=lines,
            redact=self._redact,
        )

    def write(self, lines: Sequence[str]) -> None:
        """Write the lines in one request; raise `StorageError` unless InfluxDB acknowledged them all."""
        if not lines:
            return
        body = "\n".join(lines).encode()
        headers = {"Content-Type": "text/plain; charset=utf-8", **self._headers}
        if self.gzip:
            # Level 1: nearly all of the size win at a fraction of the CPU (anchors-collector.md §7.2).
            body = gzip_module.compress(body, compresslevel=1)
            headers["Content-Encoding"] = "gzip"
        params = {"db": self.database, "precision": "ns"}
        if self.retention_policy:
            params["rp"] = self.retention_policy
        response = self._request("POST", "/write", what="write", params=params, data=body, headers=headers)
        if not 200 <= response.status_code < 300:
            raise self._error(response, "write", len(lines))
        response.close()

    def query(self, influxql: str, *, epoch: str | None = "ns") -> list[Series]:
        """Run InfluxQL against the database; return every series of every statement, in order.

        `epoch` ("ns", "u", "ms", "s", ...) makes times integers; None gives RFC 3339 strings. An error in
        any statement raises a non-retryable `StorageError`.
        """
        data = {"q": influxql, "db": self.database}
        if epoch:
            data["epoch"] = epoch
        if self.retention_policy:
            data["rp"] = self.retention_policy
        response = self._request("POST", "/query", what="query", data=data, headers=self._headers)
        if response.status_code != 200:
            raise self._error(response, "query")
        try:
            body, complete = _read_body(response, MAX_QUERY_BYTES)
        except requests.RequestException as exc:
            detail = _truncate(self._redact(_one_line(str(exc))))
            raise StorageError(
                f"InfluxDB at {self.where} broke off the query answer: {detail}", retryable=True
            ) from exc
        if not complete:
            raise StorageError(
                f"InfluxDB at {self.where} answered the query with more than {MAX_QUERY_BYTES // 2**20} MiB: not read",
                status=200,
                retryable=False,
            )
        try:
            payload = json.loads(body)
        except ValueError as exc:
            detail = _truncate(self._redact(_one_line(body[:ERROR_BODY_BYTES].decode("utf-8", errors="replace"))))
            raise StorageError(
                f"InfluxDB at {self.where} answered the query with non-JSON: {detail}", status=200, retryable=False
            ) from exc
        if not isinstance(payload, dict):
            raise StorageError(
                f"InfluxDB at {self.where} answered the query with {type(payload).__name__}",
                status=200,
                retryable=False,
            )
        if "error" in payload:
            raise self._query_error(payload["error"])
        series: list[Series] = []
        for result in payload.get("results") or []:
            if "error" in result:
                raise self._query_error(result["error"])
            for item in result.get("series") or []:
                series.append(
                    Series(
                        name=str(item.get("name", "")),
                        columns=list(item.get("columns") or []),
                        rows=[list(row) for row in item.get("values") or []],
                        tags=dict(item.get("tags") or {}),
                    )
                )
        return series

    def _query_error(self, error: object) -> StorageError:
        """An InfluxQL error reported inside a 200 answer."""
        detail = _truncate(self._redact(_one_line(str(error))))
        return StorageError(f"InfluxQL error from {self.where} ({self._target}): {detail}", status=200, retryable=False)

    def ensure_database(self) -> None:
        """`CREATE DATABASE` (idempotent on 1.x); a refusal is fine if the database answers queries (2.x, 3.x)."""
        try:
            self.query(f"CREATE DATABASE {quote_ident(self.database)}", epoch=None)
        except StorageError as refused:
            if refused.retryable:
                raise
            try:
                self.query("SHOW MEASUREMENTS LIMIT 1", epoch=None)
            except StorageError:
                raise refused from None
            log.info(
                "CREATE DATABASE refused but %s answers queries; assuming it is managed elsewhere: %s",
                self._target,
                refused,
            )

    def ping(self) -> bool:
        """True if `/ping` answers 2xx."""
        try:
            response = self._session.get(
                self.url + "/ping", timeout=self.timeout_s, headers=self._headers, auth=self._auth, stream=True
            )
        except requests.RequestException:
            return False
        response.close()  # the body is not needed (nor read)
        return 200 <= response.status_code < 300

    def close(self) -> None:
        """Close the HTTP session if this transport created it."""
        if self._owns_session:
            self._session.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class V2Transport:
    """Writes through `influxdb_client` (`POST /api/v2/write`, org + bucket + token), synchronously."""

    def __init__(
        self,
        url: str,
        bucket: str,
        *,
        org: str = "",
        token: str = "",
        timeout_s: float = 10.0,
        gzip: bool = False,
        redact: Redactor | None = None,
    ) -> None:
        # Imported here: influxdb_client pulls in reactivex and friends, and only `api = "v2"` needs it.
        from influxdb_client.client.influxdb_client import InfluxDBClient
        from influxdb_client.client.write_api import SYNCHRONOUS
        from influxdb_client.domain.write_precision import WritePrecision
        from influxdb_client.rest import ApiException

        self._redact = redact if redact is not None else Redactor()
        for secret in (token, urlsplit(url).password):
            if secret:
                self._redact.add(secret)
        self.url = url.rstrip("/")
        self.where = _display_url(self.url)
        self.bucket = bucket
        self.org = org
        # The generated client types the parameter as WritePrecision but its constants are plain strings.
        self._precision = cast(WritePrecision, WritePrecision.NS)
        # The client's own retries stay off (its default for a plain client): InfluxSink owns retrying.
        self._client = InfluxDBClient(
            url=self.url, token=token, org=org, timeout=int(timeout_s * 1000), enable_gzip=gzip
        )
        self._write_api = self._client.write_api(write_options=SYNCHRONOUS)
        self._api_exception: type[Exception] = ApiException

    def write(self, lines: Sequence[str]) -> None:
        """Write the lines in one request; raise `StorageError` unless the server acknowledged them."""
        if not lines:
            return
        try:
            self._write_api.write(bucket=self.bucket, org=self.org, record=list(lines), write_precision=self._precision)
        except self._api_exception as exc:
            raw: Any = getattr(exc, "body", None)
            body = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw or "")
            raise _status_error(
                int(getattr(exc, "status", None) or 0),
                _v2_error_text(body) or str(getattr(exc, "reason", None) or ""),
                what="write",
                where=self.where,
                target=f"bucket {self.bucket!r}",
                lines=len(lines),
                redact=self._redact,
            ) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            detail = _truncate(self._redact(_one_line(f"{type(exc).__name__}: {exc}")))
            raise StorageError(f"InfluxDB at {self.where} unreachable on write: {detail}", retryable=True) from exc

    def close(self) -> None:
        """Close the client's connection pool."""
        self._write_api.close()  # type: ignore[no-untyped-call]
        self._client.close()  # type: ignore[no-untyped-call]


def _v2_error_text(body: str) -> str:
    """The `message` of a 2.x/3.x JSON error body, else the body."""
    try:
        payload = json.loads(body)
    except ValueError:
        return body
    if isinstance(payload, dict):
        for key in ("message", "error"):
            if isinstance(payload.get(key), str):
                return str(payload[key])
    return body
