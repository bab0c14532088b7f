"""The generated files of the exporter: METRICS.md, the alerting rules and their promtool tests."""

from __future__ import annotations

from pathlib import Path

from exporters.prometheus.catalogue import metrics_markdown
from exporters.prometheus.rule_tests import RULES_FILE, rule_tests_yaml
from exporters.prometheus.rules import rules_yaml

REPO = Path(__file__).resolve().parents[2]
METRICS_MD = Path("exporters/prometheus/METRICS.md")
RULES_YML = Path("config/prometheus") / RULES_FILE
RULES_TEST_YML = Path("config/prometheus/minewatch-rules.test.yml")


def generated_files() -> dict[Path, str]:
    """Each generated file (relative to the repository) and its content."""
    return {METRICS_MD: metrics_markdown(), RULES_YML: rules_yaml(), RULES_TEST_YML: rule_tests_yaml()}


def write_generated(root: Path = REPO) -> list[Path]:
    """Write every generated file under `root`; return the paths that changed."""
    changed = []
    for relative, text in generated_files().items():
        path = root / relative
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            changed.append(path)
    return changed
