"""The JSON file: `{"schema_version", "report", "period", "generated_at", "warnings", "columns", "rows": [...]}`.

Rows carry the `ReportRow` columns with native types: null for unknown, lists and objects for list and map
columns. `JSON_SCHEMA` (draft 2020-12) describes schema version `SCHEMA_VERSION`; a change to the columns
bumps the version.
"""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Sequence
from dataclasses import asdict, fields
from datetime import datetime
from typing import Any

from exporters.reports.period import utc_stamp
from exporters.reports.row import COLUMNS, SCHEMA_VERSION, ReportRow

REPORT_KIND = "minewatch-monthly-production"


def _schema_of(annotation: Any) -> dict[str, Any]:
    origin = typing.get_origin(annotation)
    if origin in (types.UnionType, typing.Union):
        options = [_schema_of(a) for a in typing.get_args(annotation)]
        return {"anyOf": options}
    if annotation is type(None):
        return {"type": "null"}
    if annotation is str:
        return {"type": "string"}
    if annotation is int:
        return {"type": "integer"}
    if annotation is float:
        return {"type": "number"}
    if origin is list:
        return {"type": "array", "items": _schema_of(typing.get_args(annotation)[0])}
    if origin is dict:
        return {"type": "object", "additionalProperties": _schema_of(typing.get_args(annotation)[1])}
    raise TypeError(f"no JSON schema for {annotation!r}")


def _row_schema() -> dict[str, Any]:
    hints = typing.get_type_hints(ReportRow)
    return {
        "type": "object",
        "properties": {f.name: _schema_of(hints[f.name]) for f in fields(ReportRow)},
        "required": list(COLUMNS),
        "additionalProperties": False,
    }


JSON_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": f"https://minewatch.invalid/schemas/monthly-report/v{SCHEMA_VERSION}.json",
    "type": "object",
    "required": ["schema_version", "report", "period", "generated_at", "warnings", "columns", "rows"],
    "properties": {
        "schema_version": {"const": SCHEMA_VERSION},
        "report": {"const": REPORT_KIND},
        "period": {"type": "string", "pattern": r"^\d{4}-\d{2}$"},
        "generated_at": {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$"},
        "warnings": {"type": "array", "items": {"type": "string"}},
        "columns": {"type": "array", "items": {"type": "string"}},
        "rows": {"type": "array", "items": _row_schema()},
    },
    "additionalProperties": False,
}


def render_json(
    rows: Sequence[ReportRow], *, period: str, generated_at: datetime, warnings: Sequence[str] = ()
) -> bytes:
    document = {
        "schema_version": SCHEMA_VERSION,
        "report": REPORT_KIND,
        "period": period,
        "generated_at": utc_stamp(generated_at),
        "warnings": list(warnings),
        "columns": list(COLUMNS),
        "rows": [asdict(row) for row in rows],
    }
    return (json.dumps(document, ensure_ascii=False, indent=1) + "\n").encode("utf-8")
