"""Every field override, transformation and table sort refers to a field name some target of its panel produces.

Grafana matches `byName` overrides, `calculateField` / `joinByField` operands and a table's `sortBy` against a
field's display name, and a name that matches nothing fails silently (no shading, raw counts shown as percent).
The display names are computed here the way Grafana's InfluxQL backend does
(grafana/grafana `pkg/tsdb/influxdb/influxql/util/util.go`, `FormatFrameName`):

- with an alias, `$tag_<key>` / `[[tag_<key>]]` becomes the series' tag value, `$col` the column name,
  `$m` / `$measurement` the measurement; anything else stays as written;
- without one, a time series is named `measurement.column`, plus ` { key: value, ... }` for the GROUP BY tags
  (in Go map order, so any order); a table column is named by the column alone, and GROUP BY tags become
  columns of their own.

Tag values vary, so names are symbolic: a tag value is a wildcard. A `byName` must equal a name that can
occur; a `byRegexp` must match some name with its wildcards filled by a few sample values.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from dashboard_json import load_generated, panels

WILD = None  # a tag value in a symbolic name
Part = str | None
Name = tuple[Part, ...]

_ALIAS_TOKEN = re.compile(r"\$(\w+)|\[\[([\s\S]+?)\]\]")  # FormatFrameName's legendFormat
_AS = re.compile(r'\bAS\s+"([^"]+)"\s*$', re.IGNORECASE)
_FUNCTION = re.compile(r"^\s*(\w+)\s*\(")
_QUOTED = re.compile(r'"([^"]+)"')
_FROM = re.compile(r'\bFROM\s+"([^"]+)"', re.IGNORECASE)
_GROUP_BY = re.compile(r"\bGROUP\s+BY\s+(.*?)(?:\s+fill\(|\s+ORDER\s+BY|\s+LIMIT|\s+SLIMIT|$)", re.IGNORECASE)


def outer(query: str) -> str:
    """`query` with every parenthesised subquery replaced by `()`: what the outer statement says itself."""
    out, depth, start = [], 0, 0
    i = 0
    while i < len(query):
        if depth == 0 and query[i] == "(" and query[i + 1 :].lstrip().upper().startswith("SELECT"):
            out.append(query[start:i] + "()")
            depth = 1
            i += 1
            while depth:
                depth += {"(": 1, ")": -1}.get(query[i], 0)
                i += 1
            start = i
            continue
        i += 1
    out.append(query[start:])
    return "".join(out)


def split_top(text: str) -> list[str]:
    """`text` split at the commas outside parentheses and quotes (`AS "pool-side, all pools"` is one item)."""
    items, depth, quoted, current = [], 0, False, ""
    for char in text:
        quoted ^= char == '"'
        depth += 0 if quoted else {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0 and not quoted:
            items.append(current)
            current = ""
        else:
            current += char
    return [*items, current]


def columns(query: str) -> list[str]:
    """The column names InfluxDB gives the outer SELECT's items: the AS name, else the function, else the field."""
    statement = outer(query)
    select = re.search(r"^\s*SELECT\s+(.*?)\s+FROM\b", statement, re.IGNORECASE | re.DOTALL)
    assert select, query
    names = []
    for item in split_top(select.group(1)):
        alias, function, quoted = _AS.search(item), _FUNCTION.match(item), _QUOTED.search(item)
        names.append(alias.group(1) if alias else function.group(1) if function else quoted.group(1) if quoted else "")
    return names


def measurement(query: str) -> str:
    """The series name of the result: the measurement read (a subquery's results keep its measurement's name)."""
    found = _FROM.search(query)
    assert found, query
    return found.group(1)


def group_tags(query: str) -> list[str]:
    """The tag keys of the outer statement's GROUP BY (a subquery's GROUP BY does not reach the result)."""
    found = _GROUP_BY.search(outer(query))
    if not found:
        return []
    return [m.group(1) for item in split_top(found.group(1)) if (m := re.fullmatch(r'\s*"([^"]+)"\s*', item))]


def alias_name(alias: str, column: str, rowname: str, tags: Sequence[str]) -> Name:
    """FormatFrameName with an alias, symbolically: a tag the series is grouped by becomes a wildcard."""
    parts: list[Part] = []
    position = 0
    for token in _ALIAS_TOKEN.finditer(alias):
        parts.append(alias[position : token.start()])
        position = token.end()
        key = token.group(1) or token.group(2)
        if key in ("m", "measurement"):
            parts.append(rowname)
        elif key == "col":
            parts.append(column)
        elif key.isdigit():
            segments = rowname.split(".")
            parts.append(segments[int(key)] if int(key) < len(segments) else token.group(0))
        elif key.startswith("tag_") and key[4:] in tags:
            parts.append(WILD)
        else:  # an unknown token, or a tag the series is not grouped by: left as written
            parts.append(token.group(0))
    parts.append(alias[position:])
    return tuple(parts)


def default_names(column: str, rowname: str, tags: Sequence[str]) -> Iterator[Name]:
    """BuildFrameNameFromQuery for a time series, in every tag order (Go iterates the tag map at random)."""
    if not tags:
        yield (f"{rowname}.{column}",)
        return
    for order in itertools.permutations(tags):
        parts: list[Part] = [f"{rowname}.{column} {{ "]
        for index, key in enumerate(order):
            parts += [(", " if index else "") + f"{key}: ", WILD]
        yield (*parts, " }")


def target_names(target: dict[str, Any]) -> set[Name]:
    """Every field name one target produces."""
    query = target["query"]
    tags, rowname = group_tags(query), measurement(query)
    names: set[Name] = {("Time",)}
    if target.get("resultFormat") == "table":
        return names | {(column,) for column in columns(query)} | {(tag,) for tag in tags}
    for column in columns(query):
        if target.get("alias"):
            names.add(alias_name(target["alias"], column, rowname, tags))
        else:
            names |= set(default_names(column, rowname, tags))
    return names


