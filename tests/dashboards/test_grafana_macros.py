"""The macro substitution the query test relies on behaves as Grafana's does."""

from __future__ import annotations

import pytest
from grafana_macros import (
    TimeRange,
    format_interval,
    interpolate,
    panel_interval_ms,
    regex_value,
)


@pytest.mark.parametrize(
    ("ms", "text"), [(60_000, "1m"), (3_600_000, "1h"), (86_400_000, "1d"), (30_000, "30s"), (500, "500ms")]
)
def test_intervals_are_written_in_their_largest_whole_unit(ms: int, text: str) -> None:
    assert format_interval(ms) == text


def test_the_interval_is_the_range_over_the_data_points_rounded_and_never_below_the_minimum() -> None:
    day = TimeRange(0, 86_400_000)
    assert panel_interval_ms(day, 100, 60_000) == 600_000  # 864 s rounds to 10 min
    assert panel_interval_ms(TimeRange(0, 600_000), 100, 60_000) == 60_000  # 6 s, raised to the 60 s floor


def test_variable_values_are_regex_escaped_and_several_are_alternatives() -> None:
    assert regex_value(["baikal"]) == "baikal"
    assert regex_value(["a.b/c"]) == r"a\.b\/c"
    assert regex_value(["a", "b+"]) == r"(a|b\+)"


def test_a_query_is_interpolated_like_grafana_sends_it() -> None:
    query = 'SELECT mean("x") FROM "m" WHERE $timeFilter AND "group_id" =~ /^$group_id$/ GROUP BY time($__interval)'
    sent = interpolate(query, time_range=TimeRange(1000, 2000), interval_ms=60_000, variables={"group_id": ["a", "b"]})
    assert sent == (
        'SELECT mean("x") FROM "m" WHERE time >= 1000ms and time <= 2000ms AND "group_id" =~ /^(a|b)$/ '
        "GROUP BY time(1m)"
    )
