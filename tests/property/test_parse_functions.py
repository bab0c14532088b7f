"""Random JSON-ish values straight into every pure parser of every registered source, and into the decoders.

The parsers are found, not listed: for each source of `source_registry()`, every public function of its
folder's `parse.py` whose payload parameter (the first) is typed as a JSON value (`Any`, `Payload`,
`Sequence[...]`, `bytes` for a raw reply, `str` for text to repair) is called with random values, its other
parameters drawn from their annotations. The only exception allowed out is a `SourceError` (in practice
`BadResponse`): in memory the values may hold what the wire decoders refuse (NaN, infinities, huge integers,
booleans where numbers go), so the parsers are checked on their own.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import math
import sys
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from collector.adapters.http import loads_json
from collector.adapters.parsing import integer, number, sats
from collector.devices.cgminer.parse import DIALECTS, decode, repair
from collector.errors import BadResponse, SourceError
from property.support import REGISTRY, golden_keys

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.sampled_from([10**400, -(10**400), 2**63, 2**64, -1, 0])
    | st.floats()
    | st.text(max_size=10)
    | st.sampled_from(["", "0", "1", "-1", "1e999", "NaN", "inf", "12.5", "5 TH/s", "S", "E", "2026-04-04", "x.y"])
)
KEYS = st.sampled_from(golden_keys()) | st.text(max_size=8)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=5),
    max_leaves=15,
)
OBJECTS = st.dictionaries(KEYS, JSON, max_size=8)

# The payload parameter's annotation -> what to feed it.
PAYLOADS: dict[str, st.SearchStrategy[Any]] = {
    "Any": JSON,
    "Payload": OBJECTS,
    "Payload | None": OBJECTS | st.none(),
    "Mapping[str, Any]": OBJECTS,
    "Mapping[str, str] | None": st.dictionaries(st.text(max_size=8), st.text(max_size=12)) | st.none(),
    "Sequence[Any]": st.lists(JSON, max_size=5),
    "Sequence[Payload]": st.lists(OBJECTS, max_size=5),
    "Sequence[Payload] | None": st.lists(OBJECTS, max_size=5) | st.none(),
    "bytes": st.binary(max_size=300) | JSON.map(lambda v: repr(v).encode()),
    # Text from a payload (a worker's full name, a reply to repair) and the strings signatures are made of.
    "str": st.text(max_size=40) | st.sampled_from(["farmop.rack1", "farmop.", ".x", "a.b.c", "farmop"]),
}
# The other parameters' annotations -> their values.
ARGUMENTS: dict[str, st.SearchStrategy[Any]] = {
    **PAYLOADS,
    "str": st.sampled_from(["BTC", "bitcoin", "main", "farmop", "stats", ""]) | st.text(max_size=8),
    "str | None": st.none() | st.sampled_from(["farmop", "main", ""]),
    "int": st.integers(min_value=1, max_value=2016),
    "Dialect": st.sampled_from(DIALECTS),
}


def _parse_modules() -> list[Any]:
    """Each registered source's `parse` module (the folder of its adapter)."""
    sources = [*REGISTRY.values(), *REGISTRY.networks.values(), *REGISTRY.devices.values()]
    packages = sorted({sys.modules[source.__module__].__name__.rsplit(".", 1)[0] for source in sources})
    return [importlib.import_module(f"{package}.parse") for package in packages]


# Public functions of the parse modules that take no payload: request builders, not parsers.
NOT_PARSERS = {"viabtc.query_string", "viabtc.signed_query"}
SKIPPED: set[str] = set()


EntryPoint = tuple[str, Callable[..., Any], st.SearchStrategy[Any], list[st.SearchStrategy[Any]]]


def _entry_points() -> list[EntryPoint]:
    found: list[EntryPoint] = []
    for module in _parse_modules():
        for name, function in sorted(vars(module).items()):
            if name.startswith("_") or not inspect.isfunction(function) or function.__module__ != module.__name__:
                continue
            full_name = f"{module.__name__.split('.')[-2]}.{name}"
            parameters = list(inspect.signature(function).parameters.values())
            if not parameters or str(parameters[0].annotation) not in {**PAYLOADS, "Dialect": None}:
                SKIPPED.add(full_name)
                continue
            rest = [str(p.annotation) for p in parameters[1:] if p.default is inspect.Parameter.empty]
            if any(annotation not in ARGUMENTS for annotation in rest):
                SKIPPED.add(full_name)
                continue
            found.append(
                (
                    full_name,
                    function,
                    PAYLOADS.get(str(parameters[0].annotation), ARGUMENTS[str(parameters[0].annotation)]),
                    [ARGUMENTS[a] for a in rest],
                )
            )
    return found


