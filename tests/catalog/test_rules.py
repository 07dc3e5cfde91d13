"""The catalog's pure rules: series identity, area and sector facets, grouping, page counts."""

from __future__ import annotations

import pytest

from tasks.catalog.metadata import parse_facet_values, parse_route_metadata
from tasks.catalog.rules import (
    area_facet_of,
    group_values,
    identity_problems,
    overlap_problems,
    pages_for,
    period_count,
    sector_facet_of,
    series_facets_of,
    window_periods,
)
from tasks.core.catalog import CatalogEntry, entry_json, parse_catalog

NG_FACETS = ("duoarea", "product", "process", "series")


def entry(**fields: object) -> CatalogEntry:
    raw = {"id": "e", "route": "electricity/retail-sales", "frequency": "monthly", "data": ["price"], **fields}
    return parse_catalog({"entries": [raw]}).entries[0]


def test_series_facets_leave_out_what_series_determines_and_row_attributes() -> None:
    assert series_facets_of(NG_FACETS) == ("series",)
    assert series_facets_of(("stateid", "sectorid")) == ("stateid", "sectorid")
    assert series_facets_of(("history", "scenario", "tableId", "seriesId", "regionId")) == (
        "scenario",
        "tableId",
        "seriesId",
        "regionId",
    )
    assert series_facets_of(("productId", "activityId", "countryRegionId", "dataFlagId")) == (
        "productId",
        "activityId",
        "countryRegionId",
    )


def test_area_and_sector_facets_are_recognised_by_id() -> None:
    assert area_facet_of(NG_FACETS) == "duoarea"
    assert area_facet_of(("location", "sectorid", "fueltypeid")) == "location"
    assert area_facet_of(("respondent", "fueltype")) == "respondent"
    assert area_facet_of(("msn",)) is None
    assert sector_facet_of(("stateid", "sectorid")) == "sectorid"
    assert sector_facet_of(("respondent", "fueltype")) is None


def test_a_facet_neither_identifying_nor_filtered_to_one_value_is_an_identity_problem() -> None:
    good = entry(facets={"stateid": ["US"]}, series_facets=["sectorid"])
    two_states = entry(facets={"stateid": ["US", "CA"]}, series_facets=["sectorid"])
    with_period = entry(series_facets=["stateid", "sectorid", "period"])

    assert identity_problems(good, ("stateid", "sectorid")) == []
    assert identity_problems(two_states, ("stateid", "sectorid")) == [
        "facet 'stateid' is neither a series facet nor filtered to one value: rows of different 'stateid' "
        "values would share one series id (add it to series_facets)"
    ]
    assert identity_problems(with_period, ("stateid", "sectorid")) == [
        "'period' is not a facet: a period never belongs in a series id"
    ]
    assert identity_problems(entry(route="natural-gas/pri/fut", series_facets=["series"]), NG_FACETS) == []


def test_two_entries_loading_the_same_series_clash_and_disjoint_ones_do_not() -> None:
    raw = {"route": "electricity/retail-sales", "frequency": "monthly", "series_facets": ["stateid", "sectorid"]}
    catalog = parse_catalog(
        {
            "entries": [
                {**raw, "id": "a", "data": ["price"], "facets": {"stateid": ["US"], "sectorid": ["RES"]}},
                {**raw, "id": "b", "data": ["price", "sales"], "facets": {"sectorid": ["RES", "COM"]}},
                {**raw, "id": "c", "data": ["price"], "facets": {"stateid": ["CA"], "sectorid": ["IND"]}},
                {**raw, "id": "d", "data": ["customers"], "facets": {"stateid": ["US"], "sectorid": ["RES"]}},
            ]
        }
    )

    assert [(i, why.split(":")[0]) for i, why in overlap_problems(catalog.entries)] == [
        (
            "b",
            "entry 'a' already loads series of electricity/retail-sales monthly price with the same sectorid, stateid",
        )
    ]


@pytest.mark.parametrize(("rows", "pages"), [(0, 1), (1, 1), (4999, 1), (5000, 2), (5001, 2), (12_500, 3)])
def test_a_fetch_costs_its_full_pages_and_the_short_page_that_ends_it(rows: int, pages: int) -> None:
    assert pages_for(rows) == pages


def test_periods_are_counted_across_frequencies_from_metadata_tokens() -> None:
    assert period_count("2001-01", "2026-07", "monthly", "monthly") == 307
    assert period_count("2001-01", "2026-07", "monthly", "quarterly") == 103
    assert period_count("2001-01", "2026-07", "monthly", "annual") == 26
    assert period_count("2019-01-01T00", "2019-01-02T00", "hourly", "hourly") == 25
    assert period_count("1993-12-24", "1994-01-07", "daily", "weekly") == 3
    assert period_count("not a period", "2026", "annual", "annual") is None


def test_an_incremental_run_refetches_its_trailing_window() -> None:
    assert window_periods("hourly") == 73
    assert window_periods("monthly") == 8
    assert window_periods("annual") == 5


def test_values_are_grouped_so_each_group_fits_the_row_budget() -> None:
    values = [f"v{i}" for i in range(10)]

    assert group_values(values, rows_per_value=12_000, budget_rows=50_000) == [
        ("v0", "v1", "v2", "v3"),
        ("v4", "v5", "v6", "v7"),
        ("v8", "v9"),
    ]
    assert group_values(values, rows_per_value=80_000, budget_rows=50_000) == [(v,) for v in values]
    assert group_values(values, rows_per_value=0, budget_rows=50_000) == [tuple(values)]


def test_route_metadata_and_facet_values_are_read_from_eias_real_shapes(samples_dir: object) -> None:
    import json
    from pathlib import Path

    body = json.loads((Path(str(samples_dir)) / "fc_v2_meta_retail_sales.json").read_text())
    meta = parse_route_metadata("electricity/retail-sales", body)
    ng = parse_route_metadata(
        "natural-gas/pri/fut", json.loads((Path(str(samples_dir)) / "fc_v2_meta_ng_pri_fut.json").read_text())
    )

    assert meta.frequencies == ("monthly", "quarterly", "annual")
    assert meta.facets == ("stateid", "sectorid")
    assert dict(meta.units) == {
        "revenue": "million dollars",
        "sales": "million kilowatt hours",
        "price": "cents per kilowatt-hour",
        "customers": "number of customers",
    }
    assert (meta.start, meta.end, meta.default_frequency) == ("2001-01", "2026-07", "monthly")
    assert dict(ng.units) == {"value": None}  # EIA sends "data": {"value": []} on this route
    facets = {
        "response": {"totalFacets": 2, "facets": [{"id": "CA", "name": "California", "alias": "(CA) California"}]}
    }
    assert parse_facet_values("electricity/retail-sales", "stateid", facets) == ("CA",)


def test_an_entry_written_out_parses_back_to_itself() -> None:
    original = entry(
        facets={"stateid": ["US"]},
        series_facets=["stateid", "sectorid"],
        units={"price": "cents per kilowatt-hour"},
        initial_start="2001-01",
    )

    assert parse_catalog({"entries": [entry_json(original)]}).entries[0] == original
