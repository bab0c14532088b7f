"""A source reaches back for history until its history sections succeed once, whatever else keeps failing."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from collector.adapters.base import SourceContext
from collector.errors import BadResponse
from collector.pools.emcd.adapter import EmcdSettings, EmcdSource

NOW = 1_790_000_000
DAY = 86_400


class InfoAlwaysBroken:
    """A fake EMCD whose `info` is always malformed while workers, income and payouts answer."""

    def get_json(self, url: str, *, headers: Mapping[str, str] | None = None, params: Any = None) -> Any:
        if "/v1/info/" in url:
            raise BadResponse("info: invalid JSON")
        if "/workers/" in url:
            return {"total_count": {"active": 1, "inactive": 0}, "total_hashrate": {"hashrate": 1e14}, "details": []}
        if "/income/" in url:
            old, recent = NOW - 30 * DAY, NOW - DAY
            return {
                "income": [
                    {"timestamp": recent, "income": 0.001, "type": "fpps"},
                    {"timestamp": old, "income": 0.002, "type": "fpps"},
                ]
            }
        return {"payouts": []}


def test_a_failing_info_section_does_not_make_every_poll_rewrite_the_whole_history() -> None:
    ctx = SourceContext(
        http=InfoAlwaysBroken(),
        clock=lambda: float(NOW),
        log=logging.getLogger("t"),  # type: ignore[arg-type]
        target="a",
        coin="BTC",
    )
    source = EmcdSource(EmcdSettings(api_key_env="K", recent_days=3), ctx)

    first, second = source.collect(), source.collect()

    assert [issue.section for issue in second.issues] == ["info"]
    assert len(first.earnings) == 2  # the first poll writes the whole history
    assert [e.credited_at for e in second.earnings] == [NOW - DAY]  # later ones only the recent days
