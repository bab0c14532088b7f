"""Generic JSON mutations behind the `wrong_types` and `missing_fields` faults.

Both keep a response's envelope — the top-level keys a client reads to decide the call succeeded (`code`,
`message`, ...) — so the API still looks like it answered OK, and change only the data part. Which keys are
envelope, and which identify a row (a worker name, the account name), is declared per API in `SHAPES`: a
small explicit table rather than a guess from the values.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from itertools import cycle
from typing import Any, Literal

from simulator.pools.base import Response

Mutation = Literal["wrong_types", "missing_fields"]
MUTATIONS: tuple[Mutation, ...] = ("wrong_types", "missing_fields")

# What a number or a numeric string is replaced with, in turn: a list, an object, a non-numeric string.
WRONG_VALUES: tuple[Any, ...] = ([1], {"v": 1}, "n/a")
# Decimal numbers as pools put them in strings ("0.00021038", "-5", "1e-3"); not dates, units, or hex ids.
_NUMERIC = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


@dataclass(frozen=True, slots=True)
class JsonShape:
    """Which keys of an API's JSON are not data: the envelope (top level only) and identifiers (any level)."""

    envelope: frozenset[str] = frozenset()
    identifiers: frozenset[str] = frozenset()


SHAPES: Mapping[str, JsonShape] = {
    # Braiins has no envelope; worker names are object keys, which both mutations keep anyway.
    "braiins": JsonShape(identifiers=frozenset({"username"})),
    # EMCD and F2Pool answer errors as {"code", "message"|"msg"} and data without an envelope.
    "emcd": JsonShape(envelope=frozenset({"code", "message"}), identifiers=frozenset({"username", "user", "worker"})),
    "f2pool": JsonShape(envelope=frozenset({"code", "msg"}), identifiers=frozenset({"name", "mining_user_name"})),
    # ViaBTC: {"code": 0, "data": ..., "message": "OK"}; `data` is the data part, so it is not envelope.
    "viabtc": JsonShape(envelope=frozenset({"code", "message"}), identifiers=frozenset({"account", "worker_name"})),
    # AntPool: {"code": 0, "message": "ok", "data": ...}.
    "antpool": JsonShape(
        envelope=frozenset({"code", "message"}),
        identifiers=frozenset({"userId", "workerId", "userWorkerId", "worker"}),
    ),
    "mempool": JsonShape(),
}


def is_numeric_string(value: str) -> bool:
    """True for a decimal number written as a string, the way several pools send amounts and hashrates."""
    return bool(_NUMERIC.match(value.strip()))


def wrong_types(document: Any, shape: JsonShape) -> Any:
    """`document` with every number and numeric string in its data part replaced by a wrong-typed value.

    Replacements cycle through WRONG_VALUES in document order, so each kind of wrong type shows up. Booleans,
    nulls, other strings, identifiers and the envelope keep their values; containers keep their keys.
    """
    replacements = cycle(WRONG_VALUES)
    if isinstance(document, dict):
        return {
            key: value if key in shape.envelope else _wrong(value, key, shape, replacements)
            for key, value in document.items()
        }
    return _wrong(document, None, shape, replacements)


def _wrong(value: Any, key: str | None, shape: JsonShape, replacements: Iterator[Any]) -> Any:
    if key is not None and key in shape.identifiers:
        return value
    if isinstance(value, dict):
        return {k: _wrong(v, k, shape, replacements) for k, v in value.items()}
    if isinstance(value, list):
        return [_wrong(item, None, shape, replacements) for item in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float) or (isinstance(value, str) and is_numeric_string(value)):
        # A fresh copy each time: the list and object replacements must not be shared between keys.
        return json.loads(json.dumps(next(replacements)))
    return value


def missing_fields(document: Any, shape: JsonShape) -> Any:
    """`document` with its data fields removed: every scalar field and list item goes, except identifiers.

    Objects and lists stay (emptied), so a parser still reaches each section and each row and must notice
    that the values are gone; the envelope keeps its values.
    """
    if isinstance(document, dict):
        kept: dict[str, Any] = {}
        for key, value in document.items():
            if key in shape.envelope:
                kept[key] = value
            elif _is_container(value) or key in shape.identifiers:
                kept[key] = _strip(value, shape)
        return kept
    return _strip(document, shape)


def _strip(value: Any, shape: JsonShape) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v, shape) for k, v in value.items() if _is_container(v) or k in shape.identifiers}
    if isinstance(value, list):
        return [_strip(item, shape) for item in value if _is_container(item)]
    return value


def _is_container(value: Any) -> bool:
    return isinstance(value, dict | list)


def mutate_response(response: Response, mutation: Mutation, shape: JsonShape) -> Response:
    """Apply a mutation to a rendered response, keeping its status, content type and headers.

    A JSON body is transformed as above. A successful plain-text number (mempool's tip height) becomes "n/a"
    (`wrong_types`) or an empty body (`missing_fields`). Anything else (an error page) is left alone.
    """
    if response.content_type.startswith("application/json"):
        try:
            document = json.loads(response.body)
        except ValueError:
            return response
        changed = wrong_types(document, shape) if mutation == "wrong_types" else missing_fields(document, shape)
        body = json.dumps(changed, separators=(",", ":"), allow_nan=False).encode()
        return Response(response.status, body, response.content_type, response.headers)
    text = response.body.decode("utf-8", "replace")
    if response.status != 200 or not response.content_type.startswith("text/plain") or not is_numeric_string(text):
        return response
    body = b"n/a" if mutation == "wrong_types" else b""
    return Response(response.status, body, response.content_type, response.headers)
