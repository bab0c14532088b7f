"""Backfill bookkeeping shared by the pool sources: when a poll follows a gap, and how many days of history
to ask for so the polls that failed or never ran leave no hole."""

from __future__ import annotations

DAY_S = 86_400


class GapWatch:
    """When a poll follows a gap in this account's hashrate record, and how far back the gap reaches.

    The poll interval is not in the source's context, so it is taken from the polls themselves: the shortest
    time seen between two consecutive `collect()` calls. A gap is the first poll after start-up, or a poll more
    than two such intervals after the hashrate was last recorded (a successful poll, and its history read if it
    needed one). The gap then reaches back to that time, capped at `cap_s`.
    """

    def __init__(self, cap_s: int) -> None:
        self._cap_s = cap_s
        self._covered_at: int | None = None
        self._last_call_at: int | None = None
        self._interval_s: int | None = None

    def gap_start(self, now: int) -> int | None:
        """Call once per poll, first: the start of the gap this poll must fill, or None if there is none."""
        if self._last_call_at is not None and now > self._last_call_at:
            step = now - self._last_call_at
            self._interval_s = step if self._interval_s is None else min(self._interval_s, step)
        self._last_call_at = now
        floor = now - self._cap_s
        if self._covered_at is None:
            return floor
        if self._interval_s is None or now - self._covered_at <= 2 * self._interval_s:
            return None
        return max(self._covered_at, floor)

    def covered(self, now: int) -> None:
        """Record that the account's hashrate is known up to `now`."""
        self._covered_at = now


def history_days(now: int, last_ok_at: int | None, recent_days: int, cap_days: int) -> int:
    """UTC days to ask for: the recent window plus the days since the section last succeeded, at most the cap.

    That is the union of the windows the polls that failed or never ran would have read (a normal poll, on the
    same UTC day as the last, asks for the recent window only); the first poll after start-up asks for the cap.
    """
    if last_ok_at is None:
        return max(cap_days, recent_days)
    missed = max(0, now // DAY_S - last_ok_at // DAY_S)  # UTC midnights passed since the last success
    return max(recent_days, min(cap_days, recent_days + missed))
