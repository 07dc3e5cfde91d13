"""Pagination over EIA's 5,000-row pages: offset by what actually arrived, stop on a short page.

EIA's `total` can be wrong (a sample says 436 where 218 rows exist), so it is only compared and
logged, never trusted to decide when to stop.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from tasks.eia.responses import EiaPage

logger = logging.getLogger(__name__)

MAX_PAGES = 10_000  # a guard against a server that keeps sending full pages forever


@dataclass(slots=True)
class FetchOutcome:
    rows: list[Any] = field(default_factory=list)
    pages: int = 0
    reported_total: int | None = None
    frequency: str | None = None
    description: str | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def total_disagrees(self) -> bool:
        return self.reported_total is not None and self.reported_total != len(self.rows)


async def fetch_all_pages(
    fetch: Callable[[int, int], Awaitable[EiaPage]], *, page_size: int, label: str = ""
) -> FetchOutcome:
    outcome = FetchOutcome()
    offset = 0
    while outcome.pages < MAX_PAGES:
        page = await fetch(offset, page_size)
        outcome.pages += 1
        outcome.rows.extend(page.rows)
        if outcome.pages == 1:
            outcome.reported_total = page.total
            outcome.frequency = page.frequency
            outcome.description = page.description
        outcome.warnings.extend(w for w in page.warnings if w not in outcome.warnings)
        if len(page.rows) < page_size:
            break
        offset += len(page.rows)
    if outcome.total_disagrees:
        logger.warning(
            "%s: EIA reported total=%s but served %s rows; keeping the rows actually served",
            label,
            outcome.reported_total,
            len(outcome.rows),
        )
    return outcome
