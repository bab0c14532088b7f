"""Registry-wide conformance: every source ships the same four things and keeps its docs honest.

For each entry of every family of `source_registry()` (pools: the mapping itself; devices: `.devices`;
networks: `.networks`): the class declares the source interface (the rate budget only for HTTP sources, as
miners are reached over TCP with no budget); its folder holds `adapter.py`, `parse.py`, `README.md` and
`sample.toml`; the sample validates without a secret being set (pools name theirs with `*_env`/`*_file`
keys, sources without a secret name none); an HTTP source's default `base_url` is the real https service;
golden cases cover a success and a failure; the README documents configuration, endpoints (a miner's
commands), auth, rate limit, units, the points written (checked against the measurement catalogue and the
golden output), example output and known quirks.
"""

from __future__ import annotations

import re
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from golden_support import split_unescaped
from pydantic import BaseModel

import collector.devices
import collector.network
import collector.pools
from collector.adapters.registry import source_registry
from collector.ratelimit import RateBudget
from collector.sinks.points import CATALOGUE, SOURCE_HEALTH

REGISTRY = source_registry()
# Where each family's sources live: `<folder>/<kind>/`.
FAMILY_DIRS = {
    "pools": Path(collector.pools.__file__).parent,
    "devices": Path(collector.devices.__file__).parent,
    "networks": Path(collector.network.__file__).parent,
}
GOLDEN = Path(__file__).parent / "golden"
FIELD_TYPES = {"float": float, "int": int, "string": str}
# Section name -> the words its `## ` title may start a word with (a miner has commands, not endpoints).
README_SECTIONS: dict[str, tuple[str, ...]] = {
    "configuration": ("configuration",),
    "endpoints": ("endpoint", "command"),
    "auth": ("auth",),
    "rate limit": ("rate limit",),
    "units": ("unit",),
    "points written": ("points",),
    "example output": ("example output",),
    "known quirks": ("quirk",),
}
SECRET_SUFFIXES = ("_env", "_file")
# Key names that would hold a credential itself; a sample must never write one.
SECRET_WORDS = ("token", "password", "secret", "api_key", "passwd")


@dataclass(frozen=True)
class Entry:
    """One registered source: its family, kind and class."""

    family: str
    kind: str
    source: Any

    @property
    def id(self) -> str:
        return f"{self.family}/{self.kind}"

    @property
    def http(self) -> bool:
        """Pool and network sources speak HTTP (and have a budget); devices speak the miner's TCP API."""
        return self.family != "devices"

    @property
    def folder(self) -> Path:
        return FAMILY_DIRS[self.family] / self.kind

    @property
    def model(self) -> type[BaseModel]:
        model = self.source.settings_model
        assert isinstance(model, type)
        assert issubclass(model, BaseModel)
        return model

    def sample(self) -> dict[str, Any]:
        with (self.folder / "sample.toml").open("rb") as handle:
            return tomllib.load(handle)

    def readme(self) -> str:
        return (self.folder / "README.md").read_text(encoding="utf-8")


def entries() -> list[Entry]:
    families: dict[str, Any] = {"pools": REGISTRY, "devices": REGISTRY.devices, "networks": REGISTRY.networks}
    return [Entry(family, kind, sources[kind]) for family, sources in families.items() for kind in sorted(sources)]


ENTRIES = entries()
IDS = [entry.id for entry in ENTRIES]
HTTP_ENTRIES = [entry for entry in ENTRIES if entry.http]


def readme_section(text: str, keywords: tuple[str, ...] | str) -> str:
    """The body of the first `## ` section with a title word starting with a keyword (case-insensitive).

    A `## ` line inside a fenced code block (a TOML doc comment) is not a heading.
    """
    words = (keywords,) if isinstance(keywords, str) else keywords
    body: list[str] | None = None
    fenced = False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif line.startswith("## ") and not fenced:
            if body is not None:
                break
            if any(re.search(rf"\b{re.escape(word)}", line.lower()) for word in words):
                body = []
            continue
        if body is not None:
            body.append(line)
    return "\n".join(body or [])


def code_block(section: str, language: str = "") -> str:
    """The first fenced block of `section` (with that language tag, if given)."""
    tag = re.escape(language) if language else "[a-z]*"
    match = re.search(rf"^```{tag}\n(.*?)^```", section, flags=re.MULTILINE | re.DOTALL)
    return match.group(1) if match else ""


def points_table(entry: Entry) -> dict[tuple[str, str], str]:
    """`(measurement, field) -> type` from the README's points table (the one with measurement/field/type/unit)."""
    rows: dict[tuple[str, str], str] = {}
    header: list[str] = []
    for line in readme_section(entry.readme(), "points").splitlines():
        cells = [cell.strip().strip("`") for cell in line.strip().strip("|").split("|")]
        if not line.startswith("|"):
            header = []
        elif not header:
            header = [cell.lower() for cell in cells]
        elif {"measurement", "field", "type", "unit"} <= set(header) and not set(line) <= set("|-: "):
            row = dict(zip(header, cells, strict=False))
            rows[(row["measurement"], row["field"])] = row["type"]
    return rows


def golden_cases(entry: Entry) -> list[Path]:
    return sorted(case.parent for case in (GOLDEN / entry.kind).glob("*/case.toml"))


def golden_lines(entry: Entry) -> list[str]:
    """Every line the kind's golden cases expect, `source_health` included."""
    lines = []
    for case in golden_cases(entry):
        if (case / "expected.lp").is_file():
            lines.extend((case / "expected.lp").read_text().splitlines())
    return lines


