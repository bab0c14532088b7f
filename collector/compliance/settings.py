"""The tunable thresholds of the compliance rules: how old data may be, how long the windows are, how much slack.

Every field carries its unit in its name (`_s` seconds; fractions are plain ratios, 0.05 = 5 %). The defaults
suit a 60 s poll interval; they are what a group gets unless the configuration says otherwise.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class RuleSettings(BaseModel):
    """Thresholds shared by every rule (`collector.compliance.rules`).

    Windows are judged backwards from the view's `now`; a window "has enough data" when its usable samples
    cover at least half of it, each sample standing for the `stale_after_s` that follow it (the same reach a
    snapshot has before it goes stale), so a long gap in the history counts as missing, not as steady.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    stale_after_s: float = Field(180.0, gt=0, description="A source whose last good snapshot is older is stale.")
    hashrate_window_s: float = Field(3600.0, gt=0, description="Rolling window of the hashrate quota.")
    hashrate_tolerance: float = Field(0.05, ge=0, description="Slack above the hashrate quota (0.05 = 5 %).")
    unaccounted_window_s: float = Field(1800.0, gt=0, description="How long unaccounted hashrate must last.")
    unaccounted_tolerance: float = Field(
        0.10, ge=0, lt=1, description="Share of device hashrate the permitted pools may miss (pool-side lag, fees)."
    )
    offline_after_s: float = Field(900.0, gt=0, description="A worker is offline once its last share is older.")
    drop_window_s: float = Field(21_600.0, gt=0, description="Window of the hashrate-drop baseline (its median).")
    drop_fraction: float = Field(0.3, gt=0, lt=1, description="A drop by more than this share of the baseline.")
    blind_fraction: float = Field(
        0.5, ge=0, le=1, description="Collector blind when more than this share of the devices is stale."
    )
    payout_lookback_s: float | None = Field(
        86_400.0,
        gt=0,
        description=(
            "Payouts sent longer ago are no longer judged, so an alert on a one-off payout resolves a day later; "
            "None judges every payout the pool still lists."
        ),
    )
