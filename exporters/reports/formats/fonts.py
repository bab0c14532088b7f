"""The PDF's font: DejaVu Sans where the system has it (Cyrillic legal names must print), else Helvetica."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont

# Debian's fonts-dejavu-core; Helvetica (built into every PDF reader) has no Cyrillic glyphs.
_DEJAVU = Path("/usr/share/fonts/truetype/dejavu")


@cache
def report_fonts() -> tuple[str, str]:
    """(regular, bold) font names, registered with reportlab on first use."""
    regular, bold = _DEJAVU / "DejaVuSans.ttf", _DEJAVU / "DejaVuSans-Bold.ttf"
    if regular.is_file() and bold.is_file():
        pdfmetrics.registerFont(TTFont("DejaVuSans", str(regular)))
        pdfmetrics.registerFont(TTFont("DejaVuSans-Bold", str(bold)))
        return "DejaVuSans", "DejaVuSans-Bold"
    return "Helvetica", "Helvetica-Bold"


def regular() -> str:
    return report_fonts()[0]
