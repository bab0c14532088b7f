"""Bad values in every key of the good config give a precise error: the file, the key path, what was expected.

Every key path of every file of tests/configs/good (the main file, each group file, the ban calendar) is
walked, and for each one the loader is run on a copy with one edit:
- a value of the wrong type (a table where a value goes, a string where a number goes, `true` for a number,
  a number where an array or a table goes);
- an unknown key beside it (where the table is not a free-form one);
- a value out of range, where the model bounds the key (`ge`, `le`, `gt`, `lt`).
Each must raise `ConfigInvalid` with an error for that file whose key path is the edited one (or a key under
it: a table given for an `address | {address, name}` entry is read as the table and names its keys) and
whose reason says what was expected. A few cases also go through `minewatch check-config` in a subprocess:
exit 2, the `file: key.path: reason` line, no traceback.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import annotated_types
import pytest
from pydantic import BaseModel

from collector.adapters.registry import source_registry
from collector.config import ConfigInvalid, GroupFile, MainConfig, RegionsFile, _model_at, load_config
from collector.redact import Redactor

GOOD = Path(__file__).parent.parent / "configs" / "good"
FILES: dict[str, type[BaseModel]] = {
    "minewatch.toml": MainConfig,
    "groups/alpha.toml": GroupFile,
    "groups/beta.toml": GroupFile,
    "regions.toml": RegionsFile,
}
REGISTRY = source_registry()
UNKNOWN = "surplus_key"
Loc = tuple[str | int, ...]


# --- a small TOML writer (everything inline: the loader reads the same document) ---------------------------


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    assert isinstance(value, dict)
    return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"


def dump(document: dict[str, Any]) -> str:
    return "".join(f"{_toml_key(key)} = {_toml_value(value)}\n" for key, value in document.items())


# --- the key paths, and what the model says about each ---------------------------------------------------------


def walk(value: Any, prefix: Loc = ()) -> Iterator[tuple[Loc, Any]]:
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, inner in items:
        yield (*prefix, key), inner
        yield from walk(inner, (*prefix, key))


def key_path(loc: Loc) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _source_model(model: type[BaseModel], document: dict[str, Any], loc: Loc) -> type[BaseModel] | None:
    """For a key of a pool account, miner fleet or network feed: the model of its kind's own settings."""
    if len(loc) < 2 or not isinstance(loc[1], int):
        return None
    entry = document.get(str(loc[0]), [])[loc[1]]
    kind = entry.get("kind") if isinstance(entry, dict) else None
    families = {"pool_accounts": REGISTRY, "miner_fleets": REGISTRY.devices, "network": REGISTRY.networks}
    sources = families.get(str(loc[0]))
    return None if sources is None or kind not in sources else sources[kind].settings_model


def table_model(model: type[BaseModel], document: dict[str, Any], loc: Loc) -> type[BaseModel] | None:
    """The model of the table at `loc` (None: a free-form table, or not a table)."""
    found = _model_at(model, loc)
    if len(loc) == 2 and found is not None and found.model_config.get("extra") == "allow":
        return _source_model(model, document, loc)
    return found


def field_bounds(model: type[BaseModel], document: dict[str, Any], loc: Loc) -> list[Any]:
    """The numeric bounds pydantic keeps for the key at `loc` (its own model's, or its source kind's)."""
    parent = _model_at(model, loc[:-1])
    if parent is not None and str(loc[-1]) not in parent.model_fields and len(loc) == 3:
        parent = _source_model(model, document, loc[:-1])
    if parent is None or str(loc[-1]) not in parent.model_fields:
        return []
    return [m for m in parent.model_fields[str(loc[-1])].metadata if isinstance(m, annotated_types.BaseMetadata)]


def get_at(document: Any, loc: Loc) -> Any:
    for part in loc:
        document = document[part]
    return document


def set_at(document: Any, loc: Loc, value: Any) -> None:
    for part in loc[:-1]:
        document = document[part]
    document[loc[-1]] = value


# --- the cases ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Edit:
    file: str
    loc: Loc  # the key whose error is expected
    value: Any  # the value written there
    reason: str  # a regular expression the reason must match
    what: str

    @property
    def id(self) -> str:
        return f"{self.file}:{key_path(self.loc)}:{self.what}"


def _wrong_types(value: Any) -> list[tuple[Any, str]]:
    if isinstance(value, dict):
        return [(7, "expected a table, got an integer")]
    if isinstance(value, list):
        return [(7, "expected an array, got an integer")]
    wrong: list[tuple[Any, str]] = [
        ({"x": 1}, r"expected .*, got (a table|dict)|must be one of .*, got a table|unknown key|required key missing")
    ]
    if isinstance(value, int | float) and not isinstance(value, bool):
        wrong += [("many", "expected a number|expected an integer|not a quantity"), (True, "got a boolean")]
    return wrong


