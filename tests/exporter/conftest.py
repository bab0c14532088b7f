"""The exporter tests' shared world (built once per session; see exporter_world.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from exporter_world import ExporterWorld, exporter_world


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExporterWorld]:
    with exporter_world(tmp_path_factory.mktemp("exporter")) as built:
        yield built