def golden_fields(entry: Entry) -> set[tuple[str, str]]:
    """Every (measurement, field) the kind's golden cases expect a source to write (source_health excluded)."""
    written = set()
    for line in golden_lines(entry):
        series = split_unescaped(line, " ", quotes=False)[0]
        fields = line[len(series) + 1 :].rsplit(" ", 1)[0]
        measurement = series.split(",", 1)[0]
        for pair in split_unescaped(fields, ",", quotes=True):
            written.add((measurement, pair.split("=", 1)[0]))
    return {(m, f) for m, f in written if m != SOURCE_HEALTH}


def keys(value: Any) -> Iterator[str]:
    """Every key of a TOML document, tables and arrays of tables included."""
    if isinstance(value, dict):
        for key, inner in value.items():
            yield key
            yield from keys(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from keys(inner)


def test_registry_lists_every_family_with_unique_kinds() -> None:
    for family in FAMILY_DIRS:
        assert any(entry.family == family for entry in ENTRIES), f"no {family} source registered"
    kinds = [entry.kind for entry in ENTRIES]
    assert len(set(kinds)) == len(kinds), "one kind in two families"
    assert all(entry.source.kind == entry.kind for entry in ENTRIES)
    assert len({id(entry.source) for entry in ENTRIES}) == len(ENTRIES), "one class registered twice"


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_source_declares_the_interface(entry: Entry) -> None:
    source = entry.source
    assert source.kind == entry.kind
    assert callable(source.collect)
    settings = entry.model.model_validate(entry.sample())
    assert source.requests_per_poll(settings) >= 1
    if not entry.http:
        return  # a miner is reached over TCP: no HTTP budget, one poll at a time per miner
    budget = source.default_budget
    assert isinstance(budget, RateBudget)
    assert budget.per_minute > 0
    assert budget.burst >= 1
    assert budget.scope in {"credential", "host"}
    assert isinstance(source.budget_key(settings), str)
    assert source.budget_key(settings).startswith(f"{entry.kind}:")
    assert REGISTRY.budget_for(entry.kind, None) == budget


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_folder_holds_the_four_things(entry: Entry) -> None:
    assert Path(str(sys.modules[entry.source.__module__].__file__)) == entry.folder / "adapter.py"
    missing = [
        name for name in ("adapter.py", "parse.py", "README.md", "sample.toml") if not (entry.folder / name).is_file()
    ]
    assert missing == []


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_sample_config_validates_without_secrets(entry: Entry) -> None:
    raw = entry.sample()
    secret_names: tuple[str, ...] = getattr(entry.model, "secret_names", ())
    named = [key for key in raw if key.endswith(SECRET_SUFFIXES)]
    assert [name for name in secret_names if name in raw] == [], "a literal secret"
    if entry.family == "pools":
        assert secret_names, "a pool account has a credential"
    if secret_names:
        assert named, "the sample names its credential with a *_env (or *_file) key"
        assert {key.removesuffix("_env").removesuffix("_file") for key in named} <= set(secret_names)
    else:
        assert named == [], "a source without a secret names none"
        assert [key for key in keys(raw) if any(word in key.lower() for word in SECRET_WORDS)] == [], "a secret"
    settings = entry.model.model_validate(raw)  # validation reads no environment variable
    if entry.http:
        default = entry.model.model_fields["base_url"].default
        assert isinstance(default, str)
        assert default.startswith("https://"), "the default base_url is the real service"
        assert settings.model_dump()["base_url"].startswith("https://"), "the sample points at the real service"


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_golden_cases_cover_success_and_failure(entry: Entry) -> None:
    cases = golden_cases(entry)
    assert any((case / "expected.lp").is_file() for case in cases), "no golden case with expected.lp"
    assert any((case / "expected.err").is_file() for case in cases), "no golden case with expected.err"
    assert [case.name for case in cases if not (case / "README.md").is_file()] == [], "a case without README.md"


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_readme_has_the_sections(entry: Entry) -> None:
    text = entry.readme()
    missing = [name for name, words in README_SECTIONS.items() if not readme_section(text, words).strip()]
    assert missing == []


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_readme_configuration_example_validates(entry: Entry) -> None:
    example = code_block(readme_section(entry.readme(), "configuration"), "toml")
    assert example, "the README shows the settings in a ```toml block under Configuration"
    entry.model.model_validate(tomllib.loads(example))


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_readme_points_table_matches_the_catalogue(entry: Entry) -> None:
    table = points_table(entry)
    assert table, "the README's points section has a measurement | field | type | unit table"
    for (measurement, field), type_name in table.items():
        assert measurement in CATALOGUE, measurement
        assert field in CATALOGUE[measurement].fields, f"{measurement}.{field}"
        assert FIELD_TYPES.get(type_name) is CATALOGUE[measurement].fields[field], f"{measurement}.{field}"


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_readme_documents_every_field_the_golden_cases_write(entry: Entry) -> None:
    written = golden_fields(entry)
    assert written, "no golden output to compare with"
    assert written - set(points_table(entry)) == set()


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_readme_example_output_is_real_output(entry: Entry) -> None:
    example = code_block(readme_section(entry.readme(), "example output")).splitlines()
    produced = set(golden_lines(entry))
    assert example, "the README shows example output"
    assert [line for line in example if line not in produced] == []
