"""Registry-wide conformance: every pool source ships the same four things and keeps its docs honest.

For each entry of `source_registry()`: the class declares the source interface; its folder holds `adapter.py`,
`parse.py`, `README.md` and `sample.toml`; the sample validates without the secret being set; golden cases
cover a success and a failure; the README documents endpoints, auth, rate limit, units, the points written
(checked against the measurement catalogue and the golden output) and known quirks.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

import collector.pools
from collector.adapters.registry import source_registry
from collector.ratelimit import RateBudget
from collector.sinks.points import CATALOGUE, SOURCE_HEALTH

SOURCES = source_registry()
KINDS = sorted(SOURCES)
POOLS_DIR = Path(collector.pools.__file__).parent
GOLDEN = Path(__file__).parent / "golden"
FIELD_TYPES = {"float": float, "int": int, "string": str}
README_SECTIONS = {
    "endpoints": "endpoint",
    "auth": "auth",
    "rate limit": "rate limit",
    "units": "unit",
    "points written": "points",
    "known quirks": "quirk",
}


def sample_settings(kind: str) -> dict[str, Any]:
    with (POOLS_DIR / kind / "sample.toml").open("rb") as handle:
        return tomllib.load(handle)


def readme(kind: str) -> str:
    return (POOLS_DIR / kind / "README.md").read_text(encoding="utf-8")


def readme_section(text: str, keyword: str) -> str:
    """The body of the first `## ` section with a title word starting with `keyword` (case-insensitive).

    A `## ` line inside a fenced code block (a TOML doc comment) is not a heading.
    """
    body: list[str] | None = None
    fenced = False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif line.startswith("## ") and not fenced:
            if body is not None:
                break
            if re.search(rf"\b{re.escape(keyword)}", line.lower()):
                body = []
            continue
        if body is not None:
            body.append(line)
    return "\n".join(body or [])


def code_block(section: str) -> str:
    match = re.search(r"^```[a-z]*\n(.*?)^```", section, flags=re.MULTILINE | re.DOTALL)
    return match.group(1) if match else ""


def points_table(kind: str) -> dict[tuple[str, str], str]:
    """`(measurement, field) -> type` from the README's points table (the one with measurement/field/type/unit)."""
    rows: dict[tuple[str, str], str] = {}
    header: list[str] = []
    for line in readme_section(readme(kind), "points").splitlines():
        cells = [cell.strip().strip("`") for cell in line.strip().strip("|").split("|")]
        if not line.startswith("|"):
            header = []
        elif not header:
            header = [cell.lower() for cell in cells]
        elif {"measurement", "field", "type", "unit"} <= set(header) and not set(line) <= set("|-: "):
            row = dict(zip(header, cells, strict=False))
            rows[(row["measurement"], row["field"])] = row["type"]
    return rows


def split_unescaped(text: str, separator: str, *, quotes: bool) -> list[str]:
    """Split line-protocol text at `separator` outside backslash escapes (and, if `quotes`, outside strings)."""
    parts, current, escaped, quoted = [], "", False, False
    for char in text:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"' and quotes:
            quoted = not quoted
        elif char == separator and not quoted:
            parts.append(current)
            current = ""
            continue
        current += char
    parts.append(current)
    return parts


def golden_fields(kind: str) -> set[tuple[str, str]]:
    """Every (measurement, field) the kind's golden cases expect a source to write (source_health excluded)."""
    written = set()
    for expected in GOLDEN.glob(f"{kind}/*/expected.lp"):
        for line in expected.read_text().splitlines():
            series = split_unescaped(line, " ", quotes=False)[0]
            fields = line[len(series) + 1 :].rsplit(" ", 1)[0]
            measurement = series.split(",", 1)[0]
            for pair in split_unescaped(fields, ",", quotes=True):
                written.add((measurement, pair.split("=", 1)[0]))
    return {(m, f) for m, f in written if m != SOURCE_HEALTH}


def test_registry_lists_sources_with_unique_kinds() -> None:
    assert KINDS, "no pool source registered"
    assert len({source.kind for source in SOURCES.values()}) == len(SOURCES)
    assert len(set(map(id, SOURCES.values()))) == len(SOURCES), "one class registered twice"


