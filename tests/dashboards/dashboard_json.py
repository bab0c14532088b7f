"""The generated dashboards as the tests read them: panels, targets and template variables of the JSON."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent.parent
GENERATED = ROOT / "dashboards" / "generated"


@dataclass(frozen=True)
class Target:
    """One panel target, with where it lives (for messages)."""

    dashboard: str
    panel: str
    max_data_points: int
    data: dict[str, Any]

    @property
    def where(self) -> str:
        return f"{self.dashboard} / {self.panel} / {self.data.get('refId')}"


def load_generated(directory: Path = GENERATED) -> dict[str, dict[str, Any]]:
    """Every generated dashboard, keyed by file name."""
    return {path.name: json.loads(path.read_text(encoding="utf-8")) for path in sorted(directory.glob("*.json"))}


def panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, including those nested in rows."""
    for panel in board["panels"]:
        yield panel
        yield from panel.get("panels", [])


def targets(boards: dict[str, dict[str, Any]]) -> Iterator[Target]:
    """Every target of every panel of every dashboard."""
    for board in boards.values():
        for panel in panels(board):
            for target in panel.get("targets", []):
                yield Target(board["uid"], panel["title"], int(panel.get("maxDataPoints") or 100), target)
