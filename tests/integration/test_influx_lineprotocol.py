"""Line protocol against the real influxd 1.6.7: what `build_line` writes is what InfluxQL reads back.

Intended transformations (design.md, "Line protocol"), asserted exactly below:
- tag values: newline and carriage return become a space; trailing backslashes are dropped (all of them); a
  value that is empty afterwards leaves the tag out;
- string fields: newline and carriage return become a space (1.6.7 would store a raw newline, but other
  parsers split lines on it);
- everything else (comma, equals sign, space, double quote, backslash inside a value, unicode, InfluxQL
  keywords) round-trips unchanged.
Measurement names, tag keys and field keys are minewatch's own names; the cases here are the characters
the line-protocol reference says must be escaped, plus the ones that need none.
"""

from __future__ import annotations

import pytest

from collector.sinks.influx import V1Transport, quote_ident, quote_literal
from collector.sinks.lineprotocol import FieldValue, LineProtocolError, build_line

pytestmark = pytest.mark.integration

T0 = 1_700_000_000 * 1_000_000_000  # one shard week for every point: influxd creates shards per week

HOSTILE = [
    "plain",
    "comma,inside",
    "equals=inside",
    "space inside",
    " leading and trailing ",
    'double"quote',
    "back\\slash",
    "double\\\\backslash",
    "back\\,slash-comma",
    "back\\ slash-space",
    "back\\=slash-equals",
    'back\\"slash-quote',
    "literal \\n two chars",
    "unicode é 日本 🙂",
    "SELECT * FROM x; DROP DATABASE y",
    "'single' quotes",
]
TAG_VALUE_SANITISED = {
    "line\nbreak": "line break",
    "carriage\rreturn": "carriage return",
    "trailing\\": "trailing",
    "trailing\\\\\\": "trailing",
    "both\n\\": "both ",
}
STRING_FIELD_CASES = {
    **{value: value for value in HOSTILE},
    "trailing\\": "trailing\\",
    '\\"': '\\"',
    "line\nbreak\r\nand more": "line break  and more",
    "": "",
    '{"json": ["a", 1]}': '{"json": ["a", 1]}',
}
# Names: the escaped characters and the unescaped ones; see the xfail tests for what is not handled.
NAMES = [
    "plain_name",
    "comma,name",
    "equals=name",
    "space name",
    'double"quote',
    "back\\slash",
    "unicode_é_日本",
    "select",
    "time_like",
]


def _select(db: V1Transport, influxql: str) -> list[dict[str, object]]:
    """All records of a one-series answer."""
    series = db.query(influxql)
    assert len(series) == 1, series
    return series[0].records()


def test_tag_values_round_trip(influx_db: V1Transport) -> None:
    """Hostile tag values come back unchanged; newlines and trailing backslashes are sanitised as documented."""
    expected = {value: value for value in HOSTILE} | TAG_VALUE_SANITISED
    values = list(expected)
    influx_db.write([build_line("rt_tags", {"v": value}, {"idx": i}, T0 + i) for i, value in enumerate(values)])

    stored = {row["idx"]: row["v"] for row in _select(influx_db, 'SELECT "idx", "v" FROM "rt_tags"')}

    assert stored == {i: expected[value] for i, value in enumerate(values)}


@pytest.mark.parametrize("value", ["comma,inside", 'back\\"slash-quote', "unicode é 日本 🙂", "back\\slash"])
def test_tag_values_match_in_where(influx_db: V1Transport, value: str) -> None:
    """`quote_literal` finds a stored tag value in a WHERE clause."""
    influx_db.write(
        [build_line("rt_where", {"v": value}, {"f": 1.0}, T0), build_line("rt_where", {"v": "x"}, {"f": 2.0}, T0)]
    )

    rows = _select(influx_db, f'SELECT "f" FROM "rt_where" WHERE "v" = {quote_literal(value)}')

    assert [row["f"] for row in rows] == [1]


def test_empty_tag_value_leaves_the_tag_out(influx_db: V1Transport) -> None:
    """A tag whose value is empty (or only backslashes) is not written at all."""
    influx_db.write([build_line("rt_empty", {"a": "", "b": "\\\\", "c": "x"}, {"f": 1.0}, T0)])

    keys = [row["tagKey"] for row in _select(influx_db, 'SHOW TAG KEYS FROM "rt_empty"')]

    assert keys == ["c"]


def test_string_fields_round_trip(influx_db: V1Transport) -> None:
    """Quotes, backslashes (inside and trailing), unicode and JSON survive; newlines become spaces."""
    values = list(STRING_FIELD_CASES)
    influx_db.write([build_line("rt_strings", {}, {"idx": i, "s": value}, T0 + i) for i, value in enumerate(values)])

    stored = {row["idx"]: row["s"] for row in _select(influx_db, 'SELECT "idx", "s" FROM "rt_strings"')}

    assert stored == {i: STRING_FIELD_CASES[value] for i, value in enumerate(values)}


