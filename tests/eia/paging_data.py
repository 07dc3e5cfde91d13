"""Served data for the paging tests: a route whose periods each hold four series, and a long /seriesid/.

Shared by the client-level paging tests (tests/eia/test_paging.py) and the series-flow acceptance
tests (tests/flows/test_series_paging.py), so both page exactly the same rows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tasks.normalize.identity import route_series_id
from tasks.standin.data import DATE_FORMATS, ReplayDataset, synthetic_route_series, synthetic_seriesid

ROUTE = "electricity/retail-sales"
COLUMN = "price"
# sectorid: price level in cents per kilowatt-hour; a distinct level per series, so a row served
# under another series' key would not match what was served.
SECTORS = {"ALL": 12.0, "RES": 15.0, "COM": 13.0, "IND": 8.0}
PERIODS = 3_750  # monthly, 1714-01 .. 2026-06: 15,000 rows, three full 5,000-row pages and more
FIRST_PERIOD = "1714-01"

SERIES_ID = "EBA.SYN-US48.NG.H"  # a v1 id ending in H: an hourly series
SERIES_POINTS = 12_500  # three pages of at most 5,000 rows
SERIES_START = "2025-01-01T00"


def four_series_entry(entry_id: str = "retail-four-sectors") -> dict[str, Any]:
    """The catalog entry fetching the four series in one request."""
    return {
        "id": entry_id,
        "route": ROUTE,
        "frequency": "monthly",
        "data": [COLUMN],
        "facets": {"stateid": ["US"], "sectorid": sorted(SECTORS)},
        "series_facets": ["stateid", "sectorid"],
        "area_facet": "stateid",
        "sector_facet": "sectorid",
    }


def _prices(base: float) -> Callable[[int], str]:
    return lambda i: f"{base + (i % 50) / 100:.2f}"


def four_series_dataset() -> tuple[ReplayDataset, list[dict[str, Any]]]:
    """The dataset, and its rows in stored order (series after series, as samples are appended)."""
    dataset = ReplayDataset(routes={}, seriesid={})
    rows: list[dict[str, Any]] = []
    for sector, base in SECTORS.items():
        rows += synthetic_route_series(
            ROUTE,
            "monthly",
            n_points=PERIODS,
            start=FIRST_PERIOD,
            facets={"stateid": "US"},
            extra={"stateDescription": "U.S. Total", "sectorid": sector, "sectorName": sector.lower()},
            column=COLUMN,
            unit="cents per kilowatt-hour",
            value_fn=_prices(base),
        )
    dataset.add_route_rows(ROUTE, "monthly", DATE_FORMATS["monthly"], rows)
    return dataset, rows


def four_series_served(rows: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    """(series id, raw period, raw value) of every served row, as the pipeline names the series."""
    return {
        (
            route_series_id(ROUTE, COLUMN, "monthly", {"stateid": row["stateid"], "sectorid": row["sectorid"]}),
            row["period"],
            row[COLUMN],
        )
        for row in rows
    }


def seriesid_dataset() -> tuple[ReplayDataset, list[dict[str, Any]]]:
    """One 12,500-point hourly series behind /v2/seriesid/, and its rows (newest first, as EIA sends)."""
    dataset = ReplayDataset(routes={}, seriesid={})
    body = synthetic_seriesid(
        SERIES_ID,
        "hourly",
        n_points=SERIES_POINTS,
        start=SERIES_START,
        unit="megawatthours",
        value_fn=lambda i: 400_000.0 + (i % 24) * 1_000.0 + (i % 7),
        description="Synthetic Lower 48 natural gas generation",
    )
    dataset.add_seriesid(SERIES_ID, body)
    rows: list[dict[str, Any]] = body["response"]["data"]
    return dataset, rows
