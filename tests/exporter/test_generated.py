"""The catalogue's own rules, the generated files against the committed ones, and promtool on the rules."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from demo_config import ROOT
from exporter_support import promtool

from exporters.prometheus.catalogue import ALLOWED_LABELS, BUILD_INFO, BUILD_INFO_LABELS, CATALOGUE, PREFIX
from exporters.prometheus.generate import RULES_TEST_YML, RULES_YML, generated_files
from exporters.prometheus.rules import RuleSettings, alert_rules, rules_yaml

CONFIG = ROOT / "config" / "prometheus"


def test_catalogue_names_follow_the_contract() -> None:
    names = [spec.name for spec in CATALOGUE]
    assert len(names) == len(set(names))
    for spec in CATALOGUE:
        assert re.fullmatch(r"minewatch_[a-z0-9_]+", spec.name), spec.name
        assert spec.name.startswith(PREFIX)
        assert spec.name.endswith("_total") == (spec.type == "counter"), spec.name
        if spec.unit:
            assert spec.family_name.endswith("_" + spec.unit), spec.name
        assert not re.search(r"_(ms|milliseconds|percent|kw|kilowatts|th|ths|ph)(_|$)", spec.name), spec.name
        allowed = ALLOWED_LABELS | (set(BUILD_INFO_LABELS) if spec is BUILD_INFO else set())
        assert set(spec.labels) <= allowed, spec.name
        assert "cached" in spec.help or "scrape time" in spec.help or spec is BUILD_INFO, spec.name


@pytest.mark.parametrize("relative", sorted(generated_files(), key=str), ids=str)
def test_the_committed_file_is_what_the_code_generates(relative: Path) -> None:
    committed = ROOT / relative
    assert committed.exists(), f"{relative} missing: run `python -m exporters.prometheus`"
    assert committed.read_text(encoding="utf-8") == generated_files()[relative], (
        f"{relative} drifted from the code: run `python -m exporters.prometheus` and commit the result"
    )


def test_every_rule_has_severity_and_templated_annotations() -> None:
    for rule in alert_rules():
        labels = rule.as_dict().get("labels", {})
        # The violation alert keeps the severity the rule's series carries; every other rule sets one.
        assert "severity" in labels or "severity" in rule.expr or rule.name == "MinewatchGroupViolation", rule.name
        assert rule.summary
        assert rule.description


def test_promtool_accepts_the_rules() -> None:
    result = promtool("check", "rules", str(ROOT / RULES_YML))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in result.stdout


def test_promtool_unit_tests_pass() -> None:
    result = promtool("test", "rules", str(ROOT / RULES_TEST_YML))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_the_unit_tests_catch_a_broken_dead_mans_switch(tmp_path: Path) -> None:
    # The same tests against rules whose staleness limit is an hour must fail: the tests have teeth.
    shutil.copy(ROOT / RULES_TEST_YML, tmp_path / RULES_TEST_YML.name)
    (tmp_path / RULES_YML.name).write_text(rules_yaml(RuleSettings(stale_after_s=3600)), encoding="utf-8")
    result = promtool("test", "rules", str(tmp_path / RULES_TEST_YML.name))
    assert result.returncode != 0
    assert "MinewatchAllSourcesStale" in result.stdout + result.stderr


def test_the_example_scrape_config_is_valid() -> None:
    result = promtool("check", "config", str(CONFIG / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "minewatch-rules.yml" in result.stdout
