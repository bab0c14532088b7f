"""Time zones in config files: an IANA name, checked when the file is loaded."""

from __future__ import annotations

from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BeforeValidator


def _zone(name: object) -> str:
    if not isinstance(name, str):
        raise ValueError(f"expected an IANA time zone name, got {type(name).__name__}")
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (use an IANA name such as Europe/Moscow)") from None
    return name


TimeZone = Annotated[str, BeforeValidator(_zone)]
