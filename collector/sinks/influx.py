"""InfluxDB transports and `InfluxSink`, the buffered writer that never blocks the collector.

`V1Transport` speaks the InfluxDB 1.x HTTP API (`POST /write`, `POST /query` with InfluxQL), which 1.x, 2.x
(v1-compatible endpoints, DBRP) and 3.x all accept; it is the default. `V2Transport` writes through
`influxdb_client` (`/api/v2/write`) for users who want the v2 API. Both raise `StorageError` with
`retryable` set the way Telegraf's outputs classify failures: network errors, timeouts, 429 and 5xx are
retryable; any other 4xx is not (retrying the same request cannot succeed).

`InfluxSink` copies Telegraf's output model: a bounded in-memory buffer that drops the oldest lines on
overflow, a writer thread that flushes on a timer or when a batch is ready, keeps a batch that failed for a
retryable reason and retries it with capped exponential backoff, and sets aside a batch the server refused.

Nothing here does I/O or starts a thread at import or construction time.
"""

from __future__ import annotations

import gzip as gzip_module
import json
import logging
import re
import threading
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import islice
from types import TracebackType
from typing import Any, Self, cast
from urllib.parse import urlsplit, urlunsplit

import requests
import urllib3

from collector.errors import StorageError
from collector.redact import Redactor
from collector.sinks.base import Transport

log = logging.getLogger(__name__)

# InfluxDB puts the offending line into a 400's error text; keep messages bounded for logs and metrics.
ERROR_TEXT_LIMIT = 400
_ERROR_TAIL = 80  # kept from the end when truncating: 1.x puts `dropped=N` last
_DROPPED = re.compile(r"dropped=(\d+)")
# Refusals that say nothing about the batch itself (credentials, missing database or bucket): every later
# batch would be refused the same way, so InfluxSink keeps the lines and retries instead of discarding them.
HOLD_STATUSES = frozenset({401, 403, 404})


