"""`build_line`: escaping, sanitising, field rendering and refusals, per the InfluxDB line-protocol reference."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.sinks.influx import quote_ident, quote_literal
from collector.sinks.lineprotocol import FieldValue, LineProtocolError, build_line, sanitize_tag_value, valid_unicode
from unit.support import parse_line


def test_measurement_escapes_comma_and_space() -> None:
    assert build_line("my meas,x", {}, {"v": 1}, 7) == r"my\ meas\,x v=1i 7"


def test_tag_keys_and_values_escape_comma_equals_and_space() -> None:
    line = build_line("m", {"t k,=": "v a,l=ue"}, {"v": 1}, 7)

    assert line == r"m,t\ k\,\==v\ a\,l\=ue v=1i 7"
    assert parse_line(line).tags == {"t k,=": "v a,l=ue"}


def test_tags_are_sorted_by_key() -> None:
    assert build_line("m", {"b": "2", "a": "1", "c": "3"}, {"v": 1}, 7) == "m,a=1,b=2,c=3 v=1i 7"


@pytest.mark.parametrize(
    ("value", "rendered"),
    [
        ("line one\nline two", r"line\ one\ line\ two"),  # a newline would end the line
        ("a\r\nb", r"a\ \ b"),
        ("worker\\", "worker"),  # a trailing backslash would escape the separator after it
        ("worker\\\\", "worker"),
        ("in\\side", "in\\side"),  # an inner backslash is literal
    ],
)
def test_tag_values_are_sanitised(value: str, rendered: str) -> None:
    assert build_line("m", {"worker": value}, {"v": 1}, 7) == f"m,worker={rendered} v=1i 7"


@pytest.mark.parametrize("value", ["", "\\", "\\\\"])
def test_tag_with_an_empty_value_is_left_out(value: str) -> None:
    assert build_line("m", {"a": "1", "worker": value}, {"v": 1}, 7) == "m,a=1 v=1i 7"


@pytest.mark.parametrize(
    ("value", "rendered"),
    [
        ('say "hi"', r'"say \"hi\""'),
        ("back\\slash", r'"back\\slash"'),
        ("ends with\\", r'"ends with\\"'),
        ("two\nlines", '"two lines"'),
        ("", '""'),
        ("a,b=c d", '"a,b=c d"'),  # commas, equals and spaces are plain inside a string
    ],
)
def test_string_fields_are_quoted_and_escaped(value: str, rendered: str) -> None:
    line = build_line("m", {}, {"s": value}, 7)

    assert line == f"m s={rendered} 7"
    assert parse_line(line).fields == {"s": rendered}


@pytest.mark.parametrize(
    ("value", "rendered"),
    [
        (3, "3i"),
        (0, "0i"),
        (-5, "-5i"),
        (2**62, f"{2**62}i"),
        (1.5, "1.5"),
        (2.0, "2.0"),
        (0.0, "0.0"),
        (1e20, "1e+20"),
        (1e-07, "1e-07"),
    ],
)
def test_numbers_render_with_their_type(value: FieldValue, rendered: str) -> None:
    assert build_line("m", {}, {"v": value}, 7) == f"m v={rendered} 7"


def test_none_fields_are_left_out() -> None:
    assert build_line("m", {}, {"a": None, "b": 1.5, "c": None}, 7) == "m b=1.5 7"


@pytest.mark.parametrize("fields", [{}, {"a": None}, {"a": None, "b": None}])
def test_a_point_without_fields_is_refused(fields: dict[str, FieldValue | None]) -> None:
    with pytest.raises(LineProtocolError):
        build_line("m", {"a": "1"}, fields, 7)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf"), True, False, b"bytes", [1]])
def test_non_finite_bool_and_other_values_are_refused(value: object) -> None:
    with pytest.raises(LineProtocolError):
        build_line("m", {}, {"v": value}, 7)  # type: ignore[dict-item]


def test_a_full_line_parses_back_as_built() -> None:
    line = build_line(
        "pool_worker",
        {"group_id": "g1", "pool": "braiins", "account": "acc", "worker": "rig 7,\nhall=B\\"},
        {"hashrate_hs": 1.25e14, "online": 1, "note": 'x "y"'},
        1_780_000_000_000_000_000,
    )

    point = parse_line(line)

    assert point.measurement == "pool_worker"
    assert point.tags == {"account": "acc", "group_id": "g1", "pool": "braiins", "worker": "rig 7, hall=B"}
    assert point.fields == {"hashrate_hs": "125000000000000.0", "online": "1i", "note": r'"x \"y\""'}
    assert point.timestamp == 1_780_000_000_000_000_000


@pytest.mark.parametrize("timestamp_ns", [10**29, -(10**20)])
def test_a_timestamp_influxdb_cannot_store_is_refused(timestamp_ns: int) -> None:
    with pytest.raises(LineProtocolError, match="timestamp"):
        build_line("m", {}, {"f": 1.0}, timestamp_ns)


# --- properties: any input gives one parseable line, or a LineProtocolError ------------------------------------

HOSTILE = "'\",= =\n\t\r\\#\x00é日🙂aZ."
hostile = st.text(alphabet=st.sampled_from(HOSTILE), max_size=10)


def _scan(text: str, start: int, stops: str) -> int:
    """InfluxDB 1.x's series-key scan: the first stop character after `start` not preceded by a backslash."""
    i = start + 1
    while i < len(text) and not (text[i] in stops and text[i - 1] != "\\"):
        i += 1
    return i


def _scan_pairs(text: str, start: int, stops: str) -> int:
    """InfluxDB 1.x's field-set scan: a backslash escapes the character after it, pairwise."""
    i = start
    while i < len(text) and text[i] not in stops:
        i += 2 if text[i] == "\\" else 1
    return i


