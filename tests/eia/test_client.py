"""The EIA client's requests: a total order for paging, and Retry-After in both of RFC 9110's forms."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime

import httpx
import pytest

from tasks.core.catalog import CatalogEntry
from tasks.eia.client import (
    MAX_RETRY_AFTER_S,
    ClientSettings,
    EiaClient,
    retry_after_seconds,
)
from tasks.eia.requests import route_query, seriesid_query
from tasks.series.plan import plan_requests
from tasks.standin.data import DATE_FORMATS, ReplayDataset, synthetic_route_series
from tasks.standin.server import EiaReplayServer, FaultPlan

KEY = "k" * 40


def sort_of(params: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(k, v) for k, v in params if k.startswith("sort[")]


# --- a total order ---------------------------------------------------------------------------


def test_a_route_query_sorts_on_period_then_every_facet_column_in_name_order() -> None:
    _, params = route_query(
        "electricity/retail-sales",
        frequency="monthly",
        data=["price"],
        facets={"stateid": ("US",), "sectorid": ("ALL", "RES")},
        series_facets=("stateid", "sectorid"),
        start="2024-01",
        end=None,
    )

    assert sort_of(params) == [
        ("sort[0][column]", "period"),
        ("sort[0][direction]", "asc"),
        ("sort[1][column]", "sectorid"),
        ("sort[1][direction]", "asc"),
        ("sort[2][column]", "stateid"),
        ("sort[2][direction]", "asc"),
    ]


def test_the_plan_sorts_on_series_facets_that_are_not_filters_too() -> None:
    entry = CatalogEntry(
        "fuel-mix",
        "electricity/rto/fuel-type-data",
        "hourly",
        ("value",),
        facets={"respondent": ("US48",)},
        series_facets=("respondent", "fueltype"),  # every fuel type: fueltype is not filtered on
    )

    (request,) = plan_requests([entry], [], watermarks={})

    assert [v for k, v in request.params if k.endswith("[column]")] == ["period", "fueltype", "respondent"]


def test_a_seriesid_query_sends_an_explicit_sort_on_period() -> None:
    path, params = seriesid_query("ELEC.SALES.US-ALL.M", start="2024-01", end=None)

    assert path == "/seriesid/ELEC.SALES.US-ALL.M"
    assert params == [("start", "2024-01"), ("sort[0][column]", "period"), ("sort[0][direction]", "asc")]


# --- Retry-After -----------------------------------------------------------------------------

NOW = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)


def http_date(moment: datetime) -> str:
    return format_datetime(moment, usegmt=True)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("7", 7.0),
        ("0", 0.0),
        ("-3", 0.0),  # never negative
        ("3600", MAX_RETRY_AFTER_S),  # capped as before
        (http_date(NOW + timedelta(seconds=30)), 30.0),
        (http_date(NOW - timedelta(seconds=30)), 0.0),  # a date already past: no wait
        (http_date(NOW + timedelta(hours=1)), MAX_RETRY_AFTER_S),
        ("Tuesday, 01-Dec-26 12:00:10 GMT", 10.0),  # RFC 9110's obsolete RFC 850 form
        ("Tue Dec  1 12:00:15 2026", 15.0),  # and asctime's, which is GMT too
        ("Tue, 01 Dec 2026 12:00:20 -0000", 20.0),
        ("soon", None),
        ("", None),
        (None, None),
        ("nan", None),
    ],
)
def test_retry_after_is_read_as_delta_seconds_or_an_http_date_capped_and_never_negative(
    value: str | None, seconds: float | None
) -> None:
    assert retry_after_seconds(value, now=NOW) == seconds


class RecordingTransport(httpx.AsyncBaseTransport):
    """The real HTTP transport, keeping each answer's Retry-After header for the test to read."""

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self.retry_afters: list[str | None] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        self.retry_afters.append(response.headers.get("Retry-After"))
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


@pytest.fixture
def small_route() -> Iterator[EiaReplayServer]:
    dataset = ReplayDataset(routes={}, seriesid={})
    rows = synthetic_route_series(
        "natural-gas/pri/fut",
        "daily",
        n_points=5,
        start="2026-10-01",
        facets={"series": "RNGWHHD"},
        unit="$/MMBTU",
        unit_column="units",
    )
    dataset.add_route_rows("natural-gas/pri/fut", "daily", DATE_FORMATS["daily"], rows)
    with EiaReplayServer(dataset) as server:
        yield server


async def test_a_429_whose_retry_after_is_an_http_date_waits_until_that_date(small_route: EiaReplayServer) -> None:
    small_route.faults = FaultPlan(burst_429=1, retry_after_s=4, retry_after_date=True)
    settings = ClientSettings(
        api_url=small_route.api_url, api_key=KEY, requests_per_second=1000.0, burst=4, use_prefect_limits=False
    )
    transport = RecordingTransport()
    path, params = route_query(
        "natural-gas/pri/fut", frequency="daily", data=["value"], facets={"series": ("RNGWHHD",)}, start=None, end=None
    )

    async with EiaClient(settings, transport=transport) as client:
        body = await client.get_json(path, params)

    assert len(body["response"]["data"]) == 5
    assert small_route.stats.statuses == {429: 1, 200: 1}
    (throttled_at, _), (retried_at, _) = small_route.stats.api_arrivals
    date = transport.retry_afters[0]
    assert date is not None and date.endswith(" GMT")
    until = parsedate_to_datetime(date).timestamp()
    assert until - throttled_at > 3.0  # further ahead than the 2 s the client waits without a Retry-After
    assert until - 0.01 <= retried_at < until + 0.5
    assert [r.throttled for r in client.records] == [True, False]
