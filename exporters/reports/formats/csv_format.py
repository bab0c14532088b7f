"""The CSV file: one row per group × site × coin, the columns of `ReportRow` in order, RFC 4180.

Cells: None (unknown) is an empty cell; integers as digits; floats in Python's shortest round-trip form;
list and map columns as compact JSON (`["a","b"]`, `{"rule":2}`), so an empty list (`[]`: known to be none)
stays distinct from an unknown one (empty cell), and a list survives any character an address could hold.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import astuple

from exporters.reports.row import COLUMNS, ReportRow


def cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, list | dict):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True)
    if isinstance(value, float):
        return repr(value)
    return str(value)


def render_csv(rows: Sequence[ReportRow]) -> bytes:
    buffer = io.StringIO(newline="")
    # RFC 4180: CRLF line ends, fields quoted only when they must be.
    writer = csv.writer(buffer, dialect="excel", lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([cell(v) for v in astuple(row)])
    return buffer.getvalue().encode("utf-8")
