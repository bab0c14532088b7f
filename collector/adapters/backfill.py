"""Backfill bookkeeping shared by the pool sources: when a poll follows a gap, how far back a history read must
reach so the polls that failed or never ran leave no hole, and which of a pool's hashrate bins may be written."""

from __future__ import annotations

from collections.abc import Iterable
from itertools import pairwise

from collector.errors import BadResponse
from collector.models import HashrateSample

DAY_S = 86_400


class GapWatch:
    """When a poll follows a gap in this account's hashrate record, and how far back the gap reaches.

    `interval_s` is the poll interval the runner schedules this account at (`SourceContext.interval_s`). A gap is
    the first poll after start-up, or a poll more than two intervals after the hashrate was last recorded (a
    successful poll, and its history read if it needed one). The gap then reaches back to that time, capped at
    `cap_s`. A late or early run does not change what counts as a gap: the interval is given, not guessed.

    `rate_limited()` says a poll was refused with a 429: the next poll leaves its gap open (`gap_start` gives
    None and its `covered()` changes nothing) and the poll after reads it, so the first poll after a backoff
    makes only the normal requests. `rollback()` undoes this poll's `covered()` when the runner could not turn
    the poll into points, so the next poll reads the gap again.
    """

    def __init__(self, cap_s: int, interval_s: float) -> None:
        self._cap_s = cap_s
        self._interval_s = interval_s
        self._covered_at: int | None = None
        self._before: int | None = None
        self._after_429 = False  # the last poll was refused with a 429
        self._deferred = False  # this poll leaves its gap for the next

    def gap_start(self, now: int) -> int | None:
        """Call once per poll, first: the start of the gap this poll must fill, or None if there is none (or it
        waits for the next poll, right after a 429)."""
        self._before = self._covered_at
        gap = self._gap(now)
        self._deferred, self._after_429 = gap is not None and self._after_429, False
        return None if self._deferred else gap

    def _gap(self, now: int) -> int | None:
        floor = now - self._cap_s
        if self._covered_at is None:
            return floor
        if now - self._covered_at <= 2 * self._interval_s:
            return None
        return max(self._covered_at, floor)

    def covered(self, now: int) -> None:
        """Record that the account's hashrate is known up to `now` (not on a poll that deferred its gap)."""
        if not self._deferred:
            self._covered_at = now

    def rate_limited(self) -> None:
        """The poll was refused with a 429: the next poll's gap read waits one more poll."""
        self._after_429 = True

    def rollback(self) -> None:
        """Put the mark back where it was before this poll's `gap_start()`."""
        self._covered_at = self._before


class Bookmarks:
    """When each dated history of an account (bills, rewards, payouts...) was last read in full, by name.

    `begin()` at the start of each poll remembers the marks; `rollback()` puts them back when the runner could
    not turn the poll into points (a LineProtocolError after `collect()` returned), so the next poll reaches back
    over that poll's window again instead of losing it.
    """

    def __init__(self) -> None:
        self._at: dict[str, int] = {}
        self._before: dict[str, int] = {}

    def begin(self) -> None:
        """Call once per poll, first."""
        self._before = dict(self._at)

    def get(self, name: str) -> int | None:
        """When `name` was last read in full; None before its first success."""
        return self._at.get(name)

    def mark(self, name: str, now: int) -> None:
        """Record that `name` was read in full at `now`."""
        self._at[name] = now

    def rollback(self) -> None:
        """Put the marks back where they were at this poll's `begin()`."""
        self._at = dict(self._before)


def history_start(now: int, last_ok_at: int | None, recent_days: int, cap_days: int) -> int:
    """The oldest time to ask a dated history (rewards, payouts) for.

    `recent_days` before the history was last read in full (or before now, if that is later), but no more than
    `cap_days` back; the first poll after start-up (nothing read yet) asks for the cap. That is the union of the
    windows the polls that failed or never ran would have read.
    """
    oldest = now - max(cap_days, recent_days) * DAY_S
    if last_ok_at is None:
        return oldest
    return max(oldest, min(now, last_ok_at) - recent_days * DAY_S)


def history_days(now: int, last_ok_at: int | None, recent_days: int, cap_days: int) -> int:
    """`history_start` in whole UTC days before today, for the pools whose histories take dates.

    A normal poll, on the same UTC day as the last, asks for the recent window only; each UTC midnight passed
    since the last success adds a day, up to the cap.
    """
    return now // DAY_S - history_start(now, last_ok_at, recent_days, cap_days) // DAY_S


def bins_between(now: int, since: int, bin_s: int, cap_s: int) -> int:
    """How many `bin_s` bins to ask for to cover `since`..`now`: the whole bins, and the one `since` falls in,
    at most `cap_s` worth (at least one)."""
    wanted = -(-(now - since) // bin_s) + 1
    return max(1, min(cap_s // bin_s, wanted))


def complete_bins(
    samples: Iterable[HashrateSample], *, oldest: int, now: int, bin_s: int, where: str
) -> tuple[HashrateSample, ...]:
    """The bins of the window asked for (`oldest`..`now`) that are complete by `now`, oldest first.

    The bin in progress is left out: its value is partial and no later poll would correct it (the live
    `pool_account` point covers the current bin). Bins older than the window (beyond `backfill_hours`) stay
    missing. Raises BadResponse (the section becomes an issue and the gap stays open for the next poll) when the
    pool returned bins but none in the window asked for, or bins not spaced by whole `bin_s` steps: a history
    that does not answer the question must not mark the gap as filled.
    """
    ordered = sorted(samples, key=lambda s: s.at)
    in_window = [s for s in ordered if oldest <= s.at <= now]
    if ordered and not in_window:
        raise BadResponse(
            f"{where}: {len(ordered)} bins returned, none in the window asked for ({oldest}..{now}); "
            f"newest at {ordered[-1].at}"
        )
    for earlier, later in pairwise(in_window):
        if (later.at - earlier.at) % bin_s:
            raise BadResponse(f"{where}: bins at {earlier.at} and {later.at} are not {bin_s} s steps apart")
    return tuple(s for s in in_window if s.at + s.window_s <= now)
