"""Secrets never leave the process: the redactor, the logging filter, and HTTP errors for a key in the URL path."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import requests

from collector.adapters.base import SourceContext
from collector.adapters.http import HttpClient
from collector.errors import AuthFailed, BadResponse, SourceError, Unreachable
from collector.pools.emcd.adapter import EmcdSettings, EmcdSource
from collector.redact import REDACTED, RedactingFilter, Redactor

# An EMCD-style API key with characters that percent-encoding changes, so both spellings must be caught.
KEY = "SEKRIT/emcd+key=9f8e7d"
ENCODED_KEY = quote(KEY, safe="")


def _redactor(*secrets: str) -> Redactor:
    redactor = Redactor()
    for secret in secrets:
        redactor.add(secret)
    return redactor


def test_redactor_replaces_the_secret_and_its_percent_encoded_form() -> None:
    redact = _redactor(KEY)
    text = f"GET https://api.emcd.io/v1/btc/workers/{ENCODED_KEY} failed; key was {KEY}"

    assert redact(text) == f"GET https://api.emcd.io/v1/btc/workers/{REDACTED} failed; key was {REDACTED}"


def test_redactor_replaces_a_longer_secret_whole_when_it_contains_a_shorter_one() -> None:
    redact = _redactor("abcd1234", "abcd1234-extended")

    assert redact("x abcd1234-extended y abcd1234") == f"x {REDACTED} y {REDACTED}"


def test_redactor_leaves_text_without_secrets_alone() -> None:
    assert _redactor(KEY)("nothing to hide here") == "nothing to hide here"


@pytest.fixture
def captured_log() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter(_redactor(KEY)))
    log = logging.getLogger("minewatch.test.redaction")
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    log.propagate = False
    yield log, stream
    log.removeHandler(handler)


def test_logging_filter_redacts_a_message_built_from_args(captured_log: tuple[logging.Logger, io.StringIO]) -> None:
    log, stream = captured_log

    log.warning("polling %s with key %r", f"/v1/btc/workers/{ENCODED_KEY}", KEY)

    output = stream.getvalue()
    assert KEY not in output
    assert ENCODED_KEY not in output
    assert f"polling /v1/btc/workers/{REDACTED} with key '{REDACTED}'" in output


def test_logging_filter_redacts_exception_text(captured_log: tuple[logging.Logger, io.StringIO]) -> None:
    log, stream = captured_log

    try:
        raise RuntimeError(f"pool said: bad key {KEY}")
    except RuntimeError:
        log.exception("poll crashed")

    output = stream.getvalue()
    assert "RuntimeError: pool said: bad key ***" in output
    assert KEY not in output
    assert ENCODED_KEY not in output


def _emcd_url(base: str, route: str) -> str:
    return f"{base}/{route}/v1/btc/workers/{ENCODED_KEY}"


@pytest.mark.parametrize(
    ("route", "error"),
    [("status/500", Unreachable), ("status/401", AuthFailed), ("body/malformed", BadResponse)],
)
def test_http_errors_for_a_key_in_the_path_do_not_show_the_key(
    http_base: str, route: str, error: type[SourceError]
) -> None:
    client = HttpClient(requests.Session(), redact=_redactor(KEY))
    client.start_poll(5.0)

    with pytest.raises(error) as caught:
        client.get_json(_emcd_url(http_base, route))

    message = str(caught.value)
    assert KEY not in message
    assert ENCODED_KEY not in message
    assert f"/v1/btc/workers/{REDACTED}" in message


def test_connection_refused_for_a_key_in_the_path_does_not_show_the_key(closed_port: int) -> None:
    client = HttpClient(requests.Session(), redact=_redactor(KEY))
    client.start_poll(5.0)

    with pytest.raises(Unreachable) as caught:
        client.get_json(_emcd_url(f"http://127.0.0.1:{closed_port}", "ok"))

    message = str(caught.value)
    assert KEY not in message
    assert ENCODED_KEY not in message
    assert "connection failed" in message


def test_emcd_source_with_key_from_a_file_fails_without_showing_the_key(tmp_path: Path, closed_port: int) -> None:
    (tmp_path / "emcd.secret").write_text(KEY + "\n", encoding="utf-8")
    settings = EmcdSettings(api_key_file="emcd.secret", base_url=f"http://127.0.0.1:{closed_port}")
    redactor = Redactor()
    settings.resolve_secrets({}, tmp_path, redactor)
    http = HttpClient(requests.Session(), redact=redactor)
    ctx = SourceContext(
        http=http, clock=lambda: 1_780_000_000.0, log=logging.getLogger("test"), target="emcd/x", coin="BTC"
    )
    http.start_poll(5.0)

    with pytest.raises(Unreachable) as caught:
        EmcdSource(settings, ctx).collect()

    assert KEY not in str(caught.value)
    assert ENCODED_KEY not in str(caught.value)
    assert REDACTED in str(caught.value)


def test_many_secrets_are_all_redacted_through_the_prefix_index() -> None:
    """Past a few dozen secrets the redactor switches strategy; it must still find every one, longest first."""
    redactor = Redactor()
    secrets = [f"key-{i:05d}-{'x' * (i % 7)}" for i in range(500)]
    for secret in secrets:
        redactor.add(secret)
    redactor.add("key-00042-zzzz")  # shares a prefix with many others

    text = " ".join([secrets[3], secrets[499], "key-00042-zzzz", "harmless"])

    assert redactor(text) == "*** *** *** harmless"
