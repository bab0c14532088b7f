"""`build_line`: escaping, sanitising, field rendering and refusals, per the InfluxDB line-protocol reference."""

from __future__ import annotations

import pytest

from collector.sinks.lineprotocol import FieldValue, LineProtocolError, build_line
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
