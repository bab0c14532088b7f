"""Alert episodes from `violation` transitions (pure): when each alert was firing, clipped to a window."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from exporters.reports.queries import Transition

FIRING = "firing"


@dataclass(frozen=True, slots=True)
class Episode:
    """An alert firing from `start_ns` to `end_ns` (clipped to the window), for one rule and subject."""

    rule: str
    severity: str
    subject: str
    start_ns: int
    end_ns: int

    @property
    def minutes(self) -> float:
        return (self.end_ns - self.start_ns) / 60e9


def episodes(before: Iterable[Transition], within: Iterable[Transition], start_ns: int, end_ns: int) -> list[Episode]:
    """The firing episodes that overlap [start_ns, end_ns).

    An alert is one (rule, severity, subject); the last transition before the window says whether it was
    already firing when the window began (then its episode starts at `start_ns`). A `firing` point while
    already firing continues the episode; any other state ends it. One still firing at the end is cut there.
    """
    firing_since: dict[tuple[str, str, str], int] = {}
    latest: dict[tuple[str, str, str], Transition] = {}
    for t in before:
        key = (t.rule, t.severity, t.subject)
        if key not in latest or t.time_ns > latest[key].time_ns:
            latest[key] = t
    for key, t in latest.items():
        if t.state == FIRING:
            firing_since[key] = start_ns
    found: list[Episode] = []
    for t in sorted(within, key=lambda x: (x.time_ns, x.rule, x.subject)):
        if not start_ns <= t.time_ns < end_ns:
            continue
        key = (t.rule, t.severity, t.subject)
        if t.state == FIRING:
            firing_since.setdefault(key, t.time_ns)
        elif key in firing_since:
            found.append(Episode(*key, firing_since.pop(key), t.time_ns))
    found.extend(Episode(*key, since, end_ns) for key, since in firing_since.items())
    return sorted(found, key=lambda e: (e.start_ns, e.rule, e.subject))


def by_rule(found: Iterable[Episode]) -> tuple[dict[str, int], dict[str, float]]:
    """Episode count and firing minutes per rule, sorted by rule."""
    counts: dict[str, int] = {}
    minutes: dict[str, float] = {}
    for episode in found:
        counts[episode.rule] = counts.get(episode.rule, 0) + 1
        minutes[episode.rule] = minutes.get(episode.rule, 0.0) + episode.minutes
    ordered = sorted(counts)
    return {r: counts[r] for r in ordered}, {r: round(minutes[r], 3) for r in ordered}