FLOATS: dict[str, float] = {
    "big": 1e16,
    "small": 1e-08,
    "tenth": 0.1,
    "third": 1 / 3,
    "neg": -2.5e-07,
    "huge": 1.7976931348623157e308,
    "tiny": 5e-324,
    "whole": 3.0,
    "zero": 0.0,
    "precise": 123456789.12345679,
}
INTS: dict[str, int] = {
    "i_zero": 0,
    "i_one": 1,
    "i_neg": -42,
    "i_max": 2**63 - 1,
    "i_min": -(2**63),
    "i_sats": 2_100_000_000_000_000,
}


def test_numbers_round_trip_with_their_types(influx_db: V1Transport) -> None:
    """Floats (large, small, scientific) and ints (negative, int64 limits) are stored exactly, as float/integer."""
    fields: dict[str, FieldValue] = {**FLOATS, **INTS}
    line = build_line("rt_numbers", {}, fields, T0)
    assert "big=1e+16" in line
    assert "small=1e-08" in line
    influx_db.write([line])

    row = _select(influx_db, 'SELECT * FROM "rt_numbers"')[0]
    types = {row["fieldKey"]: row["fieldType"] for row in _select(influx_db, 'SHOW FIELD KEYS FROM "rt_numbers"')}

    for key, value in FLOATS.items():
        # influxd's JSON prints a whole float as an integer (1e16 -> 10000000000000000): compare by value.
        assert row[key] == value, key
    for key, value in INTS.items():
        assert row[key] == value, key
        assert isinstance(row[key], int), key
    assert types == {key: "float" for key in FLOATS} | {key: "integer" for key in INTS}


def test_measurement_names_round_trip(influx_db: V1Transport) -> None:
    """Measurement names with escaped and unescaped characters are stored as given and selectable when quoted."""
    influx_db.write([build_line(name, {"t": "x"}, {"f": float(i)}, T0) for i, name in enumerate(NAMES)])

    stored = {row["name"] for row in _select(influx_db, "SHOW MEASUREMENTS")}

    assert stored == set(NAMES)
    for i, name in enumerate(NAMES):
        assert [row["f"] for row in _select(influx_db, f'SELECT "f" FROM {quote_ident(name)}')] == [i], name


def test_tag_keys_round_trip(influx_db: V1Transport) -> None:
    """Tag keys with escaped and unescaped characters are stored as given and selectable when quoted."""
    influx_db.write([build_line("rt_tag_keys", {name: f"v{i}"}, {"idx": i}, T0 + i) for i, name in enumerate(NAMES)])

    keys = {row["tagKey"] for row in _select(influx_db, 'SHOW TAG KEYS FROM "rt_tag_keys"')}
    columns = ", ".join(quote_ident(name) for name in NAMES)
    rows = _select(influx_db, f'SELECT "idx", {columns} FROM "rt_tag_keys"')

    assert keys == set(NAMES)
    for row in rows:
        assert row[NAMES[int(str(row["idx"]))]] == f"v{row['idx']}"


def test_field_keys_round_trip(influx_db: V1Transport) -> None:
    """Field keys with escaped and unescaped characters are stored as given and selectable when quoted."""
    influx_db.write([build_line("rt_field_keys", {}, {name: float(i) for i, name in enumerate(NAMES)}, T0)])

    types = {row["fieldKey"]: row["fieldType"] for row in _select(influx_db, 'SHOW FIELD KEYS FROM "rt_field_keys"')}
    row = _select(influx_db, f'SELECT {", ".join(quote_ident(n) for n in NAMES)} FROM "rt_field_keys"')[0]

    assert types == dict.fromkeys(NAMES, "float")
    assert [row[name] for name in NAMES] == list(range(len(NAMES)))


@pytest.mark.parametrize(
    ("measurement", "tag_key", "field_key"),
    [
        ("trailing\\", "t", "f"),
        ("m", "trailing\\", "f"),
        ("m", "t", "trailing\\"),
        ("line\nbreak", "t", "f"),
        ("m", "line\nbreak", "f"),
    ],
)
def test_unwritable_names_are_refused(measurement: str, tag_key: str, field_key: str) -> None:
    """Names InfluxDB cannot round-trip are refused before they reach the wire."""
    with pytest.raises(LineProtocolError):
        build_line(measurement, {tag_key: "v"}, {field_key: 1.0}, T0)


@pytest.mark.parametrize("value", [2**63, -(2**63) - 1])
def test_integers_outside_int64_are_refused(value: int) -> None:
    """InfluxDB integers are int64; a value outside must fail before it reaches the wire."""
    with pytest.raises(LineProtocolError):
        build_line("m", {}, {"n": value}, T0)
