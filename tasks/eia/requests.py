"""Request builders for EIA API v2: the path and query of each kind of request, with a stable sort.

Pure functions over plain values: no HTTP here (the client sends what these build). Offset paging is
only stable on a total order, so every query names one: route queries sort on period and then on every
facet column of the request; `/seriesid/` queries (one series) on period.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def route_query(
    route: str,
    *,
    frequency: str,
    data: Sequence[str],
    facets: dict[str, tuple[str, ...]] | Any,
    start: str | None,
    end: str | None,
    series_facets: Sequence[str] = (),
) -> tuple[str, list[tuple[str, str]]]:
    """Path and query for `/v2/<route>/data/`, sorted on a total order so offset paging is stable.

    Rows of several series share a period, and EIA promises no order among rows that tie on the
    sort: sorted by period alone, pages taken by offset can repeat some rows and miss others. The
    sort is period, then every facet column of the request (the filter facets and the facets that
    identify a series), so no two rows tie.
    """
    params: list[tuple[str, str]] = [("frequency", frequency)]
    params += [(f"data[{i}]", column) for i, column in enumerate(data)]
    for facet in sorted(facets):
        params += [(f"facets[{facet}][]", value) for value in facets[facet]]
    if start:
        params.append(("start", start))
    if end:
        params.append(("end", end))
    params += _sort_params(["period", *sorted({*facets, *series_facets} - {"period"})])
    return f"/{route.strip('/')}/data/", params


def seriesid_query(series_id: str, *, start: str | None, end: str | None) -> tuple[str, list[tuple[str, str]]]:
    """Path and query for `/v2/seriesid/<ID>`: one series, so period alone is a total order."""
    params: list[tuple[str, str]] = []
    if start:
        params.append(("start", start))
    if end:
        params.append(("end", end))
    params += _sort_params(["period"])
    return f"/seriesid/{series_id}", params


def _sort_params(columns: Sequence[str]) -> list[tuple[str, str]]:
    params: list[tuple[str, str]] = []
    for i, column in enumerate(columns):
        params += [(f"sort[{i}][column]", column), (f"sort[{i}][direction]", "asc")]
    return params


def metadata_path(route: str) -> str:
    """Path of `/v2/<route>` metadata: a branch's child routes, or a data route's frequencies, facets,
    data columns and span (`/v2` itself for the root)."""
    route = route.strip("/")
    return f"/{route}" if route else "/"


def facet_values_path(route: str, facet: str) -> str:
    """Path of `/v2/<route>/facet/<facet>`: the values EIA lists for one facet of a data route."""
    return f"/{route.strip('/')}/facet/{facet}"