def _unescape(text: str, specials: str) -> str:
    for special in specials:
        text = text.replace("\\" + special, special)
    return text


def parse_v1(line: str) -> tuple[str, dict[str, str], dict[str, str], int]:
    """One line parsed the way influxd 1.6 does (string fields only besides integers): the model the
    integration test checks against the real server."""
    end = _scan(line, 0, ", ")
    measurement = _unescape(line[:end], ", ")
    tags: dict[str, str] = {}
    while line[end] == ",":
        key_end = _scan(line, end + 1, "=")
        value_end = _scan(line, key_end + 1, ", ")
        tags[_unescape(line[end + 1 : key_end], ",= ")] = _unescape(line[key_end + 1 : value_end], ",= ")
        end = value_end
    fields: dict[str, str] = {}
    i = end + 1
    while True:
        key_end = _scan_pairs(line, i, "=")
        key = _unescape(line[i:key_end], ",= ")
        if line[key_end + 1] == '"':
            j = key_end + 2
            while line[j] != '"':
                j += 2 if line[j] == "\\" else 1
            fields[key] = line[key_end + 2 : j].replace('\\"', '"').replace("\\\\", "\\")
            i = j + 1
        else:
            i = _scan_pairs(line, key_end + 1, ", ")
            fields[key] = line[key_end + 1 : i]
        if line[i] == " ":
            return measurement, tags, fields, int(line[i + 1 :])
        i += 1


def _sanitised(value: str) -> str:
    return value.replace("\n", " ").replace("\r", " ").replace("\x00", " ")


@settings(max_examples=300, deadline=None, database=None)
@given(
    measurement=hostile,
    tags=st.dictionaries(hostile, hostile, max_size=4),
    fields=st.dictionaries(hostile, hostile | st.integers(-(2**63), 2**63 - 1), min_size=1, max_size=4),
    timestamp=st.integers(0, 2**62),
)
def test_any_point_is_one_parseable_line_or_refused(
    measurement: str, tags: dict[str, str], fields: dict[str, FieldValue], timestamp: int
) -> None:
    try:
        line = build_line(measurement, tags, fields, timestamp)
    except LineProtocolError:
        return
    assert "\n" not in line
    assert "\r" not in line
    assert not line.startswith(("#", "\t", " "))
    parsed = parse_v1(line)
    expected_tags = {key: sanitize_tag_value(value) for key, value in tags.items() if sanitize_tag_value(value)}
    expected_fields = {
        key: _sanitised(value) if isinstance(value, str) else f"{value}i" for key, value in fields.items()
    }
    assert parsed == (measurement, expected_tags, expected_fields, timestamp)


@pytest.mark.parametrize(
    "measurement",
    ["", "#comment", "\tlead", "a\\", "a\nb", "a\rb", "a\x00b", "a\\,b", "a\\ b", "a\\=b", 'a\\"b'],
)
def test_unwritable_measurement_names_are_refused(measurement: str) -> None:
    with pytest.raises(LineProtocolError):
        build_line(measurement, {}, {"f": 1}, 7)


@pytest.mark.parametrize("key", ["", "time", "a\\", "a\nb", "a\x00b"])
def test_unwritable_tag_keys_are_refused_even_with_an_empty_value(key: str) -> None:
    for value in ("v", ""):
        with pytest.raises(LineProtocolError):
            build_line("m", {key: value}, {"f": 1}, 7)


@pytest.mark.parametrize("key", ["", "time", "\tlead", "a\\", "a\\,b", "a\\ b", "a\\=b", 'a\\"b', "a\rb"])
def test_unwritable_field_keys_are_refused(key: str) -> None:
    with pytest.raises(LineProtocolError):
        build_line("m", {}, {key: 1}, 7)


@pytest.mark.parametrize(("value", "stored"), [("a\x00b", "a b"), ("a\r\nb", "a  b"), ("\x00\\", " ")])
def test_nul_and_line_breaks_become_spaces_in_values(value: str, stored: str) -> None:
    line = build_line("m", {"t": value}, {"s": value}, 7)

    assert parse_v1(line)[1:3] == ({"t": stored.rstrip("\\")}, {"s": _sanitised(value)})


@pytest.mark.parametrize("text", ["a\rb", "a\x00b"])
def test_influxql_quoting_refuses_what_it_cannot_write(text: str) -> None:
    with pytest.raises(ValueError, match="cannot quote"):
        quote_literal(text)
    with pytest.raises(ValueError, match="cannot quote"):
        quote_ident(text)


def test_influxql_quoting_escapes_quotes_backslashes_and_newlines() -> None:
    assert quote_literal("it's a\\b\nc") == "'it\\'s a\\\\b\\nc'"
    assert quote_ident('a "b"\\\n') == '"a \\"b\\"\\\\\\n"'


def test_lone_surrogates_become_replacement_characters() -> None:
    """JSON can carry a lone surrogate ("\\ud800"); UTF-8 cannot encode it: values, names and string fields get
    U+FFFD, so every line encodes (a split pair is joined into its character)."""
    lone = json.loads('"a\\ud800b"')
    pair = "x\ud83d\ude00y"
    rendered = build_line(lone, {lone: lone, "p": pair}, {lone: 1, "s": lone, "q": pair}, 7)
    assert rendered == 'a\ufffdb,a\ufffdb=a\ufffdb,p=x\U0001f600y a\ufffdb=1i,s="a\ufffdb",q="x\U0001f600y" 7'
    rendered.encode()
    assert sanitize_tag_value(lone) == "a\ufffdb"


def test_text_that_encodes_is_returned_as_is() -> None:
    for text in ("plain", "caf\u00e9 \u2028 \U0001f600"):
        assert valid_unicode(text) is text
