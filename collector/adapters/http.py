"""The HTTP client every pool source uses: timeouts, rate budget, size limit, errors mapped to typed errors.

One `requests.Session` per pool host is shared by the accounts on that host (connection pooling); each
account gets its own `HttpClient` with its own poll deadline, so one hung pool never holds up another.
"""

from __future__ import annotations

import http.client
import json
import ssl
import time
from collections.abc import Callable, Mapping
from typing import Any

import requests
import urllib3

from collector.errors import AuthFailed, BadResponse, RateLimited, ServerError, SourceError, Timeout, Unreachable
from collector.ratelimit import TokenBucket
from collector.redact import Redactor

DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
_CHUNK = 64 * 1024


def _tls_reason(exc: BaseException) -> str:
    """The certificate problem behind a TLS failure ("self-signed certificate"), never the URL or its secrets."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        error = pending.pop()
        if id(error) in seen:
            continue
        seen.add(id(error))
        if isinstance(error, ssl.SSLCertVerificationError):
            return str(error.verify_message or error.reason or "certificate not trusted")
        if isinstance(error, ssl.SSLError):
            return str(error.reason or "TLS handshake failed")
        pending.extend(arg for arg in error.args if isinstance(arg, BaseException))
        pending.extend(
            linked
            for linked in (getattr(error, "reason", None), error.__cause__, error.__context__)
            if isinstance(linked, BaseException)
        )
    return "TLS handshake failed"


def _reject_constant(name: str) -> float:
    raise ValueError(f"non-standard JSON constant {name}")


class _Shown:
    """A request as error messages show it; the URL is redacted only when a message is built, not per request."""

    def __init__(self, method: str, url: str, redact: Redactor) -> None:
        self._method = method
        self._url = url
        self._redact = redact

    def __str__(self) -> str:
        return self._redact(f"{self._method} {self._url}")


def loads_json(body: bytes, *, what: object) -> Any:
    """Decode a JSON body; trailing NUL bytes are tolerated, NaN/Infinity and invalid UTF-8 are not."""
    try:
        text = body.rstrip(b"\x00 \r\n\t").decode("utf-8")
        return json.loads(text, parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise BadResponse(f"{what}: invalid JSON ({type(exc).__name__}: {str(exc)[:120]})") from None


def retry_after_seconds(value: str | None) -> float | None:
    """Read a Retry-After header given in seconds; HTTP dates and garbage give None (back off instead)."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if 0 <= seconds < 86_400 else None