ENTRY_POINTS = _entry_points()


def test_every_source_has_parser_entry_points() -> None:
    kinds = {name.split(".")[0] for name, *_ in ENTRY_POINTS}
    families = [*REGISTRY, *REGISTRY.networks, *REGISTRY.devices]
    assert set(families) <= kinds, f"no parse entry point found for {set(families) - kinds}"
    assert len(ENTRY_POINTS) >= 3 * len(families)


def test_only_request_builders_are_skipped() -> None:
    """A parser whose parameters the strategies cannot fill is a failure here, not silently left out."""
    assert SKIPPED == NOT_PARSERS
    assert "braiins.worker_suffix" in {name for name, *_ in ENTRY_POINTS}


@pytest.mark.parametrize(("name", "function", "payloads", "arguments"), ENTRY_POINTS, ids=[e[0] for e in ENTRY_POINTS])
@SETTINGS
@given(data=st.data())
def test_parser_raises_only_typed_errors(
    name: str,
    function: Callable[..., Any],
    payloads: st.SearchStrategy[Any],
    arguments: list[st.SearchStrategy[Any]],
    data: st.DataObject,
) -> None:
    payload = data.draw(payloads, label="payload")
    args = [data.draw(strategy, label="argument") for strategy in arguments]
    with contextlib.suppress(SourceError):
        function(payload, *args)


# --- the shared accessors: no boolean read as a number, no NaN, nothing out of range ---------------------


@example(True)
@example(False)
@example(float("nan"))
@example(float("inf"))
@example(10**400)
@example(2**63)
@example(1e308)
@example("1e999")
@example(-1)
@example([])
@example({})
@given(value=SCALARS | st.lists(SCALARS, max_size=2))
def test_numbers_are_finite_in_range_and_never_booleans(value: Any) -> None:
    for read in (number, integer, sats):
        try:
            result = read({"k": value}, "k", "w")
        except BadResponse:
            continue
        if value is None:
            assert result is None
            continue
        assert not isinstance(value, bool | list | dict), f"{read.__name__} read {value!r} as {result!r}"
        assert result is not None
        assert math.isfinite(result)
        if read is integer:
            assert 0 <= result <= 2**63 - 1
        if read is number:
            assert result >= 0


# --- the decoders ---------------------------------------------------------------------------------------------


@example(b"[" * 10_000 + b"]" * 10_000)
@example(b'{"a":' * 100_000)
@example(b"NaN")
@example(b"\xff")
@example('{"a": 1}'.encode("utf-16"))
@example(b"1" * 5000)
@settings(max_examples=200, deadline=None, database=None)
@given(body=st.binary(max_size=200) | JSON.map(lambda v: repr(v).encode()))
def test_http_json_decoder_raises_only_bad_response(body: bytes) -> None:
    with contextlib.suppress(BadResponse):
        loads_json(body, what="GET http://pool.test/x")


@example(b"[" * 10_000 + b"]" * 10_000)
@example(b'{"STATUS":' * 10_000)
@example(b",")
@example(b",,,}")
@example(b'{"STATUS":[{"STATUS":"S"}],"SUMMARY":[{"MHS av":"inf"}]}\x00')
@example(b"1" * 5000)
@settings(max_examples=200, deadline=None, database=None)
@given(raw=st.binary(max_size=200) | st.text(alphabet='{}[],:"0a1 \x00S', max_size=60).map(str.encode))
def test_cgminer_decoder_raises_only_bad_response(raw: bytes) -> None:
    with contextlib.suppress(BadResponse):
        decode(raw, "summary")


@settings(max_examples=200, deadline=None, database=None)
@given(text=st.text(max_size=80))
def test_quirk_repair_is_total(text: str) -> None:
    assert isinstance(repair(text), str)
