r"""Line protocol, built by hand (about 4x faster than influxdb_client.Point; see design.md).

Escaping follows the InfluxDB line-protocol reference: measurement names escape comma and space; tag keys,
tag values and field keys escape comma, equals sign and space; string field values escape double quote and
backslash. Every other character (quotes in names, tab, NUL, `#` inside a name, unicode) is written as is.

What line protocol cannot carry is defined here, and tested against influxd 1.6.7
(tests/integration/test_escaping_roundtrip.py):
- values taken from a pool are sanitised: newline, carriage return and NUL become a space (in tag values and
  in string fields: a raw line break would end the line for most parsers, InfluxDB 1.x cannot escape one in a
  tag, and InfluxQL has no way to write a carriage return or a NUL in a string, so such a value could never be
  selected); a tag value loses its trailing backslashes (one would escape the separator after it); a tag
  whose value is empty afterwards is left out (InfluxDB has no empty tag values);
- names (measurement, tag and field keys) are never changed silently: `LineProtocolError` (which the runner
  counts as a `bad_response` poll) refuses an empty name, one with a newline, carriage return or NUL, or a
  trailing backslash; a measurement or field key starting with a tab (InfluxDB strips it as leading
  whitespace) or holding a backslash right before a comma, `=`, space or `"` (InfluxDB 1.x loses that backslash: it
  unescapes measurement names twice, and its field scanner reads `\\` as an escaped pair, so the escape after
  it is lost); a measurement starting with `#` (the line would be a comment, silently dropped); and the tag or
  field key `time` (InfluxDB refuses the point);
- a lone surrogate (JSON can carry `"\ud800"`; UTF-8 cannot encode it) becomes U+FFFD in values and names
  alike: the one change made to a name, because the alternative is a line no transport can send.
Every line holds exactly one point: the output never contains a newline or carriage return.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

FieldValue = float | int | str

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
# InfluxDB's time range (1677-09-21 .. 2262-04-11), less a margin it reserves at both ends.
MIN_TIMESTAMP_NS = -9223372036854775806
MAX_TIMESTAMP_NS = 9223372036854775806

_MEASUREMENT_ESCAPES = str.maketrans({",": r"\,", " ": r"\ "})
_KEY_ESCAPES = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ "})
_STRING_FIELD_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"'})
# What neither line protocol nor an InfluxQL string can carry; in values it becomes a space.
_UNWRITABLE = ("\n", "\r", "\x00")
_LINE_BREAKS = str.maketrans(dict.fromkeys(_UNWRITABLE, " "))


class LineProtocolError(ValueError):
    """A point that cannot be written (bad name, no fields, non-finite float, int64 overflow, wrong type)."""


def valid_unicode(text: str) -> str:
    """The text with every lone surrogate (from JSON like `"\\ud800"`) replaced by U+FFFD, which UTF-8 can encode.

    A surrogate pair left split (`"\\ud83d\\ude00"` built by hand) is joined into its character. The fast path
    (ASCII, or text that encodes) returns the text itself; only a text holding a surrogate pays for the fix.
    """
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text


def sanitize_tag_value(value: str) -> str:
    """Make a pool-provided value safe as a tag value: newline, CR and NUL become spaces, trailing backslashes go,
    lone surrogates become U+FFFD."""
    return valid_unicode(value).translate(_LINE_BREAKS).rstrip("\\")


# A line starting with `#` is a comment; InfluxDB strips leading spaces (escaped here), tabs and NULs.
_MEASUREMENT_CANNOT_START = ("#", "\t")
# A backslash right before an escaped character is lost in measurement names and field keys (see above).
_BACKSLASH_BEFORE_ESCAPE = ("\\,", "\\=", "\\ ", '\\"')
# InfluxDB refuses a point with a tag or field named `time` ("invalid tag key" / "invalid field name").
_RESERVED_KEYS = frozenset({"time"})


def _check_name(name: str, what: str) -> None:
    if not name or any(char in name for char in _UNWRITABLE) or name.endswith("\\"):
        raise LineProtocolError(f"{what} {name!r} cannot be written (empty, line break, NUL or trailing backslash)")


# Names come from a small fixed set, so validating and escaping each once keeps the hot path cheap.
@lru_cache(maxsize=4096)
def _measurement(name: str) -> str:
    name = valid_unicode(name)
    _check_name(name, "measurement")
    if name.startswith(_MEASUREMENT_CANNOT_START) or any(pair in name for pair in _BACKSLASH_BEFORE_ESCAPE):
        raise LineProtocolError(
            f"measurement {name!r} cannot be written (starts with '#' or a tab, or backslash before , = space or \")"
        )
    return name.translate(_MEASUREMENT_ESCAPES)


@lru_cache(maxsize=4096)
def _key(name: str) -> str:
    name = valid_unicode(name)
    _check_name(name, "key")
    if name in _RESERVED_KEYS:
        raise LineProtocolError(f"key {name!r} cannot be written (InfluxDB reserves it)")
    return name.translate(_KEY_ESCAPES)


@lru_cache(maxsize=4096)
def _field_key(name: str) -> str:
    rendered = _key(name)
    name = valid_unicode(name)
    if name.startswith("\t") or any(pair in name for pair in _BACKSLASH_BEFORE_ESCAPE):
        raise LineProtocolError(
            f'field key {name!r} cannot be written (leading tab, or backslash before , = space or ")'
        )
    return rendered


def _float(value: float) -> str:
    if not math.isfinite(value):
        raise LineProtocolError(f"non-finite float {value!r}")
    return repr(value)


def _integer(value: int) -> str:
    if not INT64_MIN <= value <= INT64_MAX:
        raise LineProtocolError(f"integer {value} outside int64")
    return f"{value}i"


def _string(value: str) -> str:
    return '"' + valid_unicode(value).translate(_LINE_BREAKS).translate(_STRING_FIELD_ESCAPES) + '"'


# Dispatch on the exact type: bool (a subclass of int) is refused, flags are written as 0/1 integers.
_FORMATTERS: dict[type, Callable[[Any], str]] = {float: _float, int: _integer, str: _string}


def format_field(value: FieldValue) -> str:
    """Render one field value: float as float, int with `i`, str quoted. bool is refused (flags are 0/1 ints)."""
    formatter = _FORMATTERS.get(type(value))
    if formatter is None:
        raise LineProtocolError(f"unsupported field type {type(value).__name__}")
    return formatter(value)


def series_key(measurement: str, tags: Mapping[str, str]) -> str:
    """Render the measurement and its sorted tag set; empty tag values are left out.

    Builders render the tags shared by many points once and append the rest with `tag_pair`.
    """
    parts = [_measurement(measurement)]
    for key in sorted(tags):
        pair = tag_pair(key, tags[key])
        if pair:
            parts.append(pair)
    return ",".join(parts)


def tag_pair(key: str, value: str) -> str:
    """Render `key=value` for a tag, sanitised and escaped; empty string if the value is empty."""
    rendered_key = _key(key)  # checked even when the value is empty: a bad name is never silently accepted
    value = sanitize_tag_value(value)
    return f"{rendered_key}={value.translate(_KEY_ESCAPES)}" if value else ""


def field_set(fields: Mapping[str, FieldValue | None]) -> str:
    """Render the fields that have a value; empty string if none has. This loop is the hot path of every write."""
    parts = []
    for key, value in fields.items():
        if value is None:
            continue
        if isinstance(value, float):
            if not math.isfinite(value):
                raise LineProtocolError(f"{key}: non-finite float {value!r}")
            parts.append(f"{_field_key(key)}={value!r}")
        else:
            parts.append(f"{_field_key(key)}={format_field(value)}")
    return ",".join(parts)


def line(series: str, fields: Mapping[str, FieldValue | None], timestamp_ns: int) -> str:
    """Join a rendered series key, the fields and the timestamp; a point with no field is an error."""
    if not MIN_TIMESTAMP_NS <= timestamp_ns <= MAX_TIMESTAMP_NS:
        raise LineProtocolError(f"timestamp {timestamp_ns} ns is outside what InfluxDB stores")
    rendered = field_set(fields)
    if not rendered:
        raise LineProtocolError(f"{series.split(',', 1)[0]}: a point needs at least one field")
    return f"{series} {rendered} {timestamp_ns}"


def build_line(
    measurement: str,
    tags: Mapping[str, str],
    fields: Mapping[str, FieldValue | None],
    timestamp_ns: int,
) -> str:
    """Build one line. Empty tag values and `None` fields are left out; a point with no field is an error."""
    return line(series_key(measurement, tags), fields, timestamp_ns)
