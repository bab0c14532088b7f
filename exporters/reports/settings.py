"""The `[reports]` section of the main file: when the monthly report is generated, where and in which formats."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from collector.adapters.base import HttpUrl
from collector.zones import TimeZone

ReportFormat = Literal["csv", "json", "pdf"]
ALL_FORMATS: tuple[ReportFormat, ...] = ("csv", "json", "pdf")


class ReportSettings(BaseModel):
    """When `minewatch run` generates the previous month's report, and where it goes.

    The report is due once `day` at `hour` (in `timezone`) of the following month has passed; a month missed
    while the daemon was down is made up at the next start (`state_file` remembers the last month made).
    `out_dir` and `state_file` are relative to the main config file. Days stop at 28 so every month has one.
    """

    # Same strictness as collector.config.Strict: a typo in a key must not pass silently.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    enabled: bool = True
    day: int = Field(1, ge=1, le=28)
    hour: int = Field(6, ge=0, le=23)
    timezone: TimeZone = "Europe/Moscow"
    out_dir: str = Field("reports", min_length=1)
    formats: tuple[ReportFormat, ...] = Field(ALL_FORMATS, min_length=1)
    state_file: str = Field("state/reports.json", min_length=1)
    # Where the "report written" notice is POSTed (JSON); None: the alerting webhook, if there is one.
    webhook_url: HttpUrl | None = None
    webhook_timeout_s: float = Field(10.0, gt=0, le=120)

    @field_validator("formats")
    @classmethod
    def _unique_formats(cls, value: tuple[ReportFormat, ...]) -> tuple[ReportFormat, ...]:
        if len(set(value)) != len(value):
            raise ValueError("each format may be listed once")
        return value