@pytest.mark.parametrize("kind", KINDS)
def test_source_declares_the_interface(kind: str) -> None:
    source = SOURCES[kind]
    assert source.kind == kind
    assert isinstance(source.settings_model, type)
    assert issubclass(source.settings_model, BaseModel)
    budget = source.default_budget
    assert isinstance(budget, RateBudget)
    assert budget.per_minute > 0
    assert budget.burst >= 1
    assert budget.scope in {"credential", "host"}
    assert callable(source.collect)
    settings = source.settings_model.model_validate(sample_settings(kind))
    assert isinstance(source.budget_key(settings), str)
    assert source.budget_key(settings).startswith(f"{kind}:")
    assert source.requests_per_poll(settings) >= 1


@pytest.mark.parametrize("kind", KINDS)
def test_folder_holds_the_four_things(kind: str) -> None:
    folder = POOLS_DIR / kind
    missing = [name for name in ("adapter.py", "parse.py", "README.md", "sample.toml") if not (folder / name).is_file()]
    assert missing == []


@pytest.mark.parametrize("kind", KINDS)
def test_sample_config_validates_without_secrets(kind: str) -> None:
    raw = sample_settings(kind)
    secret_keys = [key for key in raw if key.endswith(("_env", "_file"))]
    assert secret_keys, "the sample names its credential with a *_env (or *_file) key"
    assert all(key.removesuffix("_env").removesuffix("_file") not in raw for key in secret_keys), "a literal secret"
    source = SOURCES[kind]
    settings = source.settings_model.model_validate(raw)  # validation reads no environment variable
    assert settings.model_dump()["base_url"].startswith("https://"), "the default base_url is the real pool"


@pytest.mark.parametrize("kind", KINDS)
def test_golden_cases_cover_success_and_failure(kind: str) -> None:
    cases = [case for case in (GOLDEN / kind).glob("*") if (case / "case.toml").is_file()]
    assert any((case / "expected.lp").is_file() for case in cases), "no golden case with expected.lp"
    assert any((case / "expected.err").is_file() for case in cases), "no golden case with expected.err"
    assert all((case / "README.md").is_file() for case in cases), "every golden case says what it covers"


@pytest.mark.parametrize("kind", KINDS)
def test_readme_has_the_sections(kind: str) -> None:
    text = readme(kind)
    missing = [name for name, keyword in README_SECTIONS.items() if not readme_section(text, keyword).strip()]
    assert missing == []


@pytest.mark.parametrize("kind", KINDS)
def test_readme_configuration_example_validates(kind: str) -> None:
    example = code_block(readme_section(readme(kind), "configuration"))
    assert example, "the README shows the settings in a ```toml block under Configuration"
    SOURCES[kind].settings_model.model_validate(tomllib.loads(example))


@pytest.mark.parametrize("kind", KINDS)
def test_readme_points_table_matches_the_catalogue(kind: str) -> None:
    table = points_table(kind)
    assert table, "the README's points section has a measurement | field | type | unit table"
    for (measurement, field), type_name in table.items():
        assert measurement in CATALOGUE, measurement
        assert field in CATALOGUE[measurement].fields, f"{measurement}.{field}"
        assert FIELD_TYPES.get(type_name) is CATALOGUE[measurement].fields[field], f"{measurement}.{field}"


@pytest.mark.parametrize("kind", KINDS)
def test_readme_documents_every_field_the_golden_cases_write(kind: str) -> None:
    undocumented = golden_fields(kind) - set(points_table(kind))
    assert golden_fields(kind), "no golden output to compare with"
    assert undocumented == set()


@pytest.mark.parametrize("kind", KINDS)
def test_readme_example_output_is_real_output(kind: str) -> None:
    example = code_block(readme_section(readme(kind), "example output")).splitlines()
    produced = {line for path in GOLDEN.glob(f"{kind}/*/expected.lp") for line in path.read_text().splitlines()}
    assert example, "the README shows example output"
    assert [line for line in example if line not in produced] == []
