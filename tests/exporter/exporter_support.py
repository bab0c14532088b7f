"""Reading a scrape back: samples by name and labels, parsed with prometheus_client's own text parser."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from exporters.prometheus.collector import build_registry
from exporters.prometheus.inputs import CollectorInputs, ComplianceInputs
from exporters.prometheus.server import render_scrape
from simulator.local_servers import find_binary

TEST_VERSION = "0.0.0-test"


@dataclass(frozen=True)
class Scrape:
    """One scrape's text and its samples."""

    text: str

    @property
    def samples(self) -> list[Sample]:
        return [sample for family in text_string_to_metric_families(self.text) for sample in family.samples]

    def series(self, name: str) -> dict[frozenset[tuple[str, str]], float]:
        """Every sample of `name`, by its label set."""
        return {frozenset(s.labels.items()): s.value for s in self.samples if s.name == name}

    def value(self, name: str, **labels: str) -> float | None:
        """The value of the one sample of `name` with exactly these labels; None if there is none."""
        return self.series(name).get(frozenset(labels.items()))

    def has(self, name: str, **labels: str) -> bool:
        """Whether any sample of `name` carries (at least) these labels."""
        wanted = set(labels.items())
        return any(wanted <= set(key) for key in self.series(name))


def scrape(collector: CollectorInputs, engine: ComplianceInputs | None = None) -> Scrape:
    """What a scrape of a fresh registry over these inputs returns."""
    return Scrape(render_scrape(build_registry(collector, engine, version=TEST_VERSION)))


def promtool(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run Debian's promtool; its output is in the result (not checked here)."""
    return subprocess.run(
        [find_binary("promtool"), *args], input=stdin, capture_output=True, text=True, timeout=60, check=False
    )


def label_dict(key: frozenset[tuple[str, str]]) -> Mapping[str, str]:
    return dict(key)