def pattern(name: Name) -> re.Pattern[str]:
    return re.compile("".join(".*" if part is WILD else re.escape(part) for part in name), re.DOTALL)


def can_be(names: set[Name], exact: str) -> bool:
    """Some produced name can be exactly `exact`."""
    return any(pattern(name).fullmatch(exact) for name in names)


def regexp_matches_some(names: set[Name], regexp: str) -> bool:
    """Grafana's byRegexp (`regex.test(displayName)`) matches some produced name, wildcards filled by samples."""
    compiled = re.compile(regexp)
    samples = ["", "x", *re.findall(r"\w+", regexp)]
    for name in names:
        holes = sum(part is WILD for part in name)
        for fill in itertools.product(samples, repeat=holes):
            values = iter(fill)
            text = "".join(next(values) if part is WILD else part for part in name)
            if compiled.search(text):
                return True
    return False


@dataclass(frozen=True)
class Reference:
    """A name a panel refers to, and where (for messages)."""

    what: str
    name: str
    regexp: bool = False


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def check_panel(panel: dict[str, Any]) -> list[str]:
    """The references of one panel that match no field its targets produce."""
    names: set[Name] = set()
    for target in panel.get("targets", []):
        names |= target_names(target)
    problems: list[str] = []

    def refer(what: str, name: str) -> None:
        if not can_be(names, name):
            problems.append(f"{panel['title']}: {what} {name!r} matches none of {sorted(map(str, names))}")

    renamed: dict[str, str] = {}
    for override in panel.get("fieldConfig", {}).get("overrides", []):
        matcher = override["matcher"]
        if matcher["id"] == "byName":
            refer("byName override", matcher["options"])
            for prop in override["properties"]:
                if prop["id"] == "displayName":
                    renamed[matcher["options"]] = prop["value"]
        elif matcher["id"] == "byRegexp" and not regexp_matches_some(names, matcher["options"]):
            problems.append(f"{panel['title']}: byRegexp override {matcher['options']!r} matches no produced name")
    for transformation in panel.get("transformations", []):
        options = transformation.get("options", {})
        if transformation["id"] == "joinByField" and options.get("byField"):
            refer("joinByField byField", options["byField"])
        elif transformation["id"] == "calculateField":
            binary = options.get("binary", {})
            for side in ("left", "right"):
                operand = binary.get(side)
                if isinstance(operand, str) and not _is_number(operand):
                    refer(f"calculateField {side} operand", operand)
            for name in options.get("reduce", {}).get("include", []):
                refer("calculateField reduce operand", name)
            if options.get("alias"):
                names.add((options["alias"],))
        elif transformation["id"] == "organize":
            for key in ("excludeByName", "renameByName", "indexByName"):
                for name in options.get(key, {}):
                    refer(f"organize {key}", name)
    for sort in panel.get("options", {}).get("sortBy", []):
        # The table sorts by the display name after overrides: a renamed column is sorted by its new name.
        shown = {renamed.get(part, part) for name in names for part in name if isinstance(part, str)}
        if sort["displayName"] not in shown:
            problems.append(f"{panel['title']}: sortBy {sort['displayName']!r} is not a displayed column")
    return problems


def test_every_override_transformation_and_sort_refers_to_a_produced_name() -> None:
    problems = [
        problem for board in load_generated().values() for panel in panels(board) for problem in check_panel(panel)
    ]
    assert problems == [], "\n".join(problems)


# --- the model itself, on the examples of FormatFrameName ---


@pytest.mark.parametrize(
    ("target", "exact", "produced"),
    [
        ({"query": 'SELECT mean("v") AS "x" FROM "m" WHERE $timeFilter GROUP BY time(1m)'}, "x", False),
        ({"query": 'SELECT mean("v") AS "x" FROM "m" WHERE $timeFilter GROUP BY time(1m)'}, "m.x", True),
        ({"query": 'SELECT mean("v") FROM "m" WHERE $timeFilter GROUP BY time(1m), "a"'}, "m.mean { a: 1 }", True),
        ({"query": 'SELECT mean("v") AS "x" FROM "m" GROUP BY "a"', "alias": "$col"}, "x", True),
        ({"query": 'SELECT mean("v") FROM "m" GROUP BY "a"', "alias": "$tag_a up"}, "baikal up", True),
        ({"query": 'SELECT mean("v") FROM "m" GROUP BY "a"', "alias": "$tag_b up"}, "baikal up", False),
        ({"query": 'SELECT mean("v") FROM "m" GROUP BY "a"', "alias": "$tag_b up"}, "$tag_b up", True),
        (
            {"query": 'SELECT count("s") FROM (SELECT last("v") AS "s" FROM "m" GROUP BY "a") WHERE "s" = 2'},
            "m.count",
            True,
        ),
        ({"query": 'SELECT last("v") AS "s" FROM "m" GROUP BY "a"', "resultFormat": "table"}, "a", True),
    ],
)
def test_display_names_follow_grafanas_format_frame_name(target: dict[str, Any], exact: str, produced: bool) -> None:
    assert can_be(target_names(target), exact) is produced


def test_a_regexp_override_must_be_able_to_match_a_produced_name() -> None:
    query = 'SELECT mean("h") FROM "p" GROUP BY "pool", "permitted"'
    names = target_names({"query": query, "alias": "pool $tag_pool ($tag_permitted)"})
    assert regexp_matches_some(names, r".*\(no\)$")  # a tag value can be "no"
    assert not regexp_matches_some(names, r"^capacity")  # every name starts with "pool "