def quote_ident(name: str) -> str:
    r"""Quote an InfluxQL identifier (database, measurement, tag or field key): `"` and `\` are escaped."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def quote_literal(value: str) -> str:
    r"""Quote an InfluxQL string literal (a tag value in WHERE): `'`, `\` and newline are escaped."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n") + "'"


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
        dropped = _DROPPED.search(detail)
        if "unable to parse" in detail:
            summary = f"could not parse part of a {lines}-line batch"
        elif dropped is not None:
            summary = f"dropped {dropped.group(1)} of {lines} lines"
        else:
            summary = f"refused a {lines}-line batch"
        return StorageError(f"InfluxDB at {where} {summary} (400): {detail}", status=status, retryable=False)
    message = f"InfluxDB at {where} refused the {what} ({status}): {detail}"
    return StorageError(message, status=status, retryable=False)


def _response_text(response: requests.Response) -> str:
    """The error text of an InfluxDB answer: `error` (1.x) or `message` (2.x/3.x) from JSON, else the body."""
    try:
        payload = response.json()
    except ValueError:
        return response.text
    if isinstance(payload, dict):
        for key in ("error", "message"):
            if isinstance(payload.get(key), str):
                return str(payload[key])
    return response.text


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
            return self._session.request(method, self.url + path, timeout=self.timeout_s, auth=self._auth, **kwargs)
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
            payload = response.json()
        except ValueError as exc:
            detail = _truncate(self._redact(_one_line(response.text)))
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
                self.url + "/ping", timeout=self.timeout_s, headers=self._headers, auth=self._auth
            )
        except requests.RequestException:
            return False
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


class InfluxSink:
    """Buffered, retrying writer in front of a `Transport` (Telegraf's output model, in memory).

    `write()` only appends to a bounded buffer (the oldest lines are dropped and counted on overflow) and
    never waits for the store. A writer thread, started by `start()`, sends batches of up to `batch_size`
    lines every `flush_interval_s`, or as soon as a full batch is waiting:

    - success: the lines count as `written_lines`;
    - retryable failure (network, timeout, 429, 5xx): the batch stays at the head of the buffer and is
      retried after `flush_interval_s * 2**(failures-1)`, capped at `max_backoff_s`;
    - 401/403/404 (credentials, missing database/bucket): also kept and retried with backoff, because every
      later batch would be refused the same way and discarding them all would lose the whole stream;
    - any other refusal (400 parse error, field type conflict, ...): the batch is set aside (the last
      `max_set_aside_batches` are kept in `set_aside`) and counted in `rejected_lines`. A 1.x partial
      write stores the batch's valid lines anyway; the server's own count is in `last_error`.

    Invariant: lines accepted == `written_lines` + `dropped_lines` + `rejected_lines` + `buffered_lines`.
    Lines of a batch in flight that overflow pushes out count as dropped, not written.
    """

    def __init__(
        self,
        transport: Transport,
        *,
        batch_size: int = 5000,
        flush_interval_s: float = 1.0,
        max_buffered_lines: int = 100_000,
        max_backoff_s: float = 30.0,
        max_set_aside_batches: int = 10,
        name: str = "influxdb",
        redact: Redactor | None = None,
        log: logging.Logger | None = None,
    ) -> None:
        if batch_size < 1 or max_buffered_lines < 1:
            raise ValueError("batch_size and max_buffered_lines must be positive")
        if flush_interval_s <= 0 or max_backoff_s <= 0:
            raise ValueError("flush_interval_s and max_backoff_s must be positive")
        self.transport = transport
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self.max_buffered_lines = max_buffered_lines
        self.max_backoff_s = max_backoff_s
        self.name = name
        self._redact = redact if redact is not None else Redactor()
        self._log = log if log is not None else logging.getLogger(__name__)

        self.written_lines = 0
        self.dropped_lines = 0
        self.rejected_lines = 0
        self.write_errors = 0
        self.consecutive_failures = 0
        self.last_error: str | None = None
        self.set_aside: deque[list[str]] = deque(maxlen=max_set_aside_batches)

        self._cond = threading.Condition()
        self._io_lock = threading.Lock()  # one batch in flight at a time, thread or inline flush
        self._buf: deque[str] = deque()
        # Sequence numbers: line k (counting every line ever accepted) is _buf[k - _head] while buffered.
        self._head = 0
        self._batch_end = 0  # one past the in-flight batch; == _head when nothing is in flight
        self._drain_to = 0  # the writer keeps sending until _head reaches this (a tick or a flush asked)
        self._retry_at = 0.0  # monotonic time before which no attempt is made (backoff)
        self._thread: threading.Thread | None = None
        self._stop = False
        self._closed = False
        self._dropped_unreported = 0
        self._late_writes_logged = False

    @property
    def buffered_lines(self) -> int:
        """Lines accepted but not yet written, rejected or dropped (including the batch in flight)."""
        return len(self._buf)

    def start(self) -> None:
        """Start the writer thread (idempotent)."""
        with self._cond:
            if self._closed:
                raise RuntimeError(f"{self.name} sink is closed")
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run, name=f"sink-{self.name}", daemon=True)
            self._thread.start()

    def write(self, lines: Iterable[str]) -> None:
        """Append lines to the buffer; on overflow drop the oldest. Never blocks on the store."""
        batch = lines if isinstance(lines, list) else list(lines)
        if not batch:
            return
        with self._cond:
            if self._closed:
                # A job finishing during shutdown must not crash; its lines are lost, so count them.
                self.dropped_lines += len(batch)
                first_late_write, self._late_writes_logged = not self._late_writes_logged, True
            else:
                first_late_write = False
                self._append_locked(batch)
        if first_late_write:
            self._log.warning("%s sink: lines written after close() are dropped", self.name)

    def _append_locked(self, batch: list[str]) -> None:
        """Add lines, dropping the oldest beyond `max_buffered_lines` (lock held)."""
        overflow = len(self._buf) + len(batch) - self.max_buffered_lines
        if overflow > 0:
            from_buffer = min(overflow, len(self._buf))
            for _ in range(from_buffer):
                self._buf.popleft()
            if overflow > from_buffer:  # a single write larger than the whole buffer keeps its newest lines
                batch = batch[overflow - from_buffer :]
            self._head += overflow
            self.dropped_lines += overflow
            self._dropped_unreported += overflow
        self._buf.extend(batch)
        # Wake the writer for a full batch, but not while it is backing off from a failure.
        if len(self._buf) >= self.batch_size and time.monotonic() >= self._retry_at:
            self._cond.notify_all()

    def flush(self, timeout_s: float = 30.0) -> bool:
        """Wait until every line accepted before this call is written, rejected or dropped; False on timeout.

        Without a running writer thread the batches are sent from the calling thread.
        """
        deadline = time.monotonic() + timeout_s
        with self._cond:
            target = self._head + len(self._buf)
            self._drain_to = max(self._drain_to, target)
            thread = self._thread
            self._cond.notify_all()
        if thread is None or not thread.is_alive():
            return self._drain_inline(target, deadline)
        with self._cond:
            while self._head < target:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    def close(self, timeout_s: float = 30.0) -> None:
        """Flush (up to `timeout_s`), stop the writer thread and close the transport."""
        with self._cond:
            if self._closed:
                return
        delivered = self.flush(timeout_s)
        with self._cond:
            self._closed = True
            self._stop = True
            self._cond.notify_all()
            thread = self._thread
            left = len(self._buf)
        if thread is not None:
            thread.join(timeout=max(timeout_s, 1.0))
        if not delivered:
            self._log.warning("%s sink closed with %d lines undelivered: %s", self.name, left, self.last_error)
        self.transport.close()

    # -- writer -------------------------------------------------------------------------------------------

    def _run(self) -> None:
        """The writer thread: wait for a tick, a full batch or a flush request; send; settle; repeat."""
        next_tick = time.monotonic() + self.flush_interval_s
        while True:
            with self._cond:
                while True:
                    if self._stop:
                        return
                    now = time.monotonic()
                    if now >= next_tick:
                        # A tick flushes everything buffered at that moment, batch after batch.
                        self._drain_to = max(self._drain_to, self._head + len(self._buf))
                        next_tick = now + self.flush_interval_s
                    ready = len(self._buf) >= self.batch_size or self._head < self._drain_to
                    if self._buf and ready and now >= self._retry_at:
                        break
                    wake = self._retry_at if (self._buf and ready) else next_tick
                    self._cond.wait(max(0.0, wake - now))
                batch = self._take_batch_locked()
            self._send(batch)
            self._report_overflow()

    def _drain_inline(self, target: int, deadline: float) -> bool:
        """Send batches from the calling thread until line `target` is settled or the deadline passes."""
        while True:
            with self._cond:
                if self._head >= target:
                    return True
                wait = self._retry_at - time.monotonic()
            if time.monotonic() + max(wait, 0.0) >= deadline:
                return False
            if wait > 0:
                time.sleep(wait)
            with self._cond:
                if not self._buf:
                    return True
                batch = self._take_batch_locked()
            self._send(batch)
            self._report_overflow()

    def _take_batch_locked(self) -> list[str]:
        """Copy the oldest lines as the next batch; they stay buffered until settled."""
        batch = list(islice(self._buf, self.batch_size))
        self._batch_end = self._head + len(batch)
        return batch

    def _send(self, batch: list[str]) -> None:
        """Write one batch and settle the outcome."""
        with self._io_lock:
            error: StorageError | None = None
            try:
                self.transport.write(batch)
            except StorageError as exc:
                error = exc
            except Exception as exc:
                # A transport bug must not kill the writer or lose the batch: treat it like an outage.
                self._log.exception("%s sink: unexpected error from the transport", self.name)
                error = StorageError(f"unexpected {type(exc).__name__}: {exc}", retryable=True)
            with self._cond:
                record = self._settle(batch, error)
                self._cond.notify_all()
        if record is not None:
            self._log.log(record[0], record[1], *record[2])

    def _settle(self, batch: list[str], error: StorageError | None) -> tuple[int, str, tuple[object, ...]] | None:
        """Apply a batch's outcome to the buffer and the counters (lock held); return what to log, if anything.

        Logging happens after the lock is released: a slow log handler must not stall `write()` callers.
        """
        # Overflow may have pushed some of the in-flight lines out meanwhile; only the rest is ours to settle.
        remaining = max(0, self._batch_end - self._head)
        self._batch_end = self._head
        if error is None:
            self._pop_locked(remaining)
            self.written_lines += remaining
            failures, self.consecutive_failures = self.consecutive_failures, 0
            self._retry_at = 0.0
            if failures:
                return logging.INFO, "%s sink: writes succeed again after %d failed attempts", (self.name, failures)
            return None
        message = self._redact(str(error))
        self.write_errors += 1
        self.last_error = message
        if error.retryable or error.status in HOLD_STATUSES:
            self.consecutive_failures += 1
            delay = min(self.max_backoff_s, self.flush_interval_s * 2 ** min(self.consecutive_failures - 1, 30))
            self._retry_at = time.monotonic() + delay
            if self.consecutive_failures > 1:  # logged once per outage, not once per retry
                return None
            level = logging.WARNING if error.retryable else logging.ERROR
            text = "%s sink: write failed, keeping %d lines and retrying with backoff: %s"
            return level, text, (self.name, len(self._buf), message)
        self._pop_locked(remaining)
        self.rejected_lines += remaining
        self.set_aside.append(batch)
        self.consecutive_failures = 0
        self._retry_at = 0.0
        text = "%s sink: InfluxDB refused a batch of %d lines; set aside, not retried: %s"
        return logging.ERROR, text, (self.name, remaining, message)

    def _pop_locked(self, count: int) -> None:
        """Remove `count` lines from the head of the buffer (lock held)."""
        for _ in range(count):
            self._buf.popleft()
        self._head += count

    def _report_overflow(self) -> None:
        """Log buffer overflow once per batch attempt, not once per dropped line."""
        with self._cond:
            dropped, self._dropped_unreported = self._dropped_unreported, 0
            limit = self.max_buffered_lines
        if dropped:
            self._log.warning("%s sink: buffer full (%d lines); dropped the %d oldest lines", self.name, limit, dropped)
