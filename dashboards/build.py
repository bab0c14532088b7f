"""Render every `dashboards/*.dashboard.py` to deterministic Grafana JSON: `<out>/<uid>.json`.

The sources follow grafanalib's convention (a file that defines a module-level `dashboard`), and their dotted
names are not importable module names, so they are loaded by path with importlib. The output is stable byte
for byte (sorted keys, two-space indent, trailing newline): the committed JSON is drift-checked by a test.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

from grafanalib._gen import DashboardEncoder
from grafanalib.core import Dashboard

SOURCES_DIR = Path(__file__).resolve().parent
SOURCE_SUFFIX = ".dashboard.py"
DEFAULT_OUT = Path("dashboards") / "generated"


class DashboardSourceError(Exception):
    """A `*.dashboard.py` file that does not define a grafanalib `Dashboard` named `dashboard` with a uid."""


@dataclass(frozen=True)
class Rendered:
    """One dashboard ready to write: its file name and its JSON text."""

    filename: str
    text: str


def sources(directory: Path = SOURCES_DIR) -> list[Path]:
    """Every dashboard source in `directory`, sorted by name."""
    return sorted(directory.glob(f"*{SOURCE_SUFFIX}"))


def load(path: Path) -> Dashboard:
    """Execute one source file and return its `dashboard`, with panel ids assigned."""
    name = "minewatch_dashboard_" + path.name.removesuffix(SOURCE_SUFFIX).replace("-", "_")
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise DashboardSourceError(f"{path}: cannot be loaded as Python")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    board = getattr(module, "dashboard", None)
    if not isinstance(board, Dashboard):
        raise DashboardSourceError(f"{path}: defines no grafanalib Dashboard named `dashboard`")
    if not board.uid:
        raise DashboardSourceError(f"{path}: the dashboard has no uid")
    ids: Dashboard = board.auto_panel_ids()
    return ids


def render(board: Dashboard) -> str:
    """The dashboard's JSON text: sorted keys, indent 2, trailing newline."""
    return json.dumps(board.to_json_data(), cls=DashboardEncoder, sort_keys=True, indent=2) + "\n"


def render_all(directory: Path = SOURCES_DIR) -> list[Rendered]:
    """Every dashboard of `directory`, rendered; two sources with one uid are an error."""
    rendered: dict[str, Rendered] = {}
    for path in sources(directory):
        board = load(path)
        filename = f"{board.uid}.json"
        if filename in rendered:
            raise DashboardSourceError(f"{path}: uid {board.uid!r} is used twice")
        rendered[filename] = Rendered(filename, render(board))
    return list(rendered.values())


def build(out: Path, directory: Path = SOURCES_DIR) -> list[Path]:
    """Write every dashboard to `out` (created if missing); return the paths written.

    Raises OSError when `out` cannot be created or written.
    """
    dashboards = render_all(directory)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for item in dashboards:
        path = out / item.filename
        path.write_text(item.text, encoding="utf-8")
        written.append(path)
    return written