def _out_of_range(bound: object) -> tuple[Any, str] | None:
    if isinstance(bound, annotated_types.Ge):
        return bound.ge - 1, f"must be >= {_number(bound.ge)}, got {_number(bound.ge - 1)}"
    if isinstance(bound, annotated_types.Gt):
        return bound.gt - 1, f"must be > {_number(bound.gt)}, got {_number(bound.gt - 1)}"
    if isinstance(bound, annotated_types.Le):
        return bound.le + 1, f"must be <= {_number(bound.le)}, got {_number(bound.le + 1)}"
    if isinstance(bound, annotated_types.Lt):
        return bound.lt + 1, f"must be < {_number(bound.lt)}, got {_number(bound.lt + 1)}"
    return None


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def edits() -> list[Edit]:
    found: list[Edit] = []
    for file, model in FILES.items():
        with (GOOD / file).open("rb") as handle:
            document = tomllib.load(handle)
        tables: set[Loc] = {()}
        for loc, value in walk(document):
            if isinstance(value, dict):
                tables.add(loc)
            for wrong, reason in _wrong_types(value):
                found.append(Edit(file, loc, wrong, reason, f"wrong type {type(wrong).__name__}"))
            for bound in field_bounds(model, document, loc):
                if (edit := _out_of_range(bound)) is not None:
                    found.append(Edit(file, loc, edit[0], re.escape(edit[1]), "out of range"))
        for loc in sorted(tables, key=key_path):
            table = model if loc == () else table_model(model, document, loc)
            if table is None:
                continue  # a free-form table (rule name -> seconds): any key is a new entry
            found.append(Edit(file, (*loc, UNKNOWN), 1, "unknown key", "unknown key"))
            for name, info in table.model_fields.items():
                if get_at(document, loc).get(name) is not None:
                    continue  # present: its bounds were taken above
                for bound in info.metadata:
                    if (edit := _out_of_range(bound)) is not None:
                        found.append(Edit(file, (*loc, name), edit[0], re.escape(edit[1]), "out of range (absent)"))
    return found


EDITS = edits()


@pytest.fixture(scope="module")
def config_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("config") / "good"
    shutil.copytree(GOOD, root)
    return root


def _apply(root: Path, edit: Edit) -> None:
    for file in FILES:
        shutil.copyfile(GOOD / file, root / file)
    with (GOOD / edit.file).open("rb") as handle:
        document = tomllib.load(handle)
    set_at(document, edit.loc, edit.value)
    (root / edit.file).write_text(dump(document), encoding="utf-8")


def test_the_walk_covers_every_file_and_kind_of_edit() -> None:
    assert {edit.file for edit in EDITS} == set(FILES)
    assert {edit.what.split(" ")[0] for edit in EDITS} >= {"wrong", "out", "unknown"}
    assert len([e for e in EDITS if e.what == "out of range"]) >= 10
    assert any(e.loc[:1] == ("pool_accounts",) and e.what.startswith("out of range") for e in EDITS), "source keys"
    assert any(e.loc[:1] == ("miner_fleets",) and e.what.startswith("out of range") for e in EDITS), "fleet keys"


def test_the_writer_round_trips_the_good_files(config_dir: Path) -> None:
    for file in FILES:
        with (GOOD / file).open("rb") as handle:
            document = tomllib.load(handle)
        assert tomllib.loads(dump(document)) == document


@pytest.mark.parametrize("edit", EDITS, ids=[e.id for e in EDITS])
def test_a_bad_key_gets_a_precise_error(config_dir: Path, edit: Edit) -> None:
    assert edit.reason, "an empty pattern matches any reason"
    _apply(config_dir, edit)
    with pytest.raises(ConfigInvalid) as raised:
        load_config(config_dir / "minewatch.toml", REGISTRY, redactor=Redactor(), environ={})
    expected_file = str(config_dir / edit.file)
    wanted = key_path(edit.loc)
    errors = [(e.key_path, e.reason) for e in raised.value.errors if e.file == expected_file]
    matching = [
        (path, reason)
        for path, reason in errors
        if path == wanted or (edit.what.startswith("wrong") and path.startswith((f"{wanted}.", f"{wanted}[")))
    ]
    assert matching, f"no error for {edit.file}: {wanted}; got {[str(e) for e in raised.value.errors]}"
    assert any(re.search(edit.reason, reason) for _, reason in matching), f"{wanted}: vague reason: {matching}"


CLI_CASES = [
    Edit("minewatch.toml", ("influxdb", "batch_size"), 0, r"must be >= 1, got 0", "range"),
    Edit("minewatch.toml", ("schedule", "max_response_bytes"), "16M", "expected an integer, got a string", "type"),
    Edit("minewatch.toml", ("schedule", "workerz"), 4, "unknown key; did you mean 'workers'", "unknown"),
    Edit("groups/alpha.toml", ("pool_accounts", 1, "recent_days"), 0, r"must be >= 1, got 0", "source range"),
    Edit("groups/alpha.toml", ("pool_accounts", 0, "tokn_file"), "x", "unknown key; did you mean 'token_file'", "u"),
    Edit("groups/beta.toml", ("sites", 0, "capacity"), [1], r"expected .+, got an array", "type"),
]


@pytest.mark.parametrize("edit", CLI_CASES, ids=[e.id for e in CLI_CASES])
def test_check_config_prints_file_key_and_reason(tmp_path: Path, edit: Edit) -> None:
    assert edit.reason, "an empty pattern matches any reason"
    root = tmp_path / "good"
    shutil.copytree(GOOD, root)
    _apply(root, edit)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MINEWATCH")}
    run = subprocess.run(
        [sys.executable, "-m", "collector.cli", "check-config", "-c", str(root / "minewatch.toml")],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stdout + run.stderr
    prefix = f"minewatch: config error: {root / edit.file}: {key_path(edit.loc)}: "
    lines = [line.removeprefix(prefix) for line in run.stderr.splitlines() if line.startswith(prefix)]
    assert lines, run.stderr
    assert any(re.search(edit.reason, line) for line in lines), lines
