"""Offset paging is only as stable as the sort: against a stand-in that reorders ties as EIA may, a sort
on period alone repeats and skips rows; the client's sort (period, then every facet column; period
for one /seriesid/ series) gets every row exactly once.

These tests page with the same data, page size and seed as the flow acceptance tests in
tests/flows/test_series_paging.py, so they show that those tests would catch a sort that is not total.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from tasks.core.catalog import parse_catalog
from tasks.eia.client import ClientSettings, EiaClient
from tasks.eia.paging import FetchOutcome, fetch_all_pages
from tasks.eia.requests import seriesid_query
from tasks.series.plan import plan_requests
from tasks.standin.server import EiaReplayServer, FaultPlan
from tests.eia.paging_data import SERIES_ID, four_series_dataset, four_series_entry, seriesid_dataset

KEY = "k" * 40
SEED = 11
ROUTE_PAGE = 4_999  # not a multiple of 4: page boundaries fall inside a period's four tied rows


@pytest.fixture(scope="module")
def four_series() -> Iterator[tuple[EiaReplayServer, list[dict[str, Any]]]]:
    dataset, rows = four_series_dataset()
    with EiaReplayServer(dataset) as server:
        yield server, rows


@pytest.fixture(scope="module")
def one_series() -> Iterator[tuple[EiaReplayServer, list[dict[str, Any]]]]:
    dataset, rows = seriesid_dataset()
    with EiaReplayServer(dataset) as server:
        yield server, rows


async def fetch(server: EiaReplayServer, path: str, params: list[tuple[str, str]], page_size: int) -> FetchOutcome:
    settings = ClientSettings(
        api_url=server.api_url, api_key=KEY, requests_per_second=1000.0, burst=4, use_prefect_limits=False
    )
    async with EiaClient(settings) as client:
        return await fetch_all_pages(
            lambda offset, length: client.fetch_page(path, params, offset=offset, length=length), page_size=page_size
        )


def route_request() -> tuple[str, list[tuple[str, str]]]:
    """The request the series flow plans for the four-series entry."""
    catalog = parse_catalog({"entries": [four_series_entry()]})
    (request,) = plan_requests(catalog.entries, [], watermarks={})
    return request.path, list(request.params)


def period_only(params: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The same query sorted by period alone, as the client sent it before."""
    return [(k, v) for k, v in params if not k.startswith("sort[") or k.startswith("sort[0]")]


def missing_and_repeated(served: Counter[Any], fetched: Counter[Any]) -> tuple[int, int]:
    return sum((served - fetched).values()), sum((fetched - served).values())


async def test_sorted_by_period_alone_a_reordering_eia_makes_paging_repeat_and_skip_tied_rows(
    four_series: tuple[EiaReplayServer, list[dict[str, Any]]],
) -> None:
    server, rows = four_series
    server.faults = FaultPlan(reorder=True, seed=SEED)
    path, params = route_request()

    outcome = await fetch(server, path, period_only(params), ROUTE_PAGE)

    served = Counter((r["sectorid"], r["period"]) for r in rows)
    fetched = Counter((r["sectorid"], r["period"]) for r in outcome.rows)
    missing, repeated = missing_and_repeated(served, fetched)
    assert (outcome.pages, len(outcome.rows)) == (4, 15_000)
    assert missing == repeated > 0  # every repeated row took the place of a row never fetched


async def test_sorted_on_period_and_every_facet_column_every_row_is_fetched_exactly_once(
    four_series: tuple[EiaReplayServer, list[dict[str, Any]]],
) -> None:
    server, rows = four_series
    server.faults = FaultPlan(reorder=True, seed=SEED)
    path, params = route_request()

    outcome = await fetch(server, path, params, ROUTE_PAGE)

    served = Counter((r["sectorid"], r["period"], r["price"]) for r in rows)
    assert Counter((r["sectorid"], r["period"], r["price"]) for r in outcome.rows) == served
    assert outcome.pages == 4


async def test_a_seriesid_paged_without_a_sort_repeats_and_skips_rows_when_eia_serves_it_unsorted(
    one_series: tuple[EiaReplayServer, list[dict[str, Any]]],
) -> None:
    server, rows = one_series
    server.faults = FaultPlan(reorder=True, seed=SEED)
    path, params = seriesid_query(SERIES_ID, start=None, end=None)
    unsorted = [(k, v) for k, v in params if not k.startswith("sort[")]  # what the client sent before

    outcome = await fetch(server, path, unsorted, 5_000)

    missing, repeated = missing_and_repeated(
        Counter(r["period"] for r in rows), Counter(r["period"] for r in outcome.rows)
    )
    assert (outcome.pages, len(outcome.rows)) == (3, 12_500)
    assert missing == repeated > 0


async def test_a_seriesid_sorted_on_period_is_fetched_exactly_once_when_eia_reorders(
    one_series: tuple[EiaReplayServer, list[dict[str, Any]]],
) -> None:
    server, rows = one_series
    server.faults = FaultPlan(reorder=True, seed=SEED)
    path, params = seriesid_query(SERIES_ID, start=None, end=None)

    outcome = await fetch(server, path, params, 5_000)

    assert Counter((r["period"], r["value"]) for r in outcome.rows) == Counter((r["period"], r["value"]) for r in rows)
    assert outcome.pages == 3