class HttpClient:
    """GET/POST JSON for one target with a per-poll deadline and a shared rate bucket."""

    def __init__(
        self,
        session: requests.Session,
        *,
        redact: Redactor,
        bucket: TokenBucket | None = None,
        connect_timeout_s: float = 5.0,
        read_timeout_s: float = 15.0,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._session = session
        self._redact = redact
        self._bucket = bucket
        self._connect_timeout_s = connect_timeout_s
        self._read_timeout_s = read_timeout_s
        self._max_body_bytes = max_body_bytes
        self._monotonic = monotonic
        self._sleep = sleep
        self._deadline = float("inf")
        self.requests_made = 0

    def start_poll(self, timeout_s: float) -> None:
        """Begin a poll that must finish within `timeout_s` seconds (rate waits and requests included)."""
        self._deadline = self._monotonic() + timeout_s

    def get_json(
        self, url: str, *, headers: Mapping[str, str] | None = None, params: Mapping[str, str] | None = None
    ) -> Any:
        """GET `url` and return its decoded JSON body."""
        return self.request_json("GET", url, headers=headers, params=params)

    def post_json(self, url: str, *, body: Any, headers: Mapping[str, str] | None = None) -> Any:
        """POST a JSON body to `url` and return the decoded JSON answer."""
        return self.request_json("POST", url, headers=headers, json_body=body)

    def post_form(self, url: str, *, form: Mapping[str, str], headers: Mapping[str, str] | None = None) -> Any:
        """POST form fields (application/x-www-form-urlencoded) to `url` and return the decoded JSON answer."""
        return self.request_json("POST", url, headers=headers, form=form)

    def request_json(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        form: Mapping[str, str] | None = None,
    ) -> Any:
        """Send one request and return its JSON, or raise the typed error its failure maps to."""
        where = _Shown(method, url, self._redact)
        if self._monotonic() >= self._deadline:
            raise Timeout(f"{where}: poll deadline passed before the request")
        self._wait_for_budget()
        remaining = self._deadline - self._monotonic()
        if remaining <= 0:
            raise Timeout(f"{where}: poll deadline passed before the request")
        timeout = (min(self._connect_timeout_s, remaining), min(self._read_timeout_s, remaining))
        self.requests_made += 1
        try:
            with self._session.request(
                method,
                url,
                headers=dict(headers or {}),
                params=params,
                json=json_body,
                data=form,
                timeout=timeout,
                stream=True,
                # A redirect to another host would carry a pool's own auth header (requests strips only
                # Authorization); pool APIs do not redirect, so a 3xx is a bad response.
                allow_redirects=False,
            ) as response:
                self._raise_for_status(response, where)
                body = self._read_body(response, where)
        except (requests.Timeout, urllib3.exceptions.ReadTimeoutError):
            raise Timeout(f"{where}: timed out") from None
        except urllib3.exceptions.DecodeError:
            raise BadResponse(f"{where}: the body could not be decompressed") from None
        except urllib3.exceptions.ProtocolError as exc:
            if any(isinstance(arg, urllib3.exceptions.InvalidChunkLength) for arg in exc.args):
                raise BadResponse(f"{where}: malformed chunked body (a chunk size that is not one)") from None
            # http.client's IncompleteRead too: urllib3 raises either, depending on where the body stopped.
            if any(isinstance(arg, http.client.IncompleteRead) for arg in exc.args):
                raise BadResponse(f"{where}: body cut off before its announced length") from None
            raise Unreachable(f"{where}: connection broken while reading the body") from None
        except requests.exceptions.SSLError as exc:
            # Certificates are always verified (no code path turns that off); say why this one failed.
            raise Unreachable(f"{where}: TLS certificate verification failed ({_tls_reason(exc)})") from None
        except requests.ConnectionError as exc:
            reason = type(exc.__context__ or exc).__name__
            raise Unreachable(f"{where}: connection failed ({reason})") from None
        except requests.RequestException as exc:
            raise Unreachable(f"{where}: request failed ({type(exc).__name__})") from None
        return loads_json(body, what=f"{where}")

    def _wait_for_budget(self) -> None:
        if self._bucket is None:
            return
        wait = self._bucket.reserve(self._deadline)
        if wait > 0:
            self._sleep(wait)

    def _raise_for_status(self, response: requests.Response, where: _Shown) -> None:
        status = response.status_code
        if status < 300:
            return
        prefix = f"{where}: HTTP {status}"
        error: SourceError
        if status in (401, 403):
            error = AuthFailed(f"{prefix}: credentials rejected")
        elif status == 429:
            error = RateLimited(
                f"{prefix}: rate limited", retry_after=retry_after_seconds(response.headers.get("Retry-After"))
            )
        elif status >= 500:
            error = ServerError(f"{prefix}: server error")
        elif status < 400:
            error = BadResponse(f"{prefix}: unexpected redirect (not followed)")
        else:
            error = BadResponse(f"{prefix}: unexpected status")
        raise error

    def _read_body(self, response: requests.Response, where: _Shown) -> bytes:
        """Read what each receive brings (read1), so the deadline is checked however slowly bytes trickle in."""
        chunks: list[bytes] = []
        size = 0
        while chunk := response.raw.read1(_CHUNK, decode_content=True):
            size += len(chunk)
            if size > self._max_body_bytes:
                raise BadResponse(f"{where}: body larger than {self._max_body_bytes} bytes, cut off")
            if self._monotonic() > self._deadline:
                raise Timeout(f"{where}: poll deadline passed while reading the body")
            chunks.append(chunk)
        return b"".join(chunks)
