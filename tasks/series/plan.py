"""Which requests a series run makes: catalog entries and v1 series ids, with incremental windows.

A request starts at the database's watermark minus the frequency's trailing window (the frequency
table's `trailing_window`), so revisions EIA makes to recent periods are picked up; `--start`/`--end`
override both.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from tasks.core.catalog import CatalogEntry
from tasks.core.frequencies import BULK_FREQUENCY_CODES, BY_NAME
from tasks.eia.requests import route_query, seriesid_query
from tasks.normalize.periods import api_period_token


@dataclass(frozen=True, slots=True)
class FetchRequest:
    key: str  # catalog entry id, or the v1 series id
    kind: Literal["route", "seriesid"]
    path: str
    params: tuple[tuple[str, str], ...]
    frequency: str
    start: str | None
    end: str | None
    entry: CatalogEntry | None = None


def seriesid_frequency(series_id: str) -> str | None:
    """v1 ids end in their frequency code (`ELEC.SALES.US-ALL.M`); None when they do not."""
    code = series_id.rsplit(".", 1)[-1].upper() if "." in series_id else ""
    return BULK_FREQUENCY_CODES.get(code)


def _start(watermark: datetime | None, frequency: str, fallback: str | None) -> str | None:
    if watermark is None:
        return fallback
    # The frequency's trailing window: EIA's revisions to recent periods are fetched again.
    return api_period_token(watermark - BY_NAME[frequency].trailing_window, frequency)


def plan_requests(
    entries: Sequence[CatalogEntry],
    series_ids: Sequence[str],
    *,
    watermarks: Mapping[str, datetime],
    start: str | None = None,
    end: str | None = None,
) -> list[FetchRequest]:
    """One request per catalog entry and per series id; `watermarks` is keyed by entry id / series id."""
    plan: list[FetchRequest] = []
    for entry in entries:
        first = start or _start(watermarks.get(entry.id), entry.frequency, entry.initial_start)
        path, params = route_query(
            entry.route,
            frequency=entry.frequency,
            data=entry.data,
            facets=entry.facets,
            series_facets=entry.series_facets,  # sorted on too: rows of one period never tie
            start=first,
            end=end,
        )
        plan.append(FetchRequest(entry.id, "route", path, tuple(params), entry.frequency, first, end, entry))
    for series_id in series_ids:
        frequency = seriesid_frequency(series_id) or "annual"
        first = start or _start(watermarks.get(series_id), frequency, None)
        path, params = seriesid_query(series_id, start=first, end=end)
        plan.append(FetchRequest(series_id, "seriesid", path, tuple(params), frequency, first, end))
    return plan
