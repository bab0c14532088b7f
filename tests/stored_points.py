"""Compare points (parsed line protocol) with what a real InfluxDB stored: the ground-truth check of the
durability tests. A point counts as stored when a point with the same measurement, tags and timestamp holds
every one of its fields with the same value and type family."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Protocol

from collector.sinks.influx import V1Transport, quote_ident

FieldValue = float | int | str | bool
StoredKey = tuple[frozenset[tuple[str, str]], int]


class ParsedPoint(Protocol):
    """What `cli_support.Point` (and any parsed line) offers."""

    @property
    def measurement(self) -> str: ...
    @property
    def tags(self) -> Mapping[str, str]: ...
    @property
    def fields(self) -> Mapping[str, FieldValue]: ...
    @property
    def timestamp(self) -> int: ...


def stored_points(db: V1Transport, measurement: str, first_ns: int, last_ns: int) -> dict[StoredKey, dict[str, object]]:
    """Every point of `measurement` between two timestamps (inclusive): (tags, time) -> fields."""
    series = db.query(
        f"SELECT * FROM {quote_ident(measurement)} WHERE time >= {first_ns} AND time <= {last_ns} GROUP BY *",
        epoch="ns",
    )
    stored: dict[StoredKey, dict[str, object]] = {}
    for one in series:
        # GROUP BY * gives a series every tag key of the measurement; "" stands for a tag the point lacks.
        tags = frozenset((key, value) for key, value in one.tags.items() if value != "")
        for record in one.records():
            fields = {key: value for key, value in record.items() if key != "time" and value is not None}
            stored[(tags, int(record["time"]))] = fields
    return stored


def _same(expected: FieldValue, got: object) -> bool:
    if isinstance(expected, bool) or isinstance(got, bool):
        return expected is got
    if isinstance(expected, str) or isinstance(got, str):
        return expected == got
    # InfluxDB's JSON writes a whole float as an integer (1.0 -> 1): compare numbers as numbers.
    return isinstance(got, int | float) and float(expected) == float(got)


def missing_or_different(db: V1Transport, points: Iterable[ParsedPoint]) -> list[str]:
    """A description of each point InfluxDB does not hold as given (empty when every one is stored)."""
    by_measurement: dict[str, list[ParsedPoint]] = defaultdict(list)
    for point in points:
        by_measurement[point.measurement].append(point)
    problems: list[str] = []
    for measurement, group in sorted(by_measurement.items()):
        times = [point.timestamp for point in group]
        stored = stored_points(db, measurement, min(times), max(times))
        for point in group:
            fields = stored.get((frozenset(point.tags.items()), point.timestamp))
            if fields is None:
                problems.append(f"missing {measurement} {dict(point.tags)} at {point.timestamp}")
                continue
            wrong = {k: (v, fields.get(k)) for k, v in point.fields.items() if not _same(v, fields.get(k))}
            if wrong:
                problems.append(f"{measurement} {dict(point.tags)} at {point.timestamp}: (sent, stored) {wrong}")
    return problems
