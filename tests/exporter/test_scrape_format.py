"""The scrape's shape: catalogue names and types only, bounded labels, no timestamps, and promtool's approval."""

from __future__ import annotations

from exporter_support import promtool, scrape
from exporter_world import ExporterWorld
from prometheus_client.parser import text_string_to_metric_families

from collector.targets import Target
from exporters.prometheus.catalogue import ALLOWED_LABELS, BUILD_INFO, BUILD_INFO_LABELS, CATALOGUE


def test_every_family_is_in_the_catalogue_with_its_type_and_labels(world: ExporterWorld) -> None:
    text = scrape(world.collector, world.engine).text
    specs = {spec.family_name: spec for spec in CATALOGUE}
    families = list(text_string_to_metric_families(text))
    assert {f.name for f in families} == set(specs), "every catalogued metric is described in a full scrape"
    samples = 0
    for family in families:
        spec = specs[family.name]
        assert family.type == spec.type, family.name
        for sample in family.samples:
            samples += 1
            assert sample.name == spec.name, sample
            assert tuple(sample.labels) == spec.labels or set(sample.labels) == set(spec.labels), sample
            assert sample.timestamp is None, sample
            allowed = ALLOWED_LABELS | (set(BUILD_INFO_LABELS) if spec is BUILD_INFO else set())
            assert set(sample.labels) <= allowed, sample
    assert samples > 200


def test_label_values_are_bounded_by_the_config(world: ExporterWorld) -> None:
    collector = world.collector
    targets: list[Target] = [*collector.targets, *(t for f in collector.fleets for t in f.targets), *collector.networks]
    known = {
        "group_id": {g.id for g in collector.groups} | {""},
        "target": {t.health_tags[2] for t in targets},
        "pool": {t.health_tags[1] for t in collector.targets},
    }
    for sample in scrape(collector, world.engine).samples:
        for label, values in known.items():
            if label in sample.labels:
                assert sample.labels[label] in values, sample


def test_promtool_check_metrics_accepts_a_real_scrape(world: ExporterWorld) -> None:
    text = scrape(world.collector, world.engine).text
    result = promtool("check", "metrics", stdin=text)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "", f"lint complaints: {result.stdout}"
    assert result.stderr.strip() == "", result.stderr


def test_promtool_check_metrics_does_complain_about_a_bad_name() -> None:
    # The check above is worth something only if promtool lints what it reads.
    bad = "# HELP minewatch_polls polls\n# TYPE minewatch_polls counter\nminewatch_polls 1\n"
    result = promtool("check", "metrics", stdin=bad)
    assert result.returncode != 0
    assert "_total" in result.stdout + result.stderr
