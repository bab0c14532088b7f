"""AntPool list paging: `totalPage` wins over the short-page rule when a server caps the page size."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from collector.adapters.base import SourceContext
from collector.pools.antpool.adapter import AntpoolSettings, AntpoolSource


class CappedPages:
    """A fake AntPool that serves 120 workers in pages of at most 50 rows, whatever page size is asked for."""

    def __init__(self) -> None:
        self.pages_asked: list[int] = []

    def post_form(self, url: str, *, form: Mapping[str, str], headers: Mapping[str, str] | None = None) -> Any:
        number = int(form["page"])
        self.pages_asked.append(number)
        rows = [{"workerId": f"w{i:03d}", "hsLast10min": "1.0 TH/s", "workerStatus": "1"} for i in range(120)]
        return {"code": 0, "message": "ok", "data": {"totalPage": 3, "rows": rows[(number - 1) * 50 : number * 50]}}


def test_a_server_capping_pages_below_the_page_size_still_yields_every_worker() -> None:
    http = CappedPages()
    settings = AntpoolSettings(user_id="farm", page_size=100, api_key_env="K", api_secret_env="S")
    ctx = SourceContext(http=http, clock=lambda: 1_790_000_000.0, log=logging.getLogger("t"), target="a", coin="BTC")  # type: ignore[arg-type]
    source = AntpoolSource(settings, ctx)

    workers = source._user_workers()  # the paging under test, without the other endpoints

    assert len(workers) == 120
    assert http.pages_asked == [1, 2, 3]
